// The planner state of each group (restarts, back-off, Failed: what a restarted operator needs)
// kept in an annotation of the group's own headless Service: only the operator writes it (the
// InferenceService's status, which others may write, is display only), and it goes with the group.
// Writes are conditional on the version that was read: a write made from a stale read is refused,
// and the pass reads again.
import type { GroupStatus, StatusStore } from '../../core/group.js';
import type { ClusterCache } from './cluster-cache.js';
import { LABEL, groupName } from './objects.js';
import { ApiError, type RawApi } from './raw.js';

export const GROUP_STATE = 'tandem.dev/group-state';
const INITIAL = JSON.stringify({ restarts: 0 } satisfies GroupStatus);

/** A write refused because what it would overwrite changed since it was read. */
class Conflict extends Error {
  readonly conflict = true;
}

export class GroupStateStore implements StatusStore {
  /** Per service, the version of each group's Service as `load` read it. */
  private readonly read = new Map<string, Map<number, string | undefined>>();

  constructor(
    private readonly api: RawApi,
    private readonly cache: ClusterCache,
  ) {}

  async load(service: string): Promise<Record<number, GroupStatus>> {
    const uid = this.cache.owner(service)?.uid;
    const out: Record<number, GroupStatus> = {};
    const versions = new Map<number, string | undefined>();
    for (const s of this.cache.groupServicesOf(service)) {
      if (!s.metadata?.ownerReferences?.some((r) => r.uid === uid)) continue; // an earlier object's
      const replica = Number(s.metadata.labels?.[LABEL.replica]);
      const text = s.metadata.annotations?.[GROUP_STATE];
      out[replica] = JSON.parse(text ?? INITIAL) as GroupStatus;
      versions.set(replica, s.metadata.resourceVersion);
    }
    this.read.set(service, versions);
    return out;
  }

  async save(service: string, groups: Record<number, GroupStatus>): Promise<void> {
    const versions = this.read.get(service) ?? new Map<number, string | undefined>();
    const base = `/api/v1/namespaces/${this.cache.namespace}/services`;
    await Promise.all(
      Object.entries(groups).map(async ([key, status]) => {
        const replica = Number(key);
        const name = groupName({ service, replica });
        const text = JSON.stringify(status);
        const seen = this.cache.services.get(name);
        if (!seen) throw new Conflict(`the Service ${name} is not there yet`);
        // A Service without the annotation holds the state every group starts from.
        if ((seen.metadata?.annotations?.[GROUP_STATE] ?? INITIAL) === text) return;
        // A group new to this pass: its Service was made after load(), by this pass.
        const version = versions.get(replica) ?? seen.metadata?.resourceVersion;
        try {
          this.cache.services.wrote(
            await this.api.patch(`${base}/${name}`, {
              metadata: { resourceVersion: version, annotations: { [GROUP_STATE]: text } },
            }),
          );
        } catch (err) {
          if (!(err instanceof ApiError) || (err.code !== 409 && err.code !== 404)) throw err;
          this.cache.services.forget(name);
          throw new Conflict(`the state of group ${name} changed since it was read`);
        }
      }),
    );
  }
}
