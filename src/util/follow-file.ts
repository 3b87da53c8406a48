// A log file as it is and then as it grows: the rotated part (FILE.1) first, the file, then what
// is appended until `signal` aborts (when following). Polled, not watched: a rotation copies and
// truncates the file, which a watch does not tell apart from a write.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';

function* range(path: string, from: number, to: number): Generator<Buffer> {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (let pos = from; pos < to;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, to - pos), pos);
      if (n === 0) break;
      yield Buffer.from(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

export interface FollowOptions {
  follow: boolean;
  signal?: AbortSignal;
  /** Start at this offset of the file, leaving out what is before it (and FILE.1). */
  from?: number;
}

export async function* followFile(path: string, { follow, signal, from }: FollowOptions): AsyncGenerator<Buffer> {
  if (!existsSync(path)) throw new Error(`no log at ${path} (has this member started?)`);
  let offset = from ?? statSync(path).size;
  if (from === undefined) {
    if (existsSync(`${path}.1`)) yield* range(`${path}.1`, 0, statSync(`${path}.1`).size);
    yield* range(path, 0, offset);
  }
  while (follow && !signal?.aborted) {
    await new Promise((r) => setTimeout(r, 200));
    const size = existsSync(path) ? statSync(path).size : 0;
    if (size < offset) offset = 0; // rotated
    if (size > offset) {
      yield* range(path, offset, size);
      offset = size;
    }
  }
}

/** The last `count` lines of the log (FILE.1, then FILE), and the file's size they end at. */
export function lastLines(path: string, count: number): { lines: string[]; size: number } {
  const size = statSync(path).size;
  const text = [...(existsSync(`${path}.1`) ? [readFileSync(`${path}.1`)] : []), readFileSync(path).subarray(0, size)]
    .map((b) => b.toString('utf8'))
    .join('');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return { lines: count === 0 ? [] : lines.slice(-count), size };
}

/** Text chunks as whole lines (a last line without its newline too, once the chunks end). */
export async function* linesOf(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  let partial = '';
  for await (const chunk of chunks) {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    yield* parts;
  }
  if (partial) yield partial;
}
