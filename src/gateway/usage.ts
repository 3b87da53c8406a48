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
const [OPEN, CLOSE] = ['{', '}'].map((c) => c.charCodeAt(0)) as [number, number];

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
  if (i >= text.length) return undefined;
  return (
    parsed(text, i, closingBrace(text, i)) ??
    parsed(
      text,
      i,
      jsonEnd((j) => text[j]!, text.length, i),
    )
  );
}

/**
 * Where the object at `from` ends if no string in it holds a brace, as in every engine's `usage`
 * (numbers, and objects of numbers): found with indexOf, not byte by byte. Where a string does, what
 * it gives does not parse, and the caller scans the text whole.
 */
function closingBrace(text: Buffer, from: number): number | undefined {
  let open = 1;
  let at = from + 1;
  while (open > 0) {
    const close = text.indexOf(CLOSE, at);
    if (close < 0) return undefined;
    for (let o = text.indexOf(OPEN, at); o >= 0 && o < close; o = text.indexOf(OPEN, o + 1)) open++;
    open--;
    at = close + 1;
  }
  return at;
}

function parsed(text: Buffer, from: number, end: number | undefined): unknown {
  if (end === undefined) return undefined;
  try {
    return JSON.parse(text.toString('utf8', from, end));
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
