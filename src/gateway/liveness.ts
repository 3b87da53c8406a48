// Whether a replica still makes progress, judged by what the gateway sees of its work: a group
// whose member hangs (a stopped or deadlocked RPC worker, a GPU hang) keeps accepting connections
// and its leader keeps answering /health, but the tokens stop. A replica is unresponsive when it
// has streams in flight that were flowing (had sent a byte: a stream still in its prefill is not
// judged) and nothing at all came from it for `hangMs`; or when its engine says it is working on
// requests whose progress (llama-server's slots: prompt tokens processed, tokens decoded) has not
// moved for `hangMs` (a hang between streams, or under whole answers). Pure: the caller says when
// bytes came and what the engine said.
/** What an engine "says" when one of its answers ends: never what /slots says (slotsProgress). */
const ANSWERED = 'answered';

export class Liveness {
  private readonly replicas = new Map<string, { flowing: number; lastByteAt: number }>();
  /** Per replica, what its engine last said it was doing, and since when it has said the same. */
  private readonly engines = new Map<string, { progress: string; since: number }>();

  constructor(private readonly hangMs: number) {}

  /** A stream of `id` sent its first byte: it is flowing. */
  flowing(id: string, now: number): void {
    const r = this.replicas.get(id) ?? { flowing: 0, lastByteAt: now };
    r.flowing++;
    r.lastByteAt = now;
    this.replicas.set(id, r);
  }

  /** A later byte of `id` came. */
  progressed(id: string, now: number): void {
    const r = this.replicas.get(id);
    if (r) r.lastByteAt = now;
  }

  /** A flowing stream of `id` ended (finished, cut, or moved elsewhere). */
  ended(id: string): void {
    const r = this.replicas.get(id);
    if (r && --r.flowing === 0) this.replicas.delete(id);
  }

  /**
   * An answer of `id` ended whole: its engine progressed, as a move of its counters would say. A
   * replica whose answers keep ending need not be asked what its engine is doing (movedAfter).
   */
  answered(id: string, now: number): void {
    this.engines.set(id, { progress: ANSWERED, since: now });
  }

  /** Whether the engine of `id` was seen to progress after `time`. */
  movedAfter(id: string, time: number): boolean {
    return (this.engines.get(id)?.since ?? -Infinity) > time;
  }

  /** What the engine of `id` says of the requests it is working on (undefined: none). */
  engineSays(id: string, progress: string | undefined, now: number): void {
    if (progress === undefined) this.engines.delete(id);
    else if (this.engines.get(id)?.progress !== progress) this.engines.set(id, { progress, since: now });
  }

  /**
   * Only the engines of `ids` are still asked: what the others last said would only age. A replica
   * with no requests has nothing to judge; one whose service is deleting drains its streams out of
   * the list, judged by them alone.
   */
  keepEngines(ids: Set<string>): void {
    for (const id of this.engines.keys()) if (!ids.has(id)) this.engines.delete(id);
  }

  /** `id` was taken out: what its engine said no longer counts. */
  forget(id: string): void {
    this.engines.delete(id);
  }

  /**
   * In how many ms the first replica judged would reach `hangMs` (0: it has), if any: a look then
   * takes it out at the bound itself, not at the next periodic look after it.
   */
  nextDue(now: number): number | undefined {
    let due = Infinity;
    for (const r of this.replicas.values()) due = Math.min(due, r.lastByteAt + this.hangMs);
    for (const e of this.engines.values()) due = Math.min(due, e.since + this.hangMs);
    return due === Infinity ? undefined : Math.max(0, due - now);
  }

  /** The replicas silent (or their engine stuck) for `hangMs` or more, each with for how long. */
  unresponsive(now: number): { id: string; silentMs: number }[] {
    const silent = new Map<string, number>();
    for (const [id, r] of this.replicas) silent.set(id, now - r.lastByteAt);
    for (const [id, e] of this.engines) silent.set(id, Math.max(silent.get(id) ?? 0, now - e.since));
    return [...silent].filter(([, ms]) => ms >= this.hangMs).map(([id, silentMs]) => ({ id, silentMs }));
  }
}

/**
 * llama-server's GET /slots as progress: the slots processing a request, each with its prompt
 * tokens processed and tokens decoded (undefined: none processing, or not that answer).
 */
export function slotsProgress(slots: unknown): string | undefined {
  if (!Array.isArray(slots)) return undefined;
  const busy = (
    slots as {
      id?: unknown;
      is_processing?: unknown;
      n_prompt_tokens_processed?: unknown;
      next_token?: { n_decoded?: unknown }[];
    }[]
  )
    .filter((s) => s?.is_processing === true)
    .map((s) => [s.id, s.n_prompt_tokens_processed, s.next_token?.[0]?.n_decoded]);
  return busy.length > 0 ? JSON.stringify(busy) : undefined;
}
