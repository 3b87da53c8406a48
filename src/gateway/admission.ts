// Admission: a replica is sent at most admitted(slots) requests (backends.ts); the rest wait in a
// bounded first-in, first-out queue per model, each with a deadline. A freed slot goes to the
// queue's head before any newcomer. When the queue is full (or a wait passes its deadline) the
// answer is 429 with a Retry-After worked out from the rate at which the model's requests have
// been finishing, not a constant.
import type { Backend } from './backends.js';
import { Cancelled, type Cancel } from './cancel.js';

export interface AdmissionOptions {
  /** Requests that may wait per model. */
  queueLimit: number;
  /** How long one may wait for a slot. */
  queueTimeoutMs: number;
}

export const DEFAULT_ADMISSION: AdmissionOptions = { queueLimit: 1024, queueTimeoutMs: 30_000 };

interface Waiter {
  tried: ReadonlySet<string>;
  /** The prompt's prefix keys (prefix.ts), so that a freed slot is picked for it as for a newcomer. */
  keys: readonly number[];
  since: number;
  grant: (b: Backend) => void;
}

/** Why a request was not admitted, with the seconds after which it is worth trying again. */
export class NotAdmitted extends Error {
  constructor(
    readonly code: 'queue_full' | 'queue_timeout',
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

export class SlotQueues {
  private readonly waiting = new Map<string, Waiter[]>();
  /** When each model's recent requests finished, for its service rate. */
  private readonly finished = new Map<string, number[]>();

  constructor(private readonly options: AdmissionOptions) {}

  queued(model: string): number {
    return this.waiting.get(model)?.length ?? 0;
  }

  /** Waits for `grant` from wake(); rejects with NotAdmitted when full or past the deadline, or with Cancelled when `cancel` is. */
  wait(model: string, tried: ReadonlySet<string>, cancel: Cancel, keys: readonly number[] = []): Promise<Backend> {
    const queue = this.waiting.get(model) ?? [];
    if (queue.length >= this.options.queueLimit) {
      return Promise.reject(
        new NotAdmitted(
          'queue_full',
          `'${model}' has ${queue.length} requests waiting already`,
          this.retryAfterS(model),
        ),
      );
    }
    this.waiting.set(model, queue);
    return new Promise<Backend>((resolve, reject) => {
      const leave = () => {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        clearTimeout(timer);
        cancel.onCancel(undefined);
      };
      const timer = setTimeout(() => {
        leave();
        reject(
          new NotAdmitted(
            'queue_timeout',
            `no slot of '${model}' came free within ${this.options.queueTimeoutMs / 1000} s`,
            this.retryAfterS(model),
          ),
        );
      }, this.options.queueTimeoutMs);
      const waiter: Waiter = {
        tried,
        keys,
        since: performance.now(),
        grant: (b) => {
          leave();
          resolve(b);
        },
      };
      queue.push(waiter);
      cancel.onCancel(() => {
        leave();
        reject(new Cancelled());
      });
    });
  }

  /**
   * Hands free slots to the model's waiters in order: `pick` finds a backend with a free slot for
   * a waiter (reserving it), none ends the round. Returns how long each granted waiter waited (ms).
   */
  wake(model: string, pick: (tried: ReadonlySet<string>, keys: readonly number[]) => Backend | undefined): number[] {
    const queue = this.waiting.get(model);
    const waited: number[] = [];
    while (queue && queue.length > 0) {
      const head = queue[0]!;
      const backend = pick(head.tried, head.keys);
      if (!backend) break;
      waited.push(performance.now() - head.since);
      head.grant(backend);
    }
    return waited;
  }

  /** Models with requests waiting. */
  models(): string[] {
    return [...this.waiting].filter(([, q]) => q.length > 0).map(([m]) => m);
  }

  /** A request of `model` finished at `now` (ms). */
  done(model: string, now: number): void {
    const times = this.finished.get(model) ?? [];
    times.push(now);
    if (times.length > 64) times.shift();
    this.finished.set(model, times);
  }

  /** Seconds until the queue ahead would have drained at the measured rate (1 when none is known). */
  retryAfterS(model: string): number {
    const times = this.finished.get(model) ?? [];
    const span = (times.at(-1)! - times[0]!) / 1000;
    if (times.length < 2 || span <= 0) return 1;
    const perSecond = (times.length - 1) / span;
    return Math.max(1, Math.ceil((this.queued(model) + 1) / perSecond));
  }
}
