// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: take the
// lease when it is free or expired, renew it well within its duration, and stop acting the moment a
// renewal fails past the deadline. Expiry is judged by this process's own clock from when it last
// saw the record change (client-go's observedTime), never from the holder's renewTime: clocks of
// two machines may differ by more than a lease. The API server's optimistic concurrency
// (resourceVersion) makes sure two candidates never both win.
import * as k8s from '@kubernetes/client-node';
import { ignoreStatus } from './api.js';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  durationSeconds?: number;
  /** This process's clock (ms). */
  now?: () => number;
}

export class LeaderLease {
  private readonly api: k8s.CoordinationV1Api;
  private timer?: NodeJS.Timeout;
  /** The renewal in flight, if any: a release waits for it, or its write would undo the release. */
  private renewal?: Promise<void>;
  private renewedAt = 0;
  private leading = false;
  private readonly duration: number;
  private readonly now: () => number;
  /** The record as last read, and when (by this process's clock) it was first read so. */
  private observed?: { record: string; at: number };

  constructor(
    kc: k8s.KubeConfig,
    private readonly options: LeaseOptions,
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.duration = options.durationSeconds ?? 15;
    this.now = options.now ?? Date.now;
  }

  /** Resolves once this candidate leads; `lost` is called if it stops leading. */
  async acquire(lost: () => void): Promise<void> {
    const retryMs = (this.duration * 1000) / 5;
    for (;;) {
      if (await this.tryTake().catch(() => false)) break;
      await new Promise((r) => setTimeout(r, retryMs));
    }
    this.leading = true;
    this.renewedAt = this.now();
    const renew = async () => {
      const ok = await this.tryTake().catch(() => false);
      if (!this.leading) return; // released meanwhile: not rescheduled
      if (ok) this.renewedAt = this.now();
      else if (this.now() - this.renewedAt > (this.duration * 1000 * 2) / 3) {
        this.leading = false;
        lost();
        return;
      }
      schedule();
    };
    const schedule = () => (this.timer = setTimeout(() => (this.renewal = renew()), retryMs));
    schedule();
  }

  /** Gives the lease up so that another candidate takes over at once. */
  async release(): Promise<void> {
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    await this.renewal;
    const { namespace, name } = this.options;
    const lease = await ignoreStatus(404, this.api.readNamespacedLease({ namespace, name }));
    if (lease?.spec?.holderIdentity !== this.options.identity) return;
    lease.spec.holderIdentity = undefined;
    lease.spec.renewTime = undefined;
    await this.api.replaceNamespacedLease({ namespace, name, body: lease }).catch(() => undefined);
  }

  /** One attempt to take or renew the lease: whether this candidate holds it now. */
  async tryTake(): Promise<boolean> {
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
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.acquireTime, spec.leaseTransitions]);
    if (this.observed?.record !== record) this.observed = { record, at: this.now() };
    const expired = this.now() > this.observed.at + (spec.leaseDurationSeconds ?? this.duration) * 1000;
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
