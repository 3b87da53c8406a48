// Writes each InferenceService's status from the reconciler's view: one writer per object, one
// write in flight per object (a request while one is in flight runs once it ends), and a write only
// when the status differs from the one observed on the object (its watch, or this writer's own last
// write until the watch delivers it). A change of what readers act on (the counts the scale
// subresource, `kubectl wait` and the autoscaler read, the generation observed, a condition's
// state) goes out at once; any other (a member's progress, a message) 1 s after it and at most
// every 5 s per object, as one write of the latest view: a group coming up would otherwise write at every step. A failed write is retried with backoff (1 s doubling to 30 s; requests
// meanwhile wait for that retry); nothing is thrown. The status is display only: the
// groups' own state lives on their Services, so a status that cannot be written stops nothing.
import type { ServiceSnapshot } from '../../core/snapshot.js';
import type { ClusterCache } from './cluster-cache.js';
import { GROUP, PLURAL, VERSION } from './crd.js';
import type { InferenceServiceObject } from './inference-services.js';
import { serviceStatus, type ServiceStatus } from './service-status.js';
import { apiMessage } from './api.js';
import type { RawApi } from './raw.js';
import { sameJson } from '../../util/same-json.js';

const RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
const DETAIL_INTERVAL_MS = 5000;
const DETAIL_DELAY_MS = 1000;

export class StatusWriter {
  /** Objects with a write in flight, and whether another was asked for meanwhile. */
  private readonly writing = new Map<string, { again: boolean }>();
  /** Writes put off: a retry after a failure, or detail too soon after the last write. */
  private readonly later = new Map<string, { timer: NodeJS.Timeout; retry: boolean }>();
  /** When each object's last write was sent. */
  private readonly sentAt = new Map<string, number>();
  /** Consecutive failed writes per object. */
  private readonly failures = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly api: RawApi,
    private readonly cache: ClusterCache,
    private readonly view: (service: string) => ServiceSnapshot | undefined,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** The object's status should reflect the current view. */
  request(name: string): void {
    const putOff = this.later.get(name);
    if (this.stopped || putOff?.retry) return;
    // Detail put off: looked at again now, in case readiness changed meanwhile.
    if (putOff) {
      clearTimeout(putOff.timer);
      this.later.delete(name);
    }
    const inFlight = this.writing.get(name);
    if (inFlight) {
      inFlight.again = true;
      return;
    }
    const state = { again: false };
    this.writing.set(name, state);
    void this.write(name)
      .then(
        () => this.failures.delete(name),
        (err: unknown) => {
          const failures = (this.failures.get(name) ?? 0) + 1;
          this.failures.set(name, failures);
          const wait = Math.min(RETRY_MS * 2 ** (failures - 1), MAX_RETRY_MS);
          this.log(`tandem: status of ${name} not written (retrying in ${wait} ms): ${apiMessage(err)}`);
          state.again = false;
          this.putOff(name, wait, true);
        },
      )
      .finally(() => {
        this.writing.delete(name);
        if (state.again) this.request(name);
      });
  }

  stop(): void {
    this.stopped = true;
    for (const { timer } of this.later.values()) clearTimeout(timer);
  }

  private putOff(name: string, ms: number, retry = false): void {
    const timer = setTimeout(() => {
      this.later.delete(name);
      this.request(name);
    }, ms);
    this.later.set(name, { timer, retry });
  }

  private async write(name: string): Promise<void> {
    const object = this.cache.objects.get(name);
    if (!object) {
      this.sentAt.delete(name);
      return;
    }
    const read = this.cache.spec(name);
    const status = serviceStatus(
      object.metadata?.generation ?? 0,
      this.view(name),
      read?.valid?.service.spec.rollout.maxUnavailable ?? 1,
      object.status?.conditions ?? [],
      new Date(this.now()),
      read?.problem,
    );
    const seen = object.status;
    if (sameJson(seen, status)) return;
    // Detail waits a moment too: the step that changes the headline tends to follow at once (a
    // group's last member Ready after its leader), and then one write says both.
    const wait = Math.max(DETAIL_DELAY_MS, (this.sentAt.get(name) ?? -Infinity) + DETAIL_INTERVAL_MS - this.now());
    if (sameJson(headline(seen), headline(status))) return this.putOff(name, wait);
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${this.cache.namespace}/${PLURAL}/${name}/status`;
    this.sentAt.set(name, this.now());
    // Conditional on the object's uid: a status never lands on a new object of the same name.
    const written = await this.api.patch<InferenceServiceObject>(path, {
      metadata: { uid: object.metadata?.uid },
      status,
    });
    this.cache.objects.wrote(written);
  }
}

/** What readers act on: counts, the generation observed, each condition's state and reason. */
function headline(status: Partial<ServiceStatus> | undefined) {
  return [
    status?.observedGeneration,
    status?.replicas,
    status?.readyReplicas,
    status?.readyGroups,
    status?.nodesPerGroup,
    status?.startupSeconds,
    status?.conditions?.map((c) => [c.type, c.status, c.reason]),
    status?.groups?.map((g) => [g.replica, g.phase, g.restarts, g.failed]),
  ];
}
