// KEDA's external scaler contract (externalscaler.proto: IsActive, StreamIsActive, GetMetricSpec,
// GetMetrics), served by the gateway per InferenceService, so that a ScaledObject (`tandem render
// --to keda`) applies Tandem's own autoscaling decision (autoscaler.ts, run in the gateway on the
// load it has in hand) to the object's scale subresource. The metric is the decided replica count
// × targetOngoingRequests against a target of targetOngoingRequests, so the HPA (tolerance 0, no
// stabilization window: the decision has its delays already) asks for exactly that count; a
// service is active while the count is at least 1. A change is pushed to KEDA at once on
// StreamIsActive (the external-push trigger), not at its next poll.
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';

/** The messages and service of KEDA's externalscaler.proto (package externalscaler), field for field. */
const CONTRACT = {
  nested: {
    externalscaler: {
      nested: {
        ExternalScaler: {
          methods: {
            IsActive: { requestType: 'ScaledObjectRef', responseType: 'IsActiveResponse' },
            StreamIsActive: { requestType: 'ScaledObjectRef', responseType: 'IsActiveResponse', responseStream: true },
            GetMetricSpec: { requestType: 'ScaledObjectRef', responseType: 'GetMetricSpecResponse' },
            GetMetrics: { requestType: 'GetMetricsRequest', responseType: 'GetMetricsResponse' },
          },
        },
        ScaledObjectRef: {
          fields: {
            name: { type: 'string', id: 1 },
            namespace: { type: 'string', id: 2 },
            scalerMetadata: { keyType: 'string', type: 'string', id: 3 },
          },
        },
        IsActiveResponse: { fields: { result: { type: 'bool', id: 1 } } },
        GetMetricSpecResponse: { fields: { metricSpecs: { rule: 'repeated', type: 'MetricSpec', id: 1 } } },
        MetricSpec: {
          fields: {
            metricName: { type: 'string', id: 1 },
            targetSize: { type: 'int64', id: 2 },
            targetSizeFloat: { type: 'double', id: 3 },
          },
        },
        GetMetricsRequest: {
          fields: { scaledObjectRef: { type: 'ScaledObjectRef', id: 1 }, metricName: { type: 'string', id: 2 } },
        },
        GetMetricsResponse: { fields: { metricValues: { rule: 'repeated', type: 'MetricValue', id: 1 } } },
        MetricValue: {
          fields: {
            metricName: { type: 'string', id: 1 },
            metricValue: { type: 'int64', id: 2 },
            metricValueFloat: { type: 'double', id: 3 },
          },
        },
      },
    },
  },
};

/** The contract as a grpc-js package, for the server here and for clients (KEDA's, or a test's). */
export function externalScalerPackage(): grpc.GrpcObject {
  // protobufjs's JSON descriptor types want a comment on every method and know no map fields.
  const json = CONTRACT as unknown as Parameters<typeof fromJSON>[0];
  return grpc.loadPackageDefinition(fromJSON(json, { longs: Number, defaults: true }));
}

export interface ScaledObjectRef {
  name: string;
  namespace: string;
  scalerMetadata: Record<string, string>;
}

/** An autoscaled InferenceService of the namespace by name: its target per replica and the replica count decided for it. */
export type ScalerSource = (name: string) => { target: number; desired: number } | undefined;

/** The InferenceService a ScaledObject is for: its trigger's `service`, else the ScaledObject's own name. */
const serviceOf = (ref: ScaledObjectRef) => ref.scalerMetadata.service || ref.name;
const metricName = (service: string) => `tandem-${service}-requests`;

export class KedaScaler {
  private readonly server = new grpc.Server();
  /** Open StreamIsActive calls, by InferenceService name, with what each was last told. */
  private readonly streams = new Map<
    string,
    Set<{ call: grpc.ServerWritableStream<ScaledObjectRef, unknown>; active?: boolean }>
  >();
  private timer?: NodeJS.Timeout;

