// The control API's routes (under /api/v1, beside the OpenAI API), one platform-neutral table over
// a ControlPlane:
//   GET    /services               every service: its spec as applied, what runs
//   POST   /services               apply InferenceServices (YAML, several documents; or JSON, one or a list)
//   GET    /services/NAME          one service
//   DELETE /services/NAME          drain, then stop (202: under way)
//   PUT    /services/NAME/scale    {"replicas": N}
//   GET    /services/NAME/logs     ?replica=R&member=M&tail=N&follow=true: a member's log, as server-sent events
//   GET    /events                 recent events, oldest first
//   GET    /history                each model's serving over the last minutes (the gateway answers it)
//   GET    /openapi.json           this API described (openapi.ts)
import { parseAllDocuments } from 'yaml';
import {
  ControlError,
  type ControlAnswer,
  type ControlHandler,
  type ControlPlane,
  type ControlRequest,
} from '../core/control.js';
import { controlOpenApi } from './openapi.js';

export function controlRoutes(plane: ControlPlane, version: string): ControlHandler {
  return async (request) => {
    try {
      if (request.method === 'GET' && request.path === '/openapi.json') {
        return { status: 200, body: controlOpenApi(version) };
      }
      return await route(plane, request);
    } catch (err) {
      if (!(err instanceof ControlError)) throw err;
      return {
        status: err.status,
        body: {
          error: { code: err.code, message: err.message, ...(err.problems.length ? { problems: err.problems } : {}) },
        },
      };
    }
  };
}

async function route(
  plane: ControlPlane,
  { method, path, query, body, contentType, signal }: ControlRequest,
): Promise<ControlAnswer> {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [collection, name, sub] = parts;
  const allowed = (methods: string[]) => {
    if (!methods.includes(method))
      throw new ControlError(400, 'method_not_allowed', `${path} takes ${methods.join(' or ')}`);
  };
  if (collection === 'events' && parts.length === 1) {
    allowed(['GET']);
    return { status: 200, body: { items: await plane.events() } };
  }
  if (collection !== 'services' || parts.length > 3 || (sub !== undefined && sub !== 'scale' && sub !== 'logs')) {
    throw new ControlError(404, 'not_found', `no control route ${method} /api/v1${path}`);
  }
  if (name === undefined) {
    allowed(['GET', 'POST']);
    if (method === 'GET') return { status: 200, body: { items: await plane.list() } };
    return { status: 200, body: { applied: await plane.apply(documents(body, contentType)) } };
  }
  const known = async () => {
    const record = await plane.get(name);
    if (!record) throw new ControlError(404, 'not_found', `no service named "${name}"`);
    return record;
  };
  if (sub === 'logs') {
    allowed(['GET']);
    await known();
    const number = (key: string, fallback?: number) => {
      const text = query.get(key);
      if (text === null) return fallback;
      const n = Number(text);
      if (!Number.isInteger(n) || n < 0) throw new ControlError(400, 'invalid_query', `${key}: must be an integer ≥ 0`);
      return n;
    };
    const tail = number('tail');
    const ref = {
      replica: number('replica', 0)!,
      member: number('member', 0)!,
      follow: query.get('follow') === 'true',
      ...(tail === undefined ? {} : { tail }),
    };
    return { status: 200, events: plane.log(name, ref, signal) };
  }
  if (sub === 'scale') {
    allowed(['PUT']);
    await known();
    const replicas = (parse(body, 'application/json') as { replicas?: unknown } | null)?.replicas;
    if (!Number.isInteger(replicas) || (replicas as number) < 0 || (replicas as number) > 1000) {
      throw new ControlError(400, 'invalid_replicas', 'the body must be {"replicas": N}, N an integer from 0 to 1000');
    }
    await plane.scale(name, replicas as number);
    return { status: 200, body: await plane.get(name) };
  }
  allowed(['GET', 'DELETE']);
  if (method === 'GET') return { status: 200, body: await known() };
  await known();
  await plane.delete(name);
  return { status: 202, body: { deleting: name } };
}

/** The documents of a body: YAML (several, `---` apart) or JSON (one object, or a list of them). */
function documents(body: Buffer, contentType: string | undefined): unknown[] {
  const parsed = parse(body, contentType);
  const list = Array.isArray(parsed) ? parsed : [parsed];
  const docs = list.filter((d) => d !== null && d !== undefined);
  if (docs.length === 0) throw new ControlError(400, 'no_documents', 'the body holds no InferenceService');
  return docs;
}

function parse(body: Buffer, contentType: string | undefined): unknown {
  const text = body.toString('utf8');
  if (contentType?.includes('json')) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new ControlError(400, 'invalid_json', `the body is not valid JSON: ${(err as Error).message}`);
    }
  }
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const errors = list.flatMap((d, i) => d.errors.map((e) => `[${i}]: invalid YAML: ${e.message.split('\n')[0]}`));
  if (errors.length > 0) throw new ControlError(400, 'invalid_yaml', 'the body is not valid YAML', errors);
  return list.map((d) => d.toJS() as unknown);
}
