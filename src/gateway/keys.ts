// API keys for the gateway. The key file holds names and SHA-256 hashes, never the keys: a key
// is shown once, when `tandem keys add` makes it. Each key may be limited to some models and to a
// number of requests per minute (a token bucket: the whole minute's budget may come at once, then
// it refills evenly). Decisions are pure; the file is read again whenever it changes.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { parse, stringify } from 'yaml';
import { z } from 'zod';

const KeyEntrySchema = z
  .object({
    name: z.string().min(1, { error: 'must be a non-empty name' }),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be a SHA-256 hash in hex (tandem keys add makes it)' }),
    /** The models this key may use; all of them when absent. */
    models: z.array(z.string().min(1)).optional(),
    requestsPerMinute: z.int().min(1).optional(),
    /** Prompt and completion tokens per minute, charged from the engines' usage after each answer. */
    tokensPerMinute: z.int().min(1).optional(),
    /** May use the control API (apply, delete, scale services; read their logs). */
    admin: z.boolean().optional(),
  })
  .strict();
const KeyFileSchema = z.object({ keys: z.array(KeyEntrySchema).default([]) }).strict();

export type KeyEntry = z.infer<typeof KeyEntrySchema>;

export const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

/** A new key: 32 random bytes, with a prefix that says what it is. */
export const newKey = () => `tandem-${randomBytes(32).toString('base64url')}`;

export function readKeyFile(path: string): KeyEntry[] {
  const parsed = KeyFileSchema.safeParse(parse(readFileSync(path, 'utf8')) ?? {});
  if (!parsed.success) {
    throw new Error(`${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const names = new Set<string>();
  for (const k of parsed.data.keys) {
    if (names.has(k.name)) throw new Error(`${path}: the key name "${k.name}" is used twice`);
    names.add(k.name);
  }
  return parsed.data.keys;
}

/** Adds a key named `name` to the file (made if missing); returns the key, which is stored nowhere. */
export function addKey(path: string, entry: Omit<KeyEntry, 'sha256'>): string {
  const keys = existsSync(path) ? readKeyFile(path) : [];
  if (keys.some((k) => k.name === entry.name)) throw new Error(`${path}: a key named "${entry.name}" exists already`);
  const key = newKey();
  keys.push({ ...entry, sha256: hashKey(key) });
  // Whole or not at all: a gateway watching the file never reads half of it.
  const next = `${path}.${process.pid}.tmp`;
  writeFileSync(next, stringify({ keys }), { mode: 0o600 });
  renameSync(next, path);
  return key;
}

/** Why a request is refused, as the gateway answers it. */
export interface Denied {
  status: 401 | 403 | 429;
  code: string;
  message: string;
  retryAfterS?: number;
}

export const isDenied = (x: KeyEntry | Denied): x is Denied => 'status' in x;

interface Bucket {
  tokens: number;
  at: number;
}

/** The keys in force and each key's request bucket. */
export class KeyRing {
  private byHash = new Map<string, KeyEntry>();
  /**
   * Tokens already found valid, and their keys: a SHA-256 per request cost more than every other
   * key check together (profiles of bench:peers). Only valid tokens enter: one per key at most.
   */
  private known = new Map<string, KeyEntry>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly tokenBuckets = new Map<string, Bucket>();

  constructor(keys: KeyEntry[]) {
    this.replace(keys);
  }

  replace(keys: KeyEntry[]): void {
    this.byHash = new Map(keys.map((k) => [k.sha256, k]));
    this.known = new Map();
  }

  /** The key an Authorization header carries, or why it carries none that is valid (401). */
  identify(authorization: string | undefined): KeyEntry | Denied {
    // `Bearer TOKEN`, as clients write it, is looked up before any pattern is matched.
    const seen = authorization?.startsWith('Bearer ') ? this.known.get(authorization.slice(7)) : undefined;
    if (seen) return seen;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!bearer) {
      return { status: 401, code: 'missing_api_key', message: 'an API key is required: Authorization: Bearer KEY' };
    }
    const known = this.known.get(bearer);
    if (known) return known;
    const key = this.byHash.get(hashKey(bearer));
    if (!key) return { status: 401, code: 'invalid_api_key', message: 'the API key is not valid' };
    this.known.set(bearer, key);
    return key;
  }

  /** Whether `key` may use `model` at `now` (ms); if so, one request is charged to it. */
  admit(key: KeyEntry, model: string, now: number): Denied | undefined {
    if (key.models && !key.models.includes(model)) {
      return { status: 403, code: 'model_not_allowed', message: `this API key may not use the model '${model}'` };
    }
    const tpm = key.tokensPerMinute;
    if (tpm !== undefined) {
      const t = refill(this.tokenBuckets, key.name, tpm, now);
      // Tokens are charged after the answer, so a key may go below zero: it waits until it is back above.
      if (t.tokens <= 0) {
        return {
          status: 429,
          code: 'token_rate_limit_exceeded',
          message: `this API key may use ${tpm} tokens per minute`,
          retryAfterS: Math.max(1, Math.ceil(((1 - t.tokens) * 60_000) / tpm / 1000)),
        };
      }
    }
    const rpm = key.requestsPerMinute;
    if (rpm === undefined) return undefined;
    const perMs = rpm / 60_000;
    const b = refill(this.buckets, key.name, rpm, now);
    if (b.tokens < 1) {
      return {
        status: 429,
        code: 'rate_limit_exceeded',
        message: `this API key may make ${rpm} requests per minute`,
        retryAfterS: Math.ceil((1 - b.tokens) / perMs / 1000),
      };
    }
    b.tokens -= 1;
    return undefined;
  }

  /** Charges the tokens an answer used to its key (when it has a token limit). */
  charge(key: KeyEntry, tokens: number, now: number): void {
    if (key.tokensPerMinute === undefined) return;
    refill(this.tokenBuckets, key.name, key.tokensPerMinute, now).tokens -= tokens;
  }
}

/** A key's bucket of `perMinute`, refilled evenly up to a minute's worth at `now`. */
function refill(buckets: Map<string, Bucket>, name: string, perMinute: number, now: number): Bucket {
  const b = buckets.get(name) ?? { tokens: perMinute, at: now };
  b.tokens = Math.min(perMinute, b.tokens + ((now - b.at) * perMinute) / 60_000);
  b.at = now;
  buckets.set(name, b);
  return b;
}

/** A KeyRing kept in step with its file (polled: editors replace files, which watches can miss). */
export function watchKeyFile(path: string, log: (line: string) => void): { ring: KeyRing; close: () => void } {
  // Our own poll, compared with what was read: fs.watchFile reports only changes between its own
  // looks, and a change before its first look (taken later, off the thread) was never seen.
  let seen = statSync(path);
  const ring = new KeyRing(readKeyFile(path));
  const timer = setInterval(() => {
    let now: Stats;
    try {
      now = statSync(path);
    } catch {
      return; // being replaced: the next look sees the new one
    }
    if (now.mtimeMs === seen.mtimeMs && now.size === seen.size && now.ino === seen.ino) return;
    seen = now;
    try {
      ring.replace(readKeyFile(path));
      log(`tandem: API keys reloaded from ${path}`);
    } catch (err) {
      log(`tandem: API keys not reloaded, the ones in force stay: ${(err as Error).message}`);
    }
  }, 1000).unref();
  return { ring, close: () => clearInterval(timer) };
}
