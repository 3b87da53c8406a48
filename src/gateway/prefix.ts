// Prefix-aware routing: requests that share a prompt prefix go to the replica that served it last,
// whose engine holds it in its prompt cache (llama-server's cache_prompt, vLLM's prefix caching),
// unless that replica is busier than the least busy one by more than a bound, so that one hot
// prefix cannot pile onto one replica. The prompt is cut into fixed blocks, each block's key the
// hash of everything up to its end (a chain, as engines key their cache blocks); the index keeps the
// most recently used keys, bounded.
import { createHash } from 'node:crypto';

export const PREFIX_BLOCK_CHARS = 128;
/** How many more requests in flight than the least busy replica a cached prefix may cost. */
export const PREFIX_BALANCE = 4;

/** The text a request's prompt starts with: its messages (role and text) or its prompt. */
export function promptText(body: unknown): string {
  const b = body as { prompt?: unknown; messages?: unknown };
  if (typeof b.prompt === 'string') return b.prompt;
  if (Array.isArray(b.prompt)) return b.prompt.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('\n');
  if (!Array.isArray(b.messages)) return '';
  return b.messages
    .map((m: { role?: unknown; content?: unknown }) => {
      const content = Array.isArray(m.content)
        ? m.content.map((part: { text?: unknown }) => (typeof part?.text === 'string' ? part.text : '')).join('')
        : typeof m.content === 'string'
          ? m.content
          : '';
      return `${String(m.role)}:${content}\n`;
    })
    .join('');
}

/** The keys of the prompt's whole blocks, shortest prefix first. */
export function prefixKeys(text: string, blockChars = PREFIX_BLOCK_CHARS): string[] {
  const keys: string[] = [];
  const hash = createHash('sha1');
  for (let end = blockChars; end <= text.length; end += blockChars) {
    hash.update(text.slice(end - blockChars, end));
    keys.push(hash.copy().digest('base64url'));
  }
  return keys;
}

export class PrefixIndex {
  private readonly owner = new Map<string, string>();

  constructor(private readonly capacity = 200_000) {}

  /** The replica that served the longest known prefix of `keys` (of `model`), if any. */
  lookup(model: string, keys: string[]): string | undefined {
    for (let i = keys.length - 1; i >= 0; i--) {
      const owner = this.owner.get(`${model}\u0000${keys[i]}`);
      if (owner !== undefined) return owner;
    }
    return undefined;
  }

  /** `replica` now holds every prefix in `keys`; the least recently used keys go past the capacity. */
  record(model: string, keys: string[], replica: string): void {
    for (const k of keys) {
      const key = `${model}\u0000${k}`;
      this.owner.delete(key); // re-inserted last: Map order is recency
      this.owner.set(key, replica);
    }
    for (const old of this.owner.keys()) {
      if (this.owner.size <= this.capacity) break;
      this.owner.delete(old);
    }
  }
}
