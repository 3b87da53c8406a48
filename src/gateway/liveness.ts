// Whether a replica still makes progress, judged by what the gateway sees of its work: a group
// whose member hangs (a stopped or deadlocked RPC worker, a GPU hang) keeps accepting connections
// and its leader keeps answering /health, but the tokens stop. A replica is unresponsive when it
// has streams in flight that were flowing (had sent a byte: a stream still in its prefill is not
// judged) and nothing at all came from it for `hangMs`. Pure: the caller says when bytes came.
export class Liveness {
  private readonly replicas = new Map<string, { flowing: number; lastByteAt: number }>();

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

  /** The replicas with flowing streams and no byte for `hangMs` or more, each with how long it has been silent. */
  unresponsive(now: number): { id: string; silentMs: number }[] {
    const out: { id: string; silentMs: number }[] = [];
    for (const [id, r] of this.replicas) {
      const silentMs = now - r.lastByteAt;
      if (silentMs >= this.hangMs) out.push({ id, silentMs });
    }
    return out;
  }
}
