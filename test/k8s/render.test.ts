// `tandem render` and `tandem install`: every object they write, read back from YAML, is accepted
// by the real API server against the upstream CRDs (LeaderWorkerSet, KubeRay RayCluster/RayService,
// AIBrix RayClusterFleet, KEDA ScaledObject) in a strict server-side dry run, for every engine and
// for 1-, 2- and 4-node groups; Ray targets refuse engines Ray cannot run; the installed pods meet
// the restricted Pod Security Standard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { validateDocument } from '../../src/spec/load.js';
import { EXPORT_TARGETS, exportService } from '../../src/platforms/kubernetes/export/index.js';
import { apiMessage } from '../../src/platforms/kubernetes/api.js';
import { RawApi } from '../../src/platforms/kubernetes/raw.js';
import { installManifests } from '../../src/cli/cluster.js';
import { apiClient, kubeConfig } from './cluster.js';
import { useTestCluster } from './harness.js';
import { dryRun, readYaml } from './apply.js';
import { importOciRecipe } from '../../src/spec/oci-recipe.js';
import { RECIPE } from '../fixtures/oci-recipe.js';

let kubeconfig: string;
const ns = `tandem-render-${process.pid}`;
useTestCluster(ns, (k) => {
  kubeconfig = k;
});

const ENGINES = {
  llamacpp: { model: { servedName: 'm', source: 'hf://org/model-GGUF' }, engine: { type: 'llamacpp' } },
  vllm: {
    model: { servedName: 'm', source: 'hf://org/model' },
    engine: { type: 'vllm', args: ['--max-model-len', '4096'] },
  },
  'vllm-ray': {
    model: { servedName: 'm', source: 'pvc://models/org/model' },
    engine: { type: 'vllm', distributedExecutorBackend: 'ray', args: ['--enforce-eager'] },
  },
  sglang: { model: { servedName: 'm', source: 'hf://org/model' }, engine: { type: 'sglang' } },
} as const;

function document(engine: keyof typeof ENGINES, nodes: number) {
  return {
    apiVersion: 'tandem.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name: `${engine}-${nodes}` },
    spec: {
      ...ENGINES[engine],
      parallelism: { nodes },
      replicas: 2,
      resources: { cpu: 8, memory: '64Gi', gpu: engine === 'llamacpp' ? 0 : 8 },
      env: { NCCL_DEBUG: 'INFO' },
      scheduling: { queue: 'team-a' },
      autoscaling: { minReplicas: 0, maxReplicas: 4, downscaleDelay: '5m', scaleToZeroAfter: '15m' },
      model: { ...ENGINES[engine].model, tokenSecret: { name: 'hub', key: 'token' } },
    },
  };
}

