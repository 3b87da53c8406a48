// KEDA's external scaler contract, spoken by a real gRPC client (grpc-js) to the gateway's scaler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { KedaScaler, externalScalerPackage, type ScalerSource } from '../../src/autoscaler/keda.js';

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

test("IsActive, GetMetricSpec, GetMetrics report the autoscaler's count per InferenceService; StreamIsActive pushes each change; unknown names are NOT_FOUND", async () => {
  const decided = { desired: 0 };
  const source: ScalerSource = (name) => (name === 'big' ? { target: 1.5, desired: decided.desired } : undefined);
  const scaler = new KedaScaler(source, 3_600_000);
  const port = await scaler.listen('127.0.0.1', 0);
  const pkg = externalScalerPackage() as { externalscaler: { ExternalScaler: grpc.ServiceClientConstructor } };
  const client = new pkg.externalscaler.ExternalScaler(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  ) as unknown as Client;
  const call = <T>(method: string, request: unknown) =>
    new Promise<T>((resolve, reject) =>
      client[method]!(request, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
    );
  // A ScaledObject named otherwise, its trigger naming the service.
  const ref = { name: 'so', namespace: 'ns', scalerMetadata: { service: 'big' } };
  try {
    assert.deepEqual(await call('IsActive', ref), { result: false });
    assert.deepEqual(await call('GetMetricSpec', ref), {
      metricSpecs: [{ metricName: 'tandem-big-requests', targetSize: 2, targetSizeFloat: 1.5 }],
    });
    assert.deepEqual(await call('GetMetrics', { scaledObjectRef: ref, metricName: 'tandem-big-requests' }), {
      metricValues: [{ metricName: 'tandem-big-requests', metricValue: 0, metricValueFloat: 0 }],
    });
    // 3 replicas decided: 3 × target, so that the HPA (value / target) asks for exactly 3.
    decided.desired = 3;
    assert.deepEqual(await call('IsActive', ref), { result: true });
    assert.deepEqual(await call('GetMetrics', { scaledObjectRef: ref, metricName: 'tandem-big-requests' }), {
      metricValues: [{ metricName: 'tandem-big-requests', metricValue: 5, metricValueFloat: 4.5 }],
    });
    // Named by the ScaledObject's own name when the trigger names no service.
    assert.deepEqual(await call('IsActive', { name: 'big', namespace: 'ns', scalerMetadata: {} }), { result: true });
    await assert.rejects(call('IsActive', { name: 'nope', namespace: 'ns', scalerMetadata: {} }), (err: unknown) => {
      const e = err as grpc.ServiceError;
      return e.code === grpc.status.NOT_FOUND && /no autoscaled InferenceService 'nope'/.test(e.details);
    });

    // The stream: the state now, then each change, a new count at once (not after the 1 s tick).
    decided.desired = 0;
    const stream = client.StreamIsActive!(ref) as grpc.ClientReadableStream<{ result: boolean }>;
    stream.on('error', (err: grpc.ServiceError) => assert.equal(err.code, grpc.status.CANCELLED)); // ours, below
    const seen: boolean[] = [];
    const next = () =>
      new Promise<boolean>((resolve) => stream.once('data', (m: { result: boolean }) => resolve(m.result)));
    seen.push(await next());
    decided.desired = 1;
    const pushed = next();
    scaler.changed('big'); // no tick comes in this test: only changed() can push it
    seen.push(await pushed);
    decided.desired = 0;
    const again = next();
    scaler.changed('big');
    seen.push(await again);
    assert.deepEqual(seen, [false, true, false]);
    stream.cancel();

    // A stream for a name not served here ends at once, NOT_FOUND (each such name was kept forever).
    const unknown = client.StreamIsActive!({
      name: 'nope',
      namespace: 'ns',
      scalerMetadata: {},
    }) as grpc.ClientReadableStream<unknown>;
    const refused = await new Promise<grpc.ServiceError | undefined>((resolve) => {
      unknown.on('error', resolve);
      unknown.on('data', () => resolve(undefined));
    });
    assert.equal(refused?.code, grpc.status.NOT_FOUND);
  } finally {
    client.close();
    await scaler.close();
  }
});
