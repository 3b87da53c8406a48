// A member's output file, written by the member itself: its stdout and stderr are the file, so its
// output costs tandem nothing. (Piped through tandem, it did: llama.cpp writes a line in three
// writes, several lines per request, and reading them woke the gateway's event loop about 24
// times per request, which added more than a millisecond to every request it served.)
// The file is kept under a limit by copy and truncate, as logrotate's copytruncate does: a check
// that finds it past the limit copies its newest `limit` bytes to FILE.1 (replacing the previous
// one) and empties it; the member, which opened it for appending, goes on writing at its new end.
// Checks run when the file is opened and closed and once a second between, so the file can pass
// the limit only by what the member writes within a second; across restarts too, as every start
// opens it anew. Output written during a copy itself (a few milliseconds) is lost. A copy between
// runs off the event loop (libuv's threads): in `tandem up` that loop is the gateway's, and a copy
// of 8 MiB on it held every request.
import {
  closeSync,
  fstatSync,
  ftruncate,
  ftruncateSync,
  mkdirSync,
  openSync,
  read,
  readSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';

const readAsync = promisify(read);
const ftruncateAsync = promisify(ftruncate);

export const DEFAULT_LOG_LIMIT = 8 * 1024 * 1024;

export class BoundedLog {
  /** Opened for appending: give it to the member as its stdout and stderr. */
  readonly fd: number;
  private closed = false;
  private checking = false;

  constructor(
    readonly path: string,
    private readonly limit = DEFAULT_LOG_LIMIT,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a+'); // read too, for the copy
    this.check();
  }

  /** Tandem's own line about the member (started, exited), written at once. */
  note(text: string): void {
    if (this.closed) return;
    try {
      writeSync(this.fd, text);
    } catch {
      // a failing disk loses log lines, never the member
    }
  }

  /**
   * Rotates the file if it is past the limit, the copy off the event loop; resolves once done.
   * One at a time: a check while one runs is skipped.
   */
  async checkSoon(): Promise<void> {
    if (this.closed || this.checking) return;
    this.checking = true;
    try {
      // The size on the loop itself: a look is cheaper than a hand-off to libuv's threads and back
      // (which wakes the loop once more); only a copy goes off it.
      const { size } = fstatSync(this.fd);
      if (size <= this.limit) return;
      const kept = Buffer.alloc(this.limit);
      const { bytesRead } = await readAsync(this.fd, kept, 0, this.limit, size - this.limit);
      await writeFile(`${this.path}.1`, kept.subarray(0, bytesRead));
      if (!this.closed) await ftruncateAsync(this.fd, 0);
    } catch {
      // as in note(): the next check tries again
    } finally {
      this.checking = false;
    }
  }

  /** Rotates the file if it is past the limit, at once (on opening and closing). */
  check(): void {
    if (this.closed) return;
    try {
      const size = fstatSync(this.fd).size;
      if (size <= this.limit) return;
      const kept = Buffer.alloc(this.limit);
      const read = readSync(this.fd, kept, 0, this.limit, size - this.limit);
      writeFileSync(`${this.path}.1`, kept.subarray(0, read));
      ftruncateSync(this.fd, 0);
    } catch {
      // as in note(): the next check tries again
    }
  }

  close(): void {
    this.check();
    this.closed = true;
    closeSync(this.fd);
  }
}
