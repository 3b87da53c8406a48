// What every k8s-tier test file needs: the control plane (started, or the running one reused) with
// a namespace of the file's own, removed after; and polling with a deadline.
import { after, before } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { silentProgress } from '../../src/util/progress.js';
import { apiClient, startCluster, stopCluster } from './cluster.js';

/** Registers before/after hooks; `ready` gets the kubeconfig once the namespace exists. */
export function useTestCluster(ns: string, ready: (kubeconfig: string) => Promise<void> | void): void {
  let kubeconfig: string | undefined;
  let startedHere = false;
  before(async () => {
    const cluster = await startCluster(silentProgress);
    kubeconfig = cluster.kubeconfig;
    startedHere = cluster.started;
    await apiClient(kubeconfig, k8s.CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
    await ready(kubeconfig);
  });
  after(async () => {
    if (!kubeconfig) return;
    await apiClient(kubeconfig, k8s.CoreV1Api)
      .deleteNamespace({ name: ns })
      .catch(() => undefined);
    if (startedHere) await stopCluster();
  });
}

export { until } from '../helpers.js';
