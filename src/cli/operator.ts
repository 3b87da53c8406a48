// `tandem operator` assembled: the controller's reconciler over the Kubernetes platform, its
// planner state in the group Services, its events as Kubernetes Events, each object's status
// written from the reconciler's view, and the objects' specs fed to the reconciler.
import type * as k8s from '@kubernetes/client-node';
import { Reconciler } from '../controller/reconciler.js';
import { ClusterCache } from '../platforms/kubernetes/cluster-cache.js';
import { KubernetesEvents } from '../platforms/kubernetes/events.js';
import { KubernetesPlatform } from '../platforms/kubernetes/platform.js';
import { RawApi } from '../platforms/kubernetes/raw.js';
import { followInferenceServices } from '../platforms/kubernetes/spec-feed.js';
import { GroupStateStore } from '../platforms/kubernetes/status-store.js';
import { StatusWriter } from '../platforms/kubernetes/status-writer.js';

export interface OperatorOptions {
  namespace: string;
  /** Where the gateway runs (the NetworkPolicies admit its pods from there only); default: `namespace`. */
  gatewayNamespace?: string;
  log?: (line: string) => void;
  /** Passed to the reconciler (tests shorten it). */
  resyncMs?: number;
}

export class Operator {
  readonly reconciler: Reconciler;
  private readonly cache: ClusterCache;
  private readonly status: StatusWriter;

  constructor(kc: k8s.KubeConfig, options: OperatorOptions) {
    const { namespace } = options;
    const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    const api = new RawApi(kc);
    this.cache = new ClusterCache(kc, namespace, log);
    this.reconciler = new Reconciler(
      {
        platform: new KubernetesPlatform(api, this.cache, { gatewayNamespace: options.gatewayNamespace ?? namespace }),
        store: new GroupStateStore(api, this.cache),
        events: new KubernetesEvents(api, this.cache, log),
      },
      { resyncMs: options.resyncMs ?? 30_000 },
    );
    this.status = new StatusWriter(api, this.cache, (name) => this.reconciler.service(name), log);
    this.reconciler.on('tick', (name) => this.status.request(name));
    followInferenceServices(this.cache, this.reconciler, (name, problem) => {
      log(`tandem: ${name}: ${problem}`);
      this.status.request(name);
    });
  }

  /** Fills the caches (pods and group objects first, so the first passes see them), then reconciles. */
  async start(): Promise<void> {
    await this.cache.start();
    this.reconciler.start();
  }

  /** Stops acting; every pod keeps running for the next operator. */
  async stop(): Promise<void> {
    await this.reconciler.stop();
    this.status.stop();
    await this.cache.stop();
  }
}
