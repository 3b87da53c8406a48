// The control API described as OpenAPI 3.1 (GET /api/v1/openapi.json): the InferenceService body
// from the same zod schema the validator uses, the answers from zod schemas typed against the
// contracts (a schema that drifts from what the API returns does not compile, or fails the test
// that validates the API's own answers against this description).
import { z } from 'zod';
import type { Applied, ServiceRecord } from '../core/control.js';
import type { ServiceEvent } from '../core/group.js';
import type { GroupSnapshot, MemberSnapshot, ServiceSnapshot } from '../core/snapshot.js';
import type { HistoryPoint } from '../core/serving.js';
import { inferenceServiceJsonSchema } from '../spec/schema.js';

const int = z.int();
const GROUP_PHASES = [
  'Pending',
  'Starting',
  'Ready',
  'Recreating',
  'BackingOff',
  'Updating',
  'Failed',
  'Deleting',
] as const;

const Member: z.ZodType<MemberSnapshot> = z.strictObject({
  index: int,
  role: z.enum(['leader', 'worker']),
  address: z.string(),
  state: z.enum(['Pending', 'Starting', 'Ready', 'Exited', 'Terminating']),
  pid: int.optional(),
});

const Address = z.strictObject({ host: z.string(), port: int });
/** Where a leader serves; `external` where clients reach it from outside its group's network. */
const Endpoint = Address.extend({ external: Address.optional() }).strict();

const Group: z.ZodType<GroupSnapshot> = z.strictObject({
  replica: int,
  phase: z.enum(GROUP_PHASES),
  leader: Endpoint,
  restarts: int,
  lastFailure: z.strictObject({ at: z.number(), reason: z.string() }).optional(),
  failed: z.string().optional(),
  templateHash: z.string().optional(),
  createdAt: z.number().optional(),
  members: z.array(Member),
});

const ScaleDecision = z.strictObject({ at: z.number(), from: int, to: int, reason: z.string() });

const Snapshot: z.ZodType<ServiceSnapshot> = z.strictObject({
  name: z.string(),
  servedName: z.string(),
  replicas: int,
  slots: int,
  accelerated: z.boolean().optional(),
  exclusiveCache: z.boolean().optional(),
  tokenIds: z.enum(['llama-server', 'vllm']).optional(),
  startupMs: z.number().optional(),
  templateHash: z.string(),
  groups: z.array(Group),
  split: z
    .array(z.strictObject({ layers: z.tuple([int, int]), weightBytes: z.number(), kvCacheBytes: z.number() }))
    .optional(),
  autoscaling: z.strictObject({ minReplicas: int, maxReplicas: int, last: ScaleDecision.optional() }).optional(),
});

const Record_: z.ZodType<ServiceRecord> = z.strictObject({
  name: z.string(),
  spec: z.unknown(), // the InferenceService as applied: its own schema, referenced below
  status: Snapshot.optional(),
  deleting: z.literal(true).optional(),
});

const AppliedSchema: z.ZodType<Applied> = z.strictObject({
  name: z.string(),
  result: z.enum(['created', 'rolling', 'updated', 'unchanged']),
});

const Event: z.ZodType<ServiceEvent> = z.strictObject({
  at: z.number(),
  service: z.string(),
  replica: int.optional(),
  reason: z.string(),
  warning: z.boolean().optional(),
  message: z.string(),
});

const Point: z.ZodType<HistoryPoint> = z.strictObject({
  at: z.number(),
  requestsPerS: z.number(),
  errorsPerS: z.number(),
  outputTokensPerS: z.number(),
  ttftP50: z.number().optional(),
  ttftP90: z.number().optional(),
  queued: int,
});

const History = z.strictObject({ intervalMs: int, models: z.record(z.string(), z.array(Point)) });

const ErrorBody = z.strictObject({
  error: z.strictObject({ code: z.string(), message: z.string(), problems: z.array(z.string()).optional() }),
});

/** JSON Schema of a zod schema, as a component (no $schema of its own). */
function component(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' });
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const answer = (description: string, schema: unknown) => ({
  description,
  content: { 'application/json': { schema } },
});
const refused = (description: string) => answer(description, ref('Error'));
const nameParameter = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };

