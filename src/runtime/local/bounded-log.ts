// A member's output file that never grows past a limit: when full it is moved to FILE.1
// (replacing the previous one) and a new file starts, so at most twice the limit is kept.
import { closeSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export const DEFAULT_LOG_LIMIT = 8 * 1024 * 1024;

export class BoundedLog {
  private fd: number;
  private size = 0;

  constructor(readonly path: string, private readonly limit = DEFAULT_LOG_LIMIT) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }

  write(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.size + bytes.length > this.limit && this.size > 0) {
      closeSync(this.fd);
      renameSync(this.path, `${this.path}.1`);
      this.fd = openSync(this.path, 'w');
      this.size = 0;
    }
    // A single chunk larger than the limit keeps only its tail.
    const kept = bytes.length > this.limit ? bytes.subarray(bytes.length - this.limit) : bytes;
    writeSync(this.fd, kept);
    this.size += kept.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}
