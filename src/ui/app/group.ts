/// <reference lib="dom" />
// A group as it is split: its nodes side by side, leader first, each with the layers the planner
// gives it, its memory (weights, KV cache) drawn to one scale, its address, state and log.
import { html } from 'htm/preact';
import type { GroupSnapshot, ServiceSnapshot } from '../../core/snapshot.js';

const MiB = 2 ** 20;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 1 : 0)} MiB`;

export function Group({
  service,
  group,
  onLog,
}: {
  service: ServiceSnapshot;
  group: GroupSnapshot;
  onLog: (replica: number, member: number) => void;
}) {
  const split = service.split;
  const most = Math.max(1, ...(split ?? []).map((s) => s.weightBytes + s.kvCacheBytes));
  const failure = group.lastFailure;
  return html`<div class="group" data-testid=${`group-${service.name}-${group.replica}`} data-phase=${group.phase}>
    <h3>
      group ${group.replica} <span class=${`phase ${group.phase}`}>${group.phase}</span>
      <span class="muted"> restarts ${group.restarts}</span>
      ${failure ? html`<span class="muted" title=${new Date(failure.at).toISOString()}> · last failure: ${failure.reason}</span>` : null}
    </h3>
    <div class="nodes">
      ${group.members.map((m) => {
        const share = split?.[m.index];
        return html`<div class="node" data-testid=${`node-${service.name}-${group.replica}-${m.index}`}>
          <div class="role">${m.role === 'leader' ? 'leader' : `worker ${m.index}`}</div>
          <div class="muted">${m.address}</div>
          <div class=${`state-${m.state}`}>${m.state}</div>
          ${
            share
              ? html`<div class="layers">layers ${share.layers[0]}–${share.layers[1] - 1}</div>
                  <div class="bar weights" style=${`width:${(100 * share.weightBytes) / most}%`}></div>
                  <div class="muted">weights ${mib(share.weightBytes)}</div>
                  <div class="bar kv" style=${`width:${(100 * share.kvCacheBytes) / most}%`}></div>
                  <div class="muted">KV cache ${mib(share.kvCacheBytes)}</div>`
              : html`<div class="muted">layers: the engine's split</div>`
          }
          <button onClick=${() => onLog(group.replica, m.index)}>log</button>
        </div>`;
      })}
    </div>
  </div>`;
}
