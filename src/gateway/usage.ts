// The token counts an engine reports at the end of an answer (`usage`: a JSON body's, or a
// stream's last event that has one), for the token metrics and the keys' token limits. Only the
// answer's tail is kept, as the chunks it came in, and only the `usage` object's counts are read: parsing
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
const PROMPT = Buffer.from('"prompt_tokens"');
const COMPLETION = Buffer.from('"completion_tokens"');
const code = (c: string) => c.charCodeAt(0);
const [OPEN, CLOSE, COLON, COMMA, SPACE, ZERO, NINE] = ['{', '}', ':', ',', ' ', '0', '9'].map(code);
/** JSON's whitespace. */
const BLANKS = new Set([' ', '\t', '\n', '\r'].map(code));

/** The last bytes of an answer, as its chunks; `usage()` finds what the engine reported. */
export class UsageTail {
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= TAIL_BYTES) this.size -= this.chunks.shift()!.length;
  }

  /** The counts of the last valid `usage` object in the tail (`"usage":null` and the like are passed over). */
  usage(): Usage | undefined {
    const text = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    for (let at = text.lastIndexOf(KEY); at >= 0; at = at > 0 ? text.lastIndexOf(KEY, at - 1) : -1) {
      const usage = countsAt(text, at + KEY.length);
      if (usage) return usage;
    }
    return undefined;
  }
}

/**
 * The counts of the `usage` object whose value starts after `from` (a `:` and whitespace
 * before it), read from its text: bounded by its end, then each count's digits. No JSON.parse:
 * it made objects for the whole usage (details and all) on every answer, a share of the
 * gateway's CPU per request where requests come one at a time (profiles of bench:peers, c = 1).
 */
function countsAt(text: Buffer, from: number): Usage | undefined {
  let i = from;
  while (i < text.length && text[i] !== OPEN) {
    if (text[i] !== COLON && text[i]! > SPACE) return undefined; // not `:`, not whitespace: a string's text, null…
    i++;
  }
  const end = i < text.length ? jsonEnd((j) => text[j]!, text.length, i) : undefined;
  if (end === undefined) return undefined;
  const prompt = countOf(text, PROMPT, i, end);
  if (typeof prompt !== 'number') return undefined;
  const completion = countOf(text, COMPLETION, i, end);
  if (completion === null) return undefined;
  return completion === undefined
    ? { prompt_tokens: prompt }
    : { prompt_tokens: prompt, completion_tokens: completion };
}

/** The count after `key` within [from, to): undefined where the key is absent, null where its value is no count. */
function countOf(text: Buffer, key: Buffer, from: number, to: number): number | null | undefined {
  const at = text.indexOf(key, from);
  if (at < 0 || at >= to) return undefined;
  let i = at + key.length;
  while (BLANKS.has(text[i]!)) i++;
  if (text[i++] !== COLON) return null;
  while (BLANKS.has(text[i]!)) i++;
  let n = 0;
  const first = i;
  for (; i < to && text[i]! >= ZERO && text[i]! <= NINE; i++) n = n * 10 + text[i]! - ZERO;
  // A count is whole digits: a fraction, an exponent, a sign or a string is no count.
  return i === first || (text[i] !== COMMA && text[i] !== CLOSE && text[i]! > SPACE) ? null : n;
}
