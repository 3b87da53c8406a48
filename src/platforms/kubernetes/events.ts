// The operator's events: a log line each, and a Kubernetes Event on the InferenceService.
import type { EventSink, ServiceEvent } from '../../core/group.js';
import type { ClusterCache } from './cluster-cache.js';
import { serviceEvent } from './objects.js';
import { apiMessage } from './api.js';
import type { RawApi } from './raw.js';

export class KubernetesEvents implements EventSink {
  constructor(
    private readonly api: RawApi,
    private readonly cache: ClusterCache,
    private readonly log: (line: string) => void,
  ) {}

  record(e: ServiceEvent): void {
    const where = e.replica === undefined ? '' : `group ${e.replica}: `;
    this.log(`tandem: ${e.service}: ${where}${e.message}`);
    const uid = this.cache.objects.get(e.service)?.metadata?.uid;
    if (!uid) return;
    const { namespace } = this.cache;
    this.api
      .create(
        `/api/v1/namespaces/${namespace}/events`,
        serviceEvent(namespace, uid, 'operator', { ...e, message: `${where}${e.message}` }),
      )
      .catch((err: unknown) => this.log(`tandem: event for ${e.service} not recorded: ${apiMessage(err)}`));
  }
}
