// A request's cancellation by its client (it went away): what waits on it stops, an engine's
// generation included.

/**
 * A request's cancellation by its client, with one hook at a time: the step waiting on it (a
 * queue, an engine). An AbortController and its listeners cost more per request than this does
 * (profiles of bench:peers), and nothing here needs more than one party to hear of it.
 */
export class Cancel {
  cancelled = false;
  private hook: (() => void) | undefined;

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const hook = this.hook;
    this.hook = undefined;
    hook?.();
  }

  /** `hook` runs once on cancellation (at once if cancelled already); undefined takes it back. */
  onCancel(hook: (() => void) | undefined): void {
    if (hook && this.cancelled) hook();
    else this.hook = hook;
  }
}

/** A wait ended because its request was cancelled. */
export class Cancelled extends Error {
  constructor() {
    super('the client went away');
  }
}
