// The embedded default assembled: a reconciler over local processes (the local platform, its
// in-memory status store and events), the gateway in front of its groups, the autoscaler between
// them (it reads the gateway's load and scales the services through the reconciler), and the
// control API in the gateway (services applied, scaled and deleted while it runs).
import { Autoscaler, type AutoscalerOptions } from '../autoscaler/autoscaler.js';
import { Reconciler } from '../controller/reconciler.js';
import type { ServiceTemplate } from '../core/service.js';
import { Gateway, type GatewayOptions } from '../gateway/server.js';
import { LocalBackends } from '../platforms/local/backend-source.js';
import { LocalEvents } from '../platforms/local/events.js';
import { LocalPlatform } from '../platforms/local/platform.js';
import type { LogSpaceChange } from '../platforms/local/log-space.js';
import { reconcilerTarget } from '../platforms/local/scale-target.js';
import { MemoryStatusStore } from '../platforms/local/status-store.js';
import { RolloutDrain } from '../platforms/local/rollout-drain.js';
import type { BackendSource } from '../core/serving.js';
import { controlRoutes } from '../control/routes.js';
import { stderrProgress } from '../util/progress.js';
import { packageVersion } from '../util/version.js';
import { dashboardFiles } from '../ui/assets.js';
import { LocalControl } from './local-control.js';

export interface Embedded {
  reconciler: Reconciler;
  events: LocalEvents;
  gateway: Gateway;
  autoscaler: Autoscaler;
  control: LocalControl;
  /** Starts reconciling and scaling (the gateway listens when its caller says). */
  start(): void;
}

export function embedded(
  templates: ServiceTemplate[],
  logDir: string,
  gateway: Omit<GatewayOptions, 'source'>,
  autoscaling: AutoscalerOptions = {},
  drainMs = 30_000,
): Embedded {
  const events = new LocalEvents();
  // The reconciler is made below; log space is looked at only once members run.
  const platform = new LocalPlatform({ logDir, onLogSpace: (change, free) => logSpace(change, free) });
  // The reconciler drains through the gateway, which serves the reconciler's groups.
  const late: { autoscaler?: Autoscaler; gateway?: Gateway; drain?: RolloutDrain } = {};
  const reconciler = new Reconciler({
    platform,
    store: new MemoryStatusStore(),
    events,
    drain: { drained: (group) => late.drain!.drained(group) },
  });
  late.drain = new RolloutDrain(() => late.gateway!, reconciler, drainMs);
  const target = reconcilerTarget(reconciler);
  // The autoscaler needs the gateway and the gateway the control API, which needs the autoscaler.
  const control = new LocalControl({
    reconciler,
    autoscaler: { manage: (t) => late.autoscaler!.manage(t) },
    events,
    logPath: (group, member) => platform.logPath(group, member),
    drainMs,
    progress: stderrProgress,
  });
  const g = new Gateway({
    ...gateway,
    source: withoutHidden(new LocalBackends(reconciler), control.hidden),
    control: controlRoutes(control, packageVersion()),
    ui: dashboardFiles(),
  });
  late.gateway = g;
  const autoscaler = (late.autoscaler = new Autoscaler(target, g, autoscaling));
  control.gateway = g;
  g.onDemand((model) => autoscaler.demand(model));
  g.onUnresponsive((id, silentMs) => {
    const [service, replica] = id.split('/') as [string, string];
    const message = `nothing came from it for ${(silentMs / 1000).toFixed(1)} s while its streams were flowing: recreating the group`;
    void reconciler.unresponsive(service, Number(replica), message);
  });
  // Said for each service, whose members' logs are there: what `tandem status` and the events show.
  const logSpace = (change: LogSpaceChange, free: number) => {
    const message =
      change === 'full'
        ? `the log directory ${logDir} is full (${Math.round(free / 1024)} KiB free): members' output is lost until there is room; serving goes on`
        : `the log directory ${logDir} has room again (${Math.round(free / 1024 / 1024)} MiB free)`;
    for (const { name } of reconciler.snapshot())
      events.record({
        at: Date.now(),
        service: name,
        reason: change === 'full' ? 'LogsFull' : 'LogsHaveRoom',
        ...(change === 'full' ? { warning: true } : {}),
        message,
      });
  };
  for (const template of templates) reconciler.apply(autoscaler.manage(template));
  return {
    reconciler,
    events,
    gateway: g,
    autoscaler,
    control,
    start: () => {
      reconciler.start();
      autoscaler.start();
    },
  };
}

/** The source without the models being deleted: new requests for them find no model. */
function withoutHidden(source: BackendSource, hidden: ReadonlySet<string>): BackendSource {
  return {
    backends: () => (hidden.size === 0 ? source.backends() : source.backends().filter((b) => !hidden.has(b.model))),
    models: () => (hidden.size === 0 ? source.models() : source.models().filter((m) => !hidden.has(m.id))),
    groups: () => source.groups(),
    ...(source.services ? { services: () => source.services!() } : {}),
  };
}
