// Prefix-aware routing: requests that share a prompt prefix go to the replica that keeps it, whose
// engine holds it in its prompt cache (llama-server's cache_prompt, vLLM's prefix caching), unless
// that replica is busier than the least busy one by more than one request (on GPUs, by more than a
// bound or with no engine slot free), so that one hot prefix cannot pile onto one replica (backends.ts).
// A request sent elsewhere does not move the prefix off the replica that keeps it; a new prefix goes
// where the fewest are kept. The prompt is cut into fixed blocks, each block's key the hash of
// everything up to its end (a chain, as engines key their cache blocks); the index keeps the most
// recently used keys, bounded.
export const PREFIX_BLOCK_CHARS = 128;
/**
 * How many more requests in flight than the least busy replica a prefix's replica may have: on GPUs
 * for a cached prefix, everywhere for placing a new one.
 */
export const PREFIX_BALANCE = 4;
/**
 * How many more requests in flight than the least busy replica a cached prefix's replica may have
 * everywhere: at 0.5 req/s on two CPU replicas (8,000-character prompts, 8 groups) 15 and 9 of 30
 * requests started cold with none allowed, 10 and 5 with one, and the p90 latency was lower in both.
 */
export const PREFIX_AFFINITY = 1;

/** The text a request's prompt starts with: its messages (role and text) or its prompt; '' for other shapes. */
export function promptText(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const { prompt, messages } = body as { prompt?: unknown; messages?: unknown };
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt))
    return prompt.map((p) => (typeof p === 'string' ? p : String(JSON.stringify(p)))).join('\n');
  if (!Array.isArray(messages)) return '';
  let text = '';
  for (const m of messages as unknown[]) {
    if (typeof m !== 'object' || m === null) continue;
    const { role, content } = m as { role?: unknown; content?: unknown };
    text += `${String(role)}:`;
    if (typeof content === 'string') text += content;
    else if (Array.isArray(content)) {
      for (const part of content as unknown[]) {
        const t = (part as { text?: unknown } | null)?.text;
        if (typeof t === 'string') text += t;
      }
    }
    text += '\n';
  }
  return text;
}

/**
 * The keys of the prompt's whole blocks, shortest prefix first: a 32-bit FNV-1a hash chained over
 * the text (each key covers everything before its block's end), with the block's index above it.
 * Not cryptographic: a collision only sends a request to a replica without its prefix.
 */
export function prefixKeys(text: string, blockChars = PREFIX_BLOCK_CHARS): number[] {
  const keys: number[] = [];
  let h = 0x811c9dc5;
  const whole = text.length - (text.length % blockChars);
  for (let i = 0; i < whole; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    if ((i + 1) % blockChars === 0) keys.push(keys.length * 2 ** 32 + (h >>> 0));
  }
  return keys;
}

export class PrefixIndex {
  /** Per model: prefix key → the replica that last served it, oldest first (Map order is recency). */
  private readonly owners = new Map<string, Map<number, string>>();
  /** Per model: replica → how many keys it owns. */
  private readonly counts = new Map<string, Map<string, number>>();
  private size = 0;

  constructor(private readonly capacity = 200_000) {}

  /** The replica that served the longest known prefix of `keys` (of `model`), and that prefix's key. */
  lookup(model: string, keys: readonly number[]): { replica: string; key: number } | undefined {
    const owner = this.owners.get(model);
    if (!owner) return undefined;
    for (let i = keys.length - 1; i >= 0; i--) {
      const replica = owner.get(keys[i]!);
      if (replica !== undefined) return { replica, key: keys[i]! };
    }
    return undefined;
  }

  /**
   * `replica` now holds every prefix in `keys`; those `keep` owns stay its (a request sent elsewhere
   * for balance does not move a prefix off the replica that keeps it warm, so that each replica's
   * bounded cache holds its own share of the prefixes, not every prefix by turns). The least
   * recently used keys go past the capacity.
   */
  record(model: string, keys: readonly number[], replica: string, keep?: string): void {
    let owner = this.owners.get(model);
    if (!owner) this.owners.set(model, (owner = new Map()));
    let count = this.counts.get(model);
    if (!count) this.counts.set(model, (count = new Map()));
    for (const k of keys) {
      const was = owner.get(k);
      if (was !== undefined) {
        owner.delete(k); // re-inserted last
        this.size--;
        count.set(was, count.get(was)! - 1);
      }
      const now = was !== undefined && was === keep ? was : replica;
      owner.set(k, now);
      this.size++;
      count.set(now, (count.get(now) ?? 0) + 1);
    }
    if (this.size <= this.capacity) return;
    // Past the capacity: the oldest keys of the model that grew go (a model's own recency order).
    for (const [old, was] of owner) {
      if (this.size <= this.capacity) break;
      owner.delete(old);
      this.size--;
      count.set(was, count.get(was)! - 1);
    }
  }

  /** Per replica of `model`, how many prefix keys it owns (a new prefix goes where fewest are). */
  held(model: string): ReadonlyMap<string, number> {
    return this.counts.get(model) ?? NONE;
  }
}

const NONE: ReadonlyMap<string, number> = new Map();

/**
 * Per replica, how many requests in flight there carry each prefix key. An engine whose cached
 * prompt serves one request at a time (`Backend.exclusiveCache`) has a prefix in use cold for the
 * next request of it: that one is better sent where the least is running.
 */
export class PrefixesInFlight {
  private readonly byReplica = new Map<string, Map<number, number>>();

  add(replica: string, keys: readonly number[]): void {
    let counts = this.byReplica.get(replica);
    if (!counts) this.byReplica.set(replica, (counts = new Map()));
    for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  }

  remove(replica: string, keys: readonly number[]): void {
    const counts = this.byReplica.get(replica);
    if (!counts) return;
    for (const k of keys) {
      const n = (counts.get(k) ?? 1) - 1;
      if (n > 0) counts.set(k, n);
      else counts.delete(k);
    }
    if (counts.size === 0) this.byReplica.delete(replica);
  }

  has(replica: string, key: number): boolean {
    return this.byReplica.get(replica)?.has(key) ?? false;
  }
}
