// The embedded default assembled: a reconciler over local processes (the local platform, its
// in-memory status store and events), the gateway in front of its groups, and the autoscaler
// between them (it reads the gateway's load and scales the services through the reconciler).
import { Autoscaler, type AutoscalerOptions } from '../autoscaler/autoscaler.js';
import { Reconciler } from '../controller/reconciler.js';
import type { ServiceTemplate } from '../core/service.js';
import { Gateway, type GatewayOptions } from '../gateway/server.js';
import { LocalBackends } from '../platforms/local/backend-source.js';
import { LocalEvents } from '../platforms/local/events.js';
import { LocalPlatform } from '../platforms/local/platform.js';
import { reconcilerTarget } from '../platforms/local/scale-target.js';
import { MemoryStatusStore } from '../platforms/local/status-store.js';

export interface Embedded {
  reconciler: Reconciler;
  events: LocalEvents;
  gateway: Gateway;
  autoscaler: Autoscaler;
  /** Starts reconciling and scaling (the gateway listens when its caller says). */
  start(): void;
}

export function embedded(
  templates: ServiceTemplate[],
  logDir: string,
  gateway: Omit<GatewayOptions, 'source'>,
  autoscaling: AutoscalerOptions = {},
): Embedded {
  const events = new LocalEvents();
  const reconciler = new Reconciler({
    platform: new LocalPlatform({ logDir }),
    store: new MemoryStatusStore(),
    events,
  });
  const g = new Gateway({ ...gateway, source: new LocalBackends(reconciler) });
  const autoscaler = new Autoscaler(reconcilerTarget(reconciler), g, autoscaling);
  g.onDemand((model) => autoscaler.demand(model));
  for (const template of templates) reconciler.apply(autoscaler.manage(template));
  return {
    reconciler,
    events,
    gateway: g,
    autoscaler,
    start: () => {
      reconciler.start();
      autoscaler.start();
    },
  };
}
