// Writes each InferenceService's status from the reconciler's view: one writer per object, one
// write in flight per object (a request while one is in flight runs once it ends), and a write only
// when the status differs from the one observed on the object (its watch, or this writer's own
// last write until the watch delivers it). A failed write is retried with backoff (1 s doubling to
// 30 s; requests meanwhile wait for that retry); nothing is thrown. The status is display only: the
// groups' own state lives on their Services, so a status that cannot be written stops nothing.
import type { ServiceSnapshot } from '../../core/snapshot.js';
import type { ClusterCache } from './cluster-cache.js';
import { GROUP, PLURAL, VERSION } from './crd.js';
import type { InferenceServiceObject } from './inference-services.js';
import { serviceStatus } from './service-status.js';
import { apiMessage } from './api.js';
import type { RawApi } from './raw.js';

const RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

export class StatusWriter {
  /** Objects with a write in flight, and whether another was asked for meanwhile. */
  private readonly writing = new Map<string, { again: boolean }>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
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
    if (this.stopped || this.retries.has(name)) return;
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
          this.retries.set(
            name,
            setTimeout(() => {
              this.retries.delete(name);
              this.request(name);
            }, wait),
          );
        },
      )
      .finally(() => {
        this.writing.delete(name);
        if (state.again) this.request(name);
      });
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.retries.values()) clearTimeout(t);
  }

  private async write(name: string): Promise<void> {
    const object = this.cache.objects.get(name);
    if (!object) return;
    const read = this.cache.spec(name);
    const status = serviceStatus(
      object.metadata?.generation ?? 0,
      this.view(name),
      read?.valid?.service.spec.rollout.maxUnavailable ?? 1,
      object.status?.conditions ?? [],
      new Date(this.now()),
      read?.problem,
    );
    if (JSON.stringify(object.status) === JSON.stringify(status)) return;
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${this.cache.namespace}/${PLURAL}/${name}/status`;
    // Conditional on the object's uid: a status never lands on a new object of the same name.
    const written = await this.api.patch<InferenceServiceObject>(path, {
      metadata: { uid: object.metadata?.uid },
      status,
    });
    this.cache.objects.wrote(written);
  }
}
