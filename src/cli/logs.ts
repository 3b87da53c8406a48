// `tandem logs`: print a member's log (the rotated part first) and optionally follow it.
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';

function printRange(path: string, from: number, to: number): void {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (let pos = from; pos < to;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, to - pos), pos);
      if (n === 0) break;
      process.stdout.write(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

export async function showLog(path: string, follow: boolean): Promise<void> {
  if (!existsSync(path)) throw new Error(`no log at ${path} (has this member started?)`);
  if (existsSync(`${path}.1`)) printRange(`${path}.1`, 0, statSync(`${path}.1`).size);
  let offset = statSync(path).size;
  printRange(path, 0, offset);
  if (!follow) return;
  // Poll rather than watch: a rotation empties the file (copy and truncate).
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const size = existsSync(path) ? statSync(path).size : 0;
    if (size < offset) offset = 0; // rotated
    if (size > offset) {
      printRange(path, offset, size);
      offset = size;
    }
  }
}
