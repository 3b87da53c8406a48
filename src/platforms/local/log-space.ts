// The log directory's free space. Members write their logs themselves, so a full disk is silent:
// their writes fail and their output is lost while they serve on. A look once a second (with the
// logs' size checks) says so once when the directory fills, and once when there is room again.
import { statfs } from 'node:fs/promises';

/** Below this, a member's output is being lost (a request's lines no longer fit). */
export const FULL_BELOW = 1024 * 1024;
/** Room again from this on; above FULL_BELOW, so that a disk at the edge does not flap. */
export const ROOM_FROM = 4 * 1024 * 1024;

export type LogSpaceChange = 'full' | 'room';

/** What a look that found `freeBytes` means, given whether the directory was full. */
export function logSpaceChange(wasFull: boolean, freeBytes: number): LogSpaceChange | undefined {
  if (!wasFull && freeBytes < FULL_BELOW) return 'full';
  if (wasFull && freeBytes >= ROOM_FROM) return 'room';
  return undefined;
}

export class LogSpace {
  private full = false;
  private looking = false;

  constructor(
    private readonly dir: string,
    private readonly onChange: (change: LogSpaceChange, freeBytes: number) => void,
  ) {}

  /** Looks at the free space (off the event loop); one look at a time. */
  async look(): Promise<void> {
    if (this.looking) return;
    this.looking = true;
    try {
      const { bavail, bsize } = await statfs(this.dir);
      const free = bavail * bsize;
      const change = logSpaceChange(this.full, free);
      if (change) {
        this.full = change === 'full';
        this.onChange(change, free);
      }
    } catch {
      // not made yet: no member has started
    } finally {
      this.looking = false;
    }
  }
}
