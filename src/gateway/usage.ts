// The token counts an engine reports at the end of an answer (`usage`: a JSON body's, or a
// stream's last event that has one), for the token metrics and the keys' token limits. Only the
// answer's tail is kept, as the chunks it came in, and only the `usage` object is parsed: parsing
// a whole body for it was the gateway's largest cost per request after the relay itself
// (profiles of bench:peers).
import { jsonEnd } from './json-end.js';

export interface Usage {
  prompt_tokens: number;
  /** Absent for embeddings: their tokens are all prompt. */
  completion_tokens?: number;
}

/** Bytes of an answer's end kept: engines put `usage` last, but a last event can be long. */
const TAIL_BYTES = 64 * 1024;
const KEY = Buffer.from('"usage"');
const OPEN = '{'.charCodeAt(0);

/** The last bytes of an answer, as its chunks; `usage()` finds what the engine reported. */
export class UsageTail {
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= TAIL_BYTES) this.size -= this.chunks.shift()!.length;
  }

  /** The last valid `usage` object in the tail (`"usage":null` and the like are passed over). */
  usage(): Usage | undefined {
    const text = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    for (let at = text.lastIndexOf(KEY); at >= 0; at = at > 0 ? text.lastIndexOf(KEY, at - 1) : -1) {
      const usage = objectAt(text, at + KEY.length);
      if (valid(usage)) return usage;
    }
    return undefined;
  }
}

/** The JSON object after `:` at `from` (whitespace allowed), or undefined where there is none. */
function objectAt(text: Buffer, from: number): unknown {
  let i = from;
  while (i < text.length && text[i] !== OPEN) {
    if (text[i] !== 0x3a && text[i]! > 0x20) return undefined; // not `:`, not whitespace: a string's text, null…
    i++;
  }
  const end = i < text.length ? jsonEnd((j) => text[j]!, text.length, i) : undefined;
  if (end === undefined) return undefined;
  try {
    return JSON.parse(text.toString('utf8', i, end));
  } catch {
    return undefined;
  }
}

function valid(u: unknown): u is Usage {
  return (
    typeof (u as Usage | undefined)?.prompt_tokens === 'number' &&
    ['number', 'undefined'].includes(typeof (u as Usage).completion_tokens)
  );
}