  /** `tickMs`: how often every stream is looked at again (a change told through changed() goes at once). */
  constructor(
    private readonly source: ScalerSource,
    private readonly tickMs = 1000,
  ) {
    const pkg = externalScalerPackage() as { externalscaler: { ExternalScaler: grpc.ServiceClientConstructor } };
    type Unary<Req> = grpc.handleUnaryCall<Req, unknown>;
    const known = (ref: ScaledObjectRef) => {
      const svc = this.source(serviceOf(ref));
      if (!svc) {
        const err = new Error(`no autoscaled InferenceService '${serviceOf(ref)}' is served here`) as grpc.ServiceError;
        err.code = grpc.status.NOT_FOUND;
        throw err;
      }
      return svc;
    };
    const unary =
      <Req>(answer: (req: Req) => unknown): Unary<Req> =>
      (call, callback) => {
        try {
          callback(null, answer(call.request));
        } catch (err) {
          callback(err as grpc.ServiceError);
        }
      };
    this.server.addService(pkg.externalscaler.ExternalScaler.service, {
      IsActive: unary<ScaledObjectRef>((ref) => ({ result: known(ref).desired > 0 })),
      GetMetricSpec: unary<ScaledObjectRef>((ref) => {
        const { target } = known(ref);
        return {
          metricSpecs: [
            { metricName: metricName(serviceOf(ref)), targetSize: Math.ceil(target), targetSizeFloat: target },
          ],
        };
      }),
      GetMetrics: unary<{ scaledObjectRef: ScaledObjectRef; metricName: string }>((req) => {
        const { target, desired } = known(req.scaledObjectRef);
        const value = desired * target;
        return {
          metricValues: [{ metricName: req.metricName, metricValue: Math.ceil(value), metricValueFloat: value }],
        };
      }),
      StreamIsActive: (call: grpc.ServerWritableStream<ScaledObjectRef, unknown>) => {
        const name = serviceOf(call.request);
        // Only for a service served here, and forgotten when it ends: a caller's names cannot pile up.
        try {
          known(call.request);
        } catch (err) {
          call.emit('error', err);
          return;
        }
        const entry: { call: typeof call; active?: boolean } = { call };
        const set = this.streams.get(name) ?? new Set();
        this.streams.set(name, set);
        set.add(entry);
        const gone = () => {
          set.delete(entry);
          if (set.size === 0 && this.streams.get(name) === set) this.streams.delete(name);
        };
        call.on('cancelled', gone);
        call.on('close', gone);
        this.push(name);
      },
    });
  }

  /** Serves another gRPC service on the same port (the gateways' peer exchange); before listen(). */
  alsoServe([definition, implementation]: [grpc.ServiceDefinition, grpc.UntypedServiceImplementation]): void {
    this.server.addService(definition, implementation);
  }

  /** Listens on host:port (port 0: any free one); returns the port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) return reject(err);
        // Activity changes are pushed within a second; a request waiting for a replica at once (demand).
        this.timer = setInterval(() => [...this.streams.keys()].forEach((n) => this.push(n)), this.tickMs).unref();
        resolve(bound);
      });
    });
  }

  /** The count decided for `name` changed: tell KEDA now. */
  changed(name: string): void {
    this.push(name);
  }

  /** Ends the streams and stops; a client that keeps its connection open is cut after `graceMs`. */
  close(graceMs = 5_000): Promise<void> {
    clearInterval(this.timer);
    for (const set of this.streams.values()) for (const { call } of set) call.end();
    return new Promise((resolve) => {
      const cut = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(cut);
        resolve();
      });
    });
  }

  /** Sends each open stream of `name` its activity when it changed since the last send. */
  private push(name: string): void {
    const active = (this.source(name)?.desired ?? 0) > 0;
    for (const entry of this.streams.get(name) ?? []) {
      if (entry.active === active) continue;
      entry.active = active;
      entry.call.write({ result: active });
    }
  }
}