export function controlOpenApi(version: string): Record<string, unknown> {
  const record = component(Record_) as { properties: Record<string, unknown> };
  record.properties.spec = ref('InferenceService');
  const { $schema: _, ...inferenceService } = inferenceServiceJsonSchema();
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tandem control API',
      version,
      description:
        'Served by the gateway beside the OpenAI API. With API keys, only keys with the admin scope; without keys, only callers on the same machine.',
    },
    servers: [{ url: '/api/v1' }],
    components: {
      schemas: {
        InferenceService: inferenceService,
        ServiceRecord: record,
        ServiceStatus: component(Snapshot),
        Applied: component(AppliedSchema),
        Event: component(Event),
        History: component(History),
        Error: component(ErrorBody),
      },
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ apiKey: [] }, {}],
    paths: {
      '/services': {
        get: {
          summary: 'Every service: its spec as applied, and what runs',
          responses: {
            200: answer('The services', {
              type: 'object',
              properties: { items: { type: 'array', items: ref('ServiceRecord') } },
              required: ['items'],
              additionalProperties: false,
            }),
          },
        },
        post: {
          summary: 'Apply InferenceServices: all or none',
          requestBody: {
            required: true,
            content: {
              'application/yaml': { schema: ref('InferenceService') },
              'application/json': {
                schema: { oneOf: [ref('InferenceService'), { type: 'array', items: ref('InferenceService') }] },
              },
            },
          },
          responses: {
            200: answer('What the apply did to each service', {
              type: 'object',
              properties: { applied: { type: 'array', items: ref('Applied') } },
              required: ['applied'],
              additionalProperties: false,
            }),
            400: refused('The body is not YAML or JSON, or holds no document'),
            403: refused("Kubernetes: the gateway's ServiceAccount may not write InferenceServices"),
            409: refused('Kubernetes: the object kept changing while it was written'),
            422: refused('Every problem of the documents; nothing was changed'),
          },
        },
      },
      '/services/{name}': {
        parameters: [nameParameter],
        get: {
          summary: 'One service',
          responses: { 200: answer('The service', ref('ServiceRecord')), 404: refused('No such service') },
        },
        delete: {
          summary: 'Drain the service, then stop its groups',
          responses: {
            202: answer('The deletion is under way', {
              type: 'object',
              properties: { deleting: { type: 'string' } },
              required: ['deleting'],
              additionalProperties: false,
            }),
            403: refused("Kubernetes: the gateway's ServiceAccount may not delete InferenceServices"),
            404: refused('No such service'),
          },
        },
      },
      '/services/{name}/scale': {
        parameters: [nameParameter],
        put: {
          summary: "Set a service's replicas",
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: { replicas: { type: 'integer', minimum: 0, maximum: 1000 } },
                  required: ['replicas'],
                },
              },
            },
          },
          responses: {
            200: answer('The service', ref('ServiceRecord')),
            400: refused('Not {"replicas": N}'),
            404: refused('No such service'),
            403: refused("Kubernetes: the gateway's ServiceAccount may not patch InferenceServices"),
            409: refused('An autoscaler owns its replicas'),
          },
        },
      },
      '/services/{name}/logs': {
        parameters: [nameParameter],
        get: {
          summary: "A member's log: its last lines, then (follow) each new one",
          parameters: [
            { name: 'replica', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
            {
              name: 'member',
              in: 'query',
              description: '0: the leader',
              schema: { type: 'integer', minimum: 0, default: 0 },
            },
            {
              name: 'tail',
              in: 'query',
              description: 'Lines to start with (all by default)',
              schema: { type: 'integer', minimum: 0 },
            },
            { name: 'follow', in: 'query', schema: { type: 'boolean', default: false } },
          ],
          responses: {
            200: {
              description: 'Server-sent events, one line of the log in each `data:`',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            400: refused('A query value that is not an integer ≥ 0'),
            404: refused('No such service, member or log'),
          },
        },
      },
      '/events': {
        get: {
          summary: 'Recent events, oldest first',
          responses: {
            200: answer('The events', {
              type: 'object',
              properties: { items: { type: 'array', items: ref('Event') } },
              required: ['items'],
              additionalProperties: false,
            }),
          },
        },
      },
      '/history': {
        get: {
          summary: "Each model's serving over the last 10 minutes, a point per interval (the dashboard's charts)",
          responses: { 200: answer('Points per served model, oldest first', ref('History')) },
        },
      },
      '/openapi.json': {
        get: { summary: 'This description', responses: { 200: answer('OpenAPI 3.1', { type: 'object' }) } },
      },
    },
  };
}
