// Where a gateway in the cluster finds its peers (the other replicas of its Deployment), for the
// load they exchange: the Ready pods labelled as the installed gateway, watched, this pod itself
// left out, each at its pod IP and the scaler port.
import * as k8s from '@kubernetes/client-node';
import { Watch } from './api.js';
import { podReady } from './platform.js';

/** The installed gateway's app label (its Deployment's pods, its Service's selector). */
export const GATEWAY_APP = 'tandem-gateway';

export class GatewayPeers {
  private readonly pods: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
  private readonly watch: Watch<k8s.V1Pod>;

  /** `ownIp`: this pod's IP (the downward API's status.podIP), left out. */
  constructor(
    kc: k8s.KubeConfig,
    namespace: string,
    private readonly ownIp: string,
    private readonly port: number,
    log: (line: string) => void,
  ) {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const labelSelector = `app.kubernetes.io/name=${GATEWAY_APP}`;
    this.pods = k8s.makeInformer(
      kc,
      `/api/v1/namespaces/${namespace}/pods`,
      () => core.listNamespacedPod({ namespace, labelSelector }),
      labelSelector,
    );
    this.watch = new Watch(this.pods, 'gateway pods', log);
  }

  start(): Promise<void> {
    return this.watch.start();
  }

  stop(): Promise<void> {
    return this.watch.stop();
  }

  /** host:port of every other Ready gateway pod. */
  addresses(): string[] {
    return this.pods
      .list()
      .filter((p) => p.status?.podIP && p.status.podIP !== this.ownIp && !p.metadata?.deletionTimestamp && podReady(p))
      .map((p) => `${p.status!.podIP}:${this.port}`);
  }
}
