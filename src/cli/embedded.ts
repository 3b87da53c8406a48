// The embedded default assembled: a reconciler over local processes, the gateway in front of its
// groups, and the autoscaler between them (it reads the gateway's load and scales the services).
import { Autoscaler, reconcilerTarget, type AutoscalerOptions } from '../autoscaler/autoscaler.js';
import { gatewayFor } from '../platforms/local/backend-source.js';
import type { Gateway, GatewayOptions } from '../gateway/server.js';
import { LocalPlatform } from '../platforms/local/platform.js';
import { Reconciler } from '../controller/reconciler.js';
import type { ServiceTemplate } from '../core/service.js';

export interface Embedded {
  reconciler: Reconciler;
  gateway: Gateway;
  autoscaler: Autoscaler;
  /** Starts reconciling and scaling (the gateway listens when its caller says). */
  start(): void;
}

export function embedded(
  templates: ServiceTemplate[],
  logDir: string,
  gateway: Omit<GatewayOptions, 'backends' | 'models' | 'groups' | 'services' | 'onDemand'>,
  autoscaling: AutoscalerOptions = {},
): Embedded {
  const reconciler = new Reconciler(new LocalPlatform({ logDir }));
  // The gateway tells the autoscaler of demand; the autoscaler reads the gateway's load.
  let autoscaler: Autoscaler | undefined = undefined;
  const g = gatewayFor(reconciler, { ...gateway, onDemand: (model) => autoscaler?.demand(model) });
  autoscaler = new Autoscaler(reconcilerTarget(reconciler), g, autoscaling);
  for (const template of templates) reconciler.apply(autoscaler.manage(template));
  return {
    reconciler,
    gateway: g,
    autoscaler,
    start: () => {
      reconciler.start();
      autoscaler.start();
    },
  };
}
