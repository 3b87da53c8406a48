// Gateways tell each other what they have in hand (several gateways, one load: shared-load.ts),
// over gRPC on the port that serves KEDA's external scaler: a service of their own there
// (tandem.peers.PeerLoad/Report), asked by every peer once a second.
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import type { LoadReport } from '../core/serving.js';
import type { SharedLoad } from './shared-load.js';

const CONTRACT = {
  nested: {
    tandem: {
      nested: {
        peers: {
          nested: {
            PeerLoad: { methods: { Report: { requestType: 'ReportRequest', responseType: 'LoadReport' } } },
            ReportRequest: { fields: {} },
            ModelLoad: {
              fields: {
                model: { type: 'string', id: 1 },
                requests: { type: 'int32', id: 2 },
                queued: { type: 'int32', id: 3 },
              },
            },
            ReplicaLoad: { fields: { replica: { type: 'string', id: 1 }, serving: { type: 'int32', id: 2 } } },
            LoadReport: {
              fields: {
                models: { rule: 'repeated', type: 'ModelLoad', id: 1 },
                replicas: { rule: 'repeated', type: 'ReplicaLoad', id: 2 },
              },
            },
          },
        },
      },
    },
  },
};

interface Wire {
  models: { model: string; requests: number; queued: number }[];
  replicas: { replica: string; serving: number }[];
}

type PeerClient = grpc.Client & {
  Report(request: object, options: grpc.CallOptions, callback: grpc.requestCallback<Wire>): grpc.ClientUnaryCall;
};

function peerService(): grpc.ServiceClientConstructor {
  const json = CONTRACT as unknown as Parameters<typeof fromJSON>[0];
  const pkg = grpc.loadPackageDefinition(fromJSON(json, { defaults: true })) as unknown as {
    tandem: { peers: { PeerLoad: grpc.ServiceClientConstructor } };
  };
  return pkg.tandem.peers.PeerLoad;
}

/** The service that answers a peer with `report()`, for a gRPC server that also serves KEDA. */
export function peerLoadService(report: () => LoadReport): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const toWire = (r: LoadReport): Wire => ({
    models: Object.entries(r.models).map(([model, l]) => ({ model, ...l })),
    replicas: Object.entries(r.serving).map(([replica, serving]) => ({ replica, serving })),
  });
  const Report: grpc.handleUnaryCall<unknown, Wire> = (_call, callback) => callback(null, toWire(report()));
  return [peerService().service, { Report }];
}

/**
 * Asks every peer `addresses()` names (host:port of their scaler port) for its load every
 * `intervalMs` and hands what they answer to `shared`; a peer that does not answer is left to go
 * stale there.
 */
export class PeerPoller {
  private readonly clients = new Map<string, PeerClient>();
  /** Peers whose last answer came, to say when that changes. */
  private readonly answering = new Set<string>();
  private timer?: NodeJS.Timeout;
  private readonly Client = peerService();

  constructor(
    private readonly addresses: () => string[],
    private readonly shared: SharedLoad,
    private readonly log: (line: string) => void,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.poll(), this.intervalMs).unref();
    this.poll();
  }

  stop(): void {
    clearInterval(this.timer);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private poll(): void {
    const now = new Set(this.addresses());
    for (const [address, client] of this.clients) {
      if (now.has(address)) continue;
      client.close();
      this.clients.delete(address);
      this.answering.delete(address);
    }
    for (const address of now) {
      let client = this.clients.get(address);
      if (!client) {
        client = new this.Client(address, grpc.credentials.createInsecure()) as unknown as PeerClient;
        this.clients.set(address, client);
      }
      client.Report({}, { deadline: Date.now() + this.intervalMs }, (err, wire) => {
        if (err || !wire) {
          if (this.answering.delete(address))
            this.log(`tandem: gateway peer ${address} does not answer (${err?.message}): its load counts until stale`);
          return;
        }
        if (!this.answering.has(address)) {
          this.answering.add(address);
          this.log(`tandem: autoscaling on the load of gateway peer ${address} too`);
        }
        const report: LoadReport = { models: {}, serving: {} };
        for (const m of wire.models) report.models[m.model] = { requests: m.requests, queued: m.queued };
        for (const r of wire.replicas) report.serving[r.replica] = r.serving;
        this.shared.update(address, report);
      });
    }
  }
}
