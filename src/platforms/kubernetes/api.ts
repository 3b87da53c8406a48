// Small helpers around @kubernetes/client-node: idempotent calls and watches that survive errors.
import type * as k8s from '@kubernetes/client-node';

/** Awaits an API call, treating one HTTP status (409 on create, 404 on delete) as done. */
export async function ignoreStatus<T>(status: number, call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if ((err as { code?: number }).code === status) return undefined;
    throw err;
  }
}

/** An informer (LIST then WATCH) restarted whenever its watch ends in an error, until stopped. */
export class Watch<T extends k8s.KubernetesObject> {
  private stopped = false;

  constructor(
    private readonly informer: k8s.Informer<T>,
    what: string,
    log: (line: string) => void,
  ) {
    informer.on('error', (err?: unknown) => {
      if (this.stopped) return; // our own stop() aborts the request: not an error
      log(`tandem: watch on ${what} ended (${(err as Error | undefined)?.message ?? 'no reason'}); restarting in 1 s`);
      setTimeout(() => {
        if (!this.stopped) void informer.start().catch(() => undefined);
      }, 1000);
    });
  }

  start(): Promise<void> {
    this.stopped = false;
    return this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }
}

/** The message of an API error: the API server's own Status message when there is one. */
export function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      // not JSON: fall through to the error's own message
    }
  }
  return (err as Error).message;
}
