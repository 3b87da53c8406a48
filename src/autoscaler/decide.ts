// The autoscaling decision: from the load a service's gateway has seen (ongoing and queued requests
// over a look-back window), its replicas and its measured time to ready, how many replicas it
// should have now. Pure; the caller keeps the returned state and feeds it back (autoscaler.ts).
//
//  - Load is the mean of ongoing + queued requests over `lookBackMs`, as Ray Serve's autoscaler
//    averages it; the replicas it asks for are load / target, moved towards by the smoothing
//    factors, within [minReplicas, maxReplicas].
//  - From zero: any request scales up at once (it is waiting in the gateway's queue).
//  - Up, reactive (Ray Serve): only once the load has asked for more for `upscaleDelayMs`.
//  - Up, ahead (Tandem's default): also at once when the load expected by the time a new group
//    would be ready (the window's trend carried forward by the measured startup time), or the
//    requests waiting right now, exceed what the current replicas take at target. Waiting out the
//    delay would only let the queue build for a start that takes minutes.
//  - Down: only once the load has asked for fewer for `downscaleDelayMs`; the last replica goes
//    only after no request at all for `scaleToZeroAfterMs`. The caller drains a group before it
//    removes it.
//  - A group that failed or is starting still counts as a replica: the reconciler recreates it,
//    and adding another for it would only double a start that is already under way.

import type { Autoscaling } from '../core/service.js';

export type { Autoscaling };

/** What the gateway had in hand at one moment. */
export interface LoadSample {
  at: number;
  /** Requests being served plus those waiting in the gateway's queue. */
  requests: number;
  /** Of those, waiting for a slot (or for a first replica). */
  queued: number;
}

export interface ScalingState {
  /** The replica count in force. */
  replicas: number;
  /** Since when the load has asked for more (or fewer) replicas than `replicas`, continuously. */
  upSince?: number;
  downSince?: number;
  /** When a request was last seen (ongoing or queued). */
  lastBusyAt?: number;
}

export interface ScalingInput {
  now: number;
  /** Samples in time order; those older than the look-back window are ignored. */
  samples: LoadSample[];
  /** Median time from creating a group to Ready, once measured. */
  startupMs?: number;
}

export interface ScalingDecision {
  replicas: number;
  /** Why it changed; absent when it did not. */
  reason?: string;
  state: ScalingState;
}

export function decideReplicas(config: Autoscaling, state: ScalingState, input: ScalingInput): ScalingDecision {
  const { now } = input;
  const window = input.samples.filter((s) => s.at >= now - config.lookBackMs && s.at <= now);
  const last = window.at(-1);
  const busy = last !== undefined && last.requests > 0;
  const lastBusyAt = busy ? now : state.lastBusyAt;
  const load = window.length === 0 ? 0 : window.reduce((sum, s) => sum + s.requests, 0) / window.length;
  const current = state.replicas;
  const clip = (n: number) => Math.min(config.maxReplicas, Math.max(config.minReplicas, n));
  const keep = (extra: Partial<ScalingState> = {}): ScalingDecision => ({
    replicas: current,
    state: { replicas: current, ...(lastBusyAt === undefined ? {} : { lastBusyAt }), ...extra },
  });
  const change = (replicas: number, reason: string): ScalingDecision => ({
    replicas,
    reason,
    state: { replicas, ...(lastBusyAt === undefined ? {} : { lastBusyAt }) },
  });

  if (current === 0) {
    if (!busy) return keep();
    const replicas = clip(Math.max(1, Math.ceil(last.requests / config.target)));
    return change(replicas, `${last.requests} request(s) arrived with no replica: scaling from zero`);
  }

  const asked = clip(smoothed(config, load, current));
  if (config.policy === 'ahead') {
    const soon = expected(window, input);
    if (soon > current * config.target) {
      const replicas = clip(Math.max(asked, Math.ceil(soon / config.target)));
      const when = input.startupMs === undefined ? 'now' : `within the ${secs(input.startupMs)} a group takes to start`;
      if (replicas > current)
        return change(
          replicas,
          `${fmt(soon)} requests expected ${when}, over ${current} × ${fmt(config.target)} at target`,
        );
    }
  }
  if (asked > current) {
    const upSince = state.upSince ?? now;
    if (now - upSince >= config.upscaleDelayMs)
      return change(asked, `load ${fmt(load)} over ${current} × ${fmt(config.target)} for ${secs(now - upSince)}`);
    return keep({ upSince });
  }
  if (asked < current) {
    const downSince = state.downSince ?? now;
    if (asked === 0 && current === 1) {
      // The last replica: only after no request at all for scaleToZeroAfter (and the window).
      const quietFor = now - (lastBusyAt ?? downSince);
      if (quietFor >= config.scaleToZeroAfterMs) return change(0, `no request for ${secs(quietFor)}: scaling to zero`);
      return keep({ downSince });
    }
    if (now - downSince >= config.downscaleDelayMs)
      return change(
        Math.max(1, asked),
        `load ${fmt(load)} under ${current} × ${fmt(config.target)} for ${secs(now - downSince)}`,
      );
    return keep({ downSince });
  }
  return keep();
}

/** Ray Serve's step: replicas × (1 + (load / (replicas × target) − 1) × smoothing), rounded up. */
function smoothed(config: Autoscaling, load: number, replicas: number): number {
  const ratio = load / (replicas * config.target);
  const factor = ratio >= 1 ? config.upscaleSmoothing : config.downscaleSmoothing;
  return Math.ceil(replicas * (1 + (ratio - 1) * factor));
}

/**
 * The load expected once a group started now would be ready: the window's least-squares trend
 * carried forward by the measured startup time (none before a start was measured), never less
 * than the window's mean. While requests
 * wait for a slot, everything in hand counts: the replicas are already full.
 */
export function expected(window: LoadSample[], input: Pick<ScalingInput, 'now' | 'startupMs'>): number {
  const last = window.at(-1);
  if (!last) return 0;
  const n = window.length;
  const meanT = window.reduce((s, p) => s + p.at, 0) / n;
  const meanY = window.reduce((s, p) => s + p.requests, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of window) {
    num += (p.at - meanT) * (p.requests - meanY);
    den += (p.at - meanT) ** 2;
  }
  const slope = den === 0 ? 0 : num / den;
  // Carried forward only by a measured start time: with none, there is no lead to cover.
  const projected = input.startupMs === undefined ? 0 : meanY + slope * (input.now + input.startupMs - meanT);
  return Math.max(meanY, projected, last.queued > 0 ? last.requests : 0);
}

const fmt = (n: number) => String(Math.round(n * 10) / 10);
const secs = (ms: number) => `${Math.round(ms / 100) / 10}s`;
