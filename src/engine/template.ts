// What every engine's renderer shares: the template hash (what the members run, so that scaling,
// the rollout, failure, restart and startup policies and the timeouts never roll groups), the group policies from the spec, and
// the spec's environment under the group's own.
import { createHash } from 'node:crypto';
import type { InferenceService, StartupPolicy } from '../spec/schema.js';
import { parseDuration } from '../spec/duration.js';
import { parseQuantity } from '../spec/quantity.js';
import type { NodeShare, ServiceTemplate, StreamTokenIds } from '../core/service.js';
import type { Endpoint, GroupRef, MemberTemplate } from '../core/group.js';
import { autoscalingOf } from '../spec/autoscaling.js';

export interface EngineRender {
  /** Members per group. */
  size: number;
  /** Everything besides the spec that decides what members run (model, binaries, nodes). */
  identity: unknown;
  /** Requests a group serves at once: the engine's flag for it in spec.engine.args, else its default. */
  slots: { flags: string[]; fallback: number };
  /** Members bind wildcard ports (locally: a network namespace per group). */
  isolated?: boolean;
  /** Where the engine's streams can carry token ids. */
  tokenIds?: StreamTokenIds;
  /** A cached prompt of the engine serves one request at a time (Backend.exclusiveCache). */
  exclusiveCache?: boolean;
  /** The engine's own order of starting members when the spec names none. */
  startupPolicy: StartupPolicy;
  /** What each member holds, as the planner splits the model (when the model is known here). */
  split?: NodeShare[];
  members(group: GroupRef, endpoints: Endpoint[]): MemberTemplate[];
}

export function engineServiceTemplate(service: InferenceService, engine: EngineRender): ServiceTemplate {
  const { spec } = service;
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        // Only what the members run: policies (how many, when to give up, in what order to start,
        // how long to wait) take effect on the groups as they are.
        spec: {
          ...spec,
          replicas: undefined,
          rollout: undefined,
          failurePolicy: undefined,
          autoscaling: undefined,
          startupTimeout: undefined,
          restartPolicy: undefined,
          startupPolicy: undefined,
          scheduling: { ...spec.scheduling, placementTimeout: undefined },
        },
        engine: engine.identity,
      }),
    )
    .digest('hex')
    .slice(0, 12);
  const slots = flagValue(spec.engine.args, engine.slots.flags) ?? engine.slots.fallback;
  const autoscaling = spec.autoscaling && autoscalingOf(spec.autoscaling, slots);
  return {
    name: service.metadata.name,
    servedName: spec.model.servedName,
    replicas: spec.replicas,
    size: engine.size,
    hash,
    rollout: spec.rollout,
    slots,
    ...(spec.resources.gpu > 0 ? { accelerated: true } : {}),
    ...(engine.exclusiveCache ? { exclusiveCache: true } : {}),
    ...(autoscaling ? { autoscaling } : {}),
    ...(engine.isolated ? { isolated: true } : {}),
    ...(engine.tokenIds ? { tokenIds: engine.tokenIds } : {}),
    ...(engine.split ? { split: engine.split } : {}),
    render: (group, endpoints) => ({
      members: engine.members(group, endpoints),
      startupPolicy: spec.startupPolicy ?? engine.startupPolicy,
      restartPolicy: spec.restartPolicy,
      startupTimeoutMs: parseDuration(spec.startupTimeout),
      placementTimeoutMs: parseDuration(spec.scheduling.placementTimeout),
      failurePolicy: {
        maxRestarts: spec.failurePolicy.maxRestarts,
        windowMs: parseDuration(spec.failurePolicy.window),
      },
      hash,
    }),
  };
}

/** A member's environment: the spec's, the engine's, then the group's own (which nothing overrides). */
export function memberEnv(service: InferenceService, endpoints: Endpoint[], index: number): Record<string, string> {
  return { ...service.spec.env, ...service.spec.engine.env, ...groupEnv(endpoints, index) };
}

/** The environment every member gets, as LeaderWorkerSet sets it. */
export function groupEnv(endpoints: Endpoint[], index: number): Record<string, string> {
  return {
    LWS_LEADER_ADDRESS: endpoints[0]!.host,
    LWS_GROUP_SIZE: String(endpoints.length),
    LWS_WORKER_INDEX: String(index),
  };
}

/** CPU quantity ("2", "500m", 1.5) → whole threads, at least 1. */
export function threadsFor(cpu: string | number | undefined): number | undefined {
  if (cpu === undefined) return undefined;
  return Math.max(1, Math.ceil(parseQuantity(cpu)));
}

/** Tensor × pipeline for GPU engines: the spec's, else every GPU of a node in tensor and one stage per node. */
export function tensorPipeline(service: InferenceService, nodes: number): { tp: number; pp: number } {
  const { parallelism, resources } = service.spec;
  return { tp: parallelism.tensor ?? Math.max(1, resources.gpu), pp: parallelism.pipeline ?? nodes };
}

/** The integer value of the last of `flags` in `args` (`--flag N` or `--flag=N`). */
export function flagValue(args: string[], flags: string[]): number | undefined {
  let value: number | undefined;
  args.forEach((arg, i) => {
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (!flags.includes(flag)) return;
    const n = Number(inline ?? args[i + 1]);
    if (Number.isInteger(n) && n > 0) value = n;
  });
  return value;
}
