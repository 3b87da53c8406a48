// A member's output file that never grows past a limit: when full it is moved to FILE.1
// (replacing the previous one) and a new file starts, so at most twice the limit is kept, across
// restarts too (the size is counted from the file as found). Writes happen in order, off the
// event loop, output gathered for 50 ms in one write (an engine logs a few lines per request: a
// write each would cost the gateway more than the request); output that arrives faster than the
// disk takes it is dropped past 4 MiB held, and the drop is noted in the file.
import { mkdirSync } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export const DEFAULT_LOG_LIMIT = 8 * 1024 * 1024;
/** Output is gathered this long into one write (an engine logs a few lines per request). */
const COALESCE_MS = 50;
/** Output held in memory while the disk catches up; more than this is dropped. */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;

export class BoundedLog {
  private file?: FileHandle;
  private size = 0;
  /** Bytes accepted by write() and not yet on disk. */
  private pending = 0;
  private dropped = 0;
  /** Output waiting for the next write, which takes all of it. */
  private buffered: Buffer[] = [];
  private timer?: NodeJS.Timeout;
  private queue: Promise<void>;

  constructor(
    readonly path: string,
    private readonly limit = DEFAULT_LOG_LIMIT,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.queue = this.step(async () => {
      this.file = await open(path, 'a');
      this.size = (await this.file.stat()).size;
    });
  }

  write(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.pending + bytes.length > MAX_PENDING_BYTES) {
      this.dropped += bytes.length;
      return;
    }
    this.pending += bytes.length;
    this.buffered.push(bytes);
    this.timer ??= setTimeout(() => this.flush(), COALESCE_MS);
  }

  /** Queues a write of everything buffered. */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffered.length === 0 && this.dropped === 0) return;
    const chunks = this.buffered;
    this.buffered = [];
    this.queue = this.step(async () => {
      for (const c of chunks) this.pending -= c.length;
      if (this.dropped > 0) {
        const note = `--- ${this.dropped} bytes of output dropped: written faster than the disk took them\n`;
        chunks.unshift(Buffer.from(note));
        this.dropped = 0;
      }
      await this.append(chunks);
    });
  }

  /** Resolves once everything written so far is on disk and the file is closed. */
  async close(): Promise<void> {
    this.flush();
    this.queue = this.step(async () => {
      await this.file?.close();
      this.file = undefined;
    });
    await this.queue;
  }

  private step(fn: () => Promise<void>): Promise<void> {
    // A failing disk loses log lines, never the member: the next write tries again.
    return (this.queue ?? Promise.resolve()).then(fn).catch(() => {});
  }

  /** The chunks in order, in as few writes as the rotations allow. */
  private async append(chunks: Buffer[]): Promise<void> {
    if (!this.file) return;
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
      if (batched === 0) return;
      await this.file!.write(Buffer.concat(batch));
      this.size += batched;
      batch = [];
      batched = 0;
    };
    for (const bytes of chunks) {
      if (this.size + batched + bytes.length > this.limit && this.size + batched > 0) {
        await flush();
        await this.file.close();
        await rename(this.path, `${this.path}.1`);
        this.file = await open(this.path, 'w');
        this.size = 0;
      }
      // A single chunk larger than the limit keeps only its tail.
      const kept = bytes.length > this.limit ? bytes.subarray(bytes.length - this.limit) : bytes;
      batch.push(kept);
      batched += kept.length;
    }
    await flush();
  }
}
