// The embedded default's planner state: in memory, as its groups end with the process.
import type { GroupStatus, StatusStore } from '../../core/group.js';

export class MemoryStatusStore implements StatusStore {
  private readonly saved = new Map<string, Record<number, GroupStatus>>();
  async load(service: string): Promise<Record<number, GroupStatus>> {
    return this.saved.get(service) ?? {};
  }
  async save(service: string, groups: Record<number, GroupStatus>): Promise<void> {
    this.saved.set(service, groups);
  }
}
