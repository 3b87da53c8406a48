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

/** Starts an informer (LIST then WATCH) and restarts it whenever its watch ends in an error. */
export async function watchForever<T extends k8s.KubernetesObject>(
  informer: k8s.Informer<T>,
  what: string,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<void> {
  informer.on('error', (err?: unknown) => {
    log(`tandem: watch on ${what} ended (${(err as Error | undefined)?.message ?? 'no reason'}); restarting in 1 s`);
    setTimeout(() => void informer.start().catch(() => undefined), 1000);
  });
  await informer.start();
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
