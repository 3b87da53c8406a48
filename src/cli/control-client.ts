// `tandem apply` and `tandem delete`: the control API of a running gateway, called as any client
// would call it. Problems the gateway finds are reported as `validate` reports them, by file.
import type { Applied } from '../core/control.js';
import { SpecError, type LoadedService } from '../spec/load.js';
import type { Progress } from '../util/progress.js';

interface ControlErrorBody {
  error?: { code?: string; message?: string; problems?: string[] };
}

async function call(
  gateway: string,
  method: string,
  path: string,
  key: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(`${gateway}/api/v1${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new Error(`the gateway at ${gateway} does not answer: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: reported as it came
  }
  return { status: res.status, body: parsed };
}

function failure(status: number, body: unknown): Error {
  const error = (body as ControlErrorBody | undefined)?.error;
  return new Error(`the control API refused it (HTTP ${status}): ${error?.message ?? JSON.stringify(body)}`);
}

/** Applies the loaded services (file:// sources made absolute: the gateway may run elsewhere). */
export async function applyServices(gateway: string, loaded: LoadedService[], key?: string): Promise<Applied[]> {
  const documents = loaded.map(({ service, modelPath }) =>
    modelPath
      ? { ...service, spec: { ...service.spec, model: { ...service.spec.model, source: `file://${modelPath}` } } }
      : service,
  );
  const { status, body } = await call(gateway, 'POST', '/services', key, documents);
  if (status === 200) return (body as { applied: Applied[] }).applied;
  const problems = (body as ControlErrorBody).error?.problems;
  if (status === 422 && problems) {
    // "[i]: problem" is the i-th document's (one document's come bare).
    throw new SpecError(
      problems.map((p) => {
        const at = /^\[(\d+)\]: (.*)$/.exec(p);
        return at ? `${loaded[Number(at[1])]?.file ?? `[${at[1]}]`}: ${at[2]}` : `${loaded[0]!.file}: ${p}`;
      }),
    );
  }
  throw failure(status, body);
}

/** Deletes a service and waits (up to 10 minutes) until it is gone: drained, its groups stopped. */
export async function deleteService(gateway: string, name: string, key: string | undefined, progress: Progress) {
  const path = `/services/${encodeURIComponent(name)}`;
  const { status, body } = await call(gateway, 'DELETE', path, key);
  if (status !== 202) throw failure(status, body);
  progress(`${name}: taking no new request; those in flight finish, then its groups stop`);
  for (const deadline = Date.now() + 600_000; Date.now() < deadline;) {
    const got = await call(gateway, 'GET', path, key);
    if (got.status === 404) return;
    if (got.status !== 200) throw failure(got.status, got.body);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name} is still there after 10 minutes: see 'tandem status'`);
}
