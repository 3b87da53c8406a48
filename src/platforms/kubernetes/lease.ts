// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: take the
// lease when it is free or expired, renew it well within its duration, and stop acting the moment a
// renewal fails past the deadline. The API server's optimistic concurrency (resourceVersion) makes
// sure two candidates never both win.
import * as k8s from '@kubernetes/client-node';
import { ignoreStatus } from './api.js';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  durationSeconds?: number;
}

export class LeaderLease {
  private readonly api: k8s.CoordinationV1Api;
  private timer?: NodeJS.Timeout;
  private renewedAt = 0;
  private leading = false;
  private readonly duration: number;

  constructor(
    kc: k8s.KubeConfig,
    private readonly options: LeaseOptions,
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.duration = options.durationSeconds ?? 15;
  }

  /** Resolves once this candidate leads; `lost` is called if it stops leading. */
  async acquire(lost: () => void): Promise<void> {
    const retryMs = (this.duration * 1000) / 5;
    for (;;) {
      if (await this.tryTake().catch(() => false)) break;
      await new Promise((r) => setTimeout(r, retryMs));
    }
    this.leading = true;
    this.renewedAt = Date.now();
    const renew = async () => {
      const ok = await this.tryTake().catch(() => false);
      if (ok) this.renewedAt = Date.now();
      else if (Date.now() - this.renewedAt > (this.duration * 1000 * 2) / 3) {
        this.leading = false;
        lost();
        return;
      }
      this.timer = setTimeout(() => void renew(), retryMs);
    };
    this.timer = setTimeout(() => void renew(), retryMs);
  }

  /** Gives the lease up so that another candidate takes over at once. */
  async release(): Promise<void> {
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    const { namespace, name } = this.options;
    const lease = await ignoreStatus(404, this.api.readNamespacedLease({ namespace, name }));
    if (lease?.spec?.holderIdentity !== this.options.identity) return;
    lease.spec.holderIdentity = undefined;
    lease.spec.renewTime = undefined;
    await this.api.replaceNamespacedLease({ namespace, name, body: lease }).catch(() => undefined);
  }

  private async tryTake(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new k8s.V1MicroTime();
    const lease = await ignoreStatus(404, this.api.readNamespacedLease({ namespace, name }));
    if (!lease) {
      const body: k8s.V1Lease = {
        metadata: { name, namespace },
        spec: { holderIdentity: identity, leaseDurationSeconds: this.duration, acquireTime: now, renewTime: now },
      };
      return (await ignoreStatus(409, this.api.createNamespacedLease({ namespace, body }))) !== undefined;
    }
    const spec = lease.spec ?? {};
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = Date.now() > renewed + (spec.leaseDurationSeconds ?? this.duration) * 1000;
    if (spec.holderIdentity && spec.holderIdentity !== identity && !expired) return false;
    const taking = spec.holderIdentity !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.duration,
      renewTime: now,
      ...(taking ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    // A conflict (409) means someone else wrote it first: not ours this round.
    return (await ignoreStatus(409, this.api.replaceNamespacedLease({ namespace, name, body: lease }))) !== undefined;
  }
}