test('every rendered object passes the API server (dry run, strict) for every engine, target and group size', async () => {
  const api = new RawApi(kubeConfig(kubeconfig));
  let accepted = 0;
  for (const engine of Object.keys(ENGINES) as (keyof typeof ENGINES)[]) {
    for (const nodes of [1, 2, 4]) {
      const { service, problems } = validateDocument(document(engine, nodes));
      assert.deepEqual(problems, [], `${engine} × ${nodes}`);
      for (const to of EXPORT_TARGETS) {
        const ray = to === 'kuberay' || to === 'rayservice' || to === 'aibrix';
        if (ray && !engine.startsWith('vllm')) {
          assert.throws(() => exportService(service!, to, ns), /Ray runs vLLM's Ray executor/);
          continue;
        }
        // As `tandem render` prints them and a user's kubectl reads them back.
        const objects = readYaml(
          exportService(service!, to, ns)
            .map((o) => stringify(o))
            .join('---\n'),
        );
        for (const o of objects) {
          await dryRun(api, o, ns).catch((err: unknown) => {
            throw new Error(`${engine} × ${nodes} --to ${to}: ${o.kind} ${o.metadata!.name}: ${apiMessage(err)}`, {
              cause: err,
            });
          });
          accepted++;
        }
      }
    }
  }
  assert.ok(accepted >= 100, `${accepted} objects accepted`);
});

test('tandem install: every object passes the API server (dry run, strict), and its pods meet the restricted Pod Security Standard', async () => {
  const kc = kubeConfig(kubeconfig);
  const api = new RawApi(kc);
  const restricted = `${ns}-restricted`;
  await apiClient(kubeconfig, k8s.CoreV1Api).createNamespace({
    body: { metadata: { name: restricted, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
  });
  try {
    const objects = readYaml(installManifests(restricted, 'tandem:test'));
    for (const o of objects) {
      await dryRun(api, o, restricted).catch((err: unknown) => {
        throw new Error(`${o.kind} ${o.metadata!.name}: ${apiMessage(err)}`, { cause: err });
      });
    }
    // Pod Security Admission judges pods: each Deployment's pod, as its ReplicaSet would create it.
    const deployments = objects.filter((o) => o.kind === 'Deployment') as k8s.V1Deployment[];
    assert.equal(deployments.length, 2);
    // (The service accounts exist only in a real apply: PSA does not look at them.)
    for (const d of deployments) {
      const spec = { ...d.spec!.template.spec, serviceAccountName: undefined };
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${d.metadata!.name}-x` },
        spec,
      };
      await dryRun(api, pod, restricted).catch((err: unknown) => {
        throw new Error(`the ${d.metadata!.name} pod in a restricted namespace: ${apiMessage(err)}`, { cause: err });
      });
    }
    const privileged = {
      ...deployments[0]!.spec!.template.spec!,
      securityContext: undefined,
      serviceAccountName: undefined,
    };
    await assert.rejects(
      dryRun(api, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'loose' }, spec: privileged }, restricted),
      (err: unknown) => /violates PodSecurity "restricted/.test(apiMessage(err)),
      'the namespace enforces the standard (the check above can fail)',
    );
  } finally {
    await apiClient(kubeconfig, k8s.CoreV1Api).deleteNamespace({ name: restricted });
  }
});

test('an imported OCI recipe renders to KubeRay objects the API server accepts', async () => {
  const { service } = validateDocument(importOciRecipe(RECIPE).service);
  for (const o of exportService(service!, 'kuberay', ns)) {
    await apiClient(kubeconfig, k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: 'ray.io',
      version: 'v1',
      plural: 'rayclusters',
      namespace: ns,
      body: o,
      dryRun: 'All',
      fieldValidation: 'Strict',
    });
  }
});

test('the dry run is strict: an unknown field is refused', async () => {
  const { service } = validateDocument(document('vllm', 2));
  const [lws] = exportService(service!, 'lws', ns) as (k8s.KubernetesObject & { spec: Record<string, unknown> })[];
  lws!.spec.leaderWorkerTemplateTypo = {};
  await assert.rejects(
    apiClient(kubeconfig, k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: 'leaderworkerset.x-k8s.io',
      version: 'v1',
      plural: 'leaderworkersets',
      namespace: ns,
      body: lws,
      dryRun: 'All',
      fieldValidation: 'Strict',
    }),
    (err: unknown) => /unknown field "spec.leaderWorkerTemplateTypo"/.test(apiMessage(err)),
  );
});

test('tandem render writes YAML that reads back as the same objects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-render-'));
  const file = join(dir, 'svc.yaml');
  writeFileSync(file, stringify(document('vllm', 2)));
  const cli = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
  const out = execFileSync(process.execPath, [cli, 'render', file, '--to', 'aibrix'], { encoding: 'utf8' });
  const [fleet] = k8s.loadAllYaml(out) as { kind: string; spec: { replicas: number } }[];
  assert.equal(fleet!.kind, 'RayClusterFleet');
  assert.equal(fleet!.spec.replicas, 2);
  assert.throws(
    () => execFileSync(process.execPath, [cli, 'render', file, '--to', 'helm'], { stdio: 'pipe' }),
    /--to must be one of lws, kuberay, rayservice, aibrix, manifests, keda \(got helm\)/,
  );
});
