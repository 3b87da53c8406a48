// The upstream CRDs the k8s tier installs, from the Go modules that publish them, at pinned
// versions, through the Go module proxy (cached in GOMODCACHE like the control plane's sources).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const UPSTREAM_CRDS: { module: string; version: string; files: string[] }[] = [
  {
    module: 'sigs.k8s.io/lws',
    version: 'v0.8.0',
    files: ['config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml'],
  },
  {
    module: 'github.com/ray-project/kuberay/ray-operator',
    version: 'v1.5.0',
    files: ['config/crd/bases/ray.io_rayclusters.yaml', 'config/crd/bases/ray.io_rayservices.yaml'],
  },
  {
    module: 'github.com/kedacore/keda/v2',
    version: 'v2.21.0',
    // Every CRD of KEDA's: its operator (built for the autoscaling test) watches them all.
    files: [
      'config/crd/bases/keda.sh_scaledobjects.yaml',
      'config/crd/bases/keda.sh_scaledjobs.yaml',
      'config/crd/bases/keda.sh_triggerauthentications.yaml',
      'config/crd/bases/keda.sh_clustertriggerauthentications.yaml',
      'config/crd/bases/eventing.keda.sh_cloudeventsources.yaml',
      'config/crd/bases/eventing.keda.sh_clustercloudeventsources.yaml',
    ],
  },
  {
    module: 'github.com/vllm-project/aibrix',
    version: 'v0.7.0',
    files: ['config/crd/orchestration/orchestration.aibrix.ai_rayclusterfleets.yaml'],
  },
];

/** Downloads (or finds in GOMODCACHE) each module and returns the paths of its CRD files. */
export function upstreamCrdFiles(): string[] {
  return UPSTREAM_CRDS.flatMap(({ module, version, files }) => {
    // Outside any go.mod, so that only the named module is fetched.
    const out = execFileSync('go', ['mod', 'download', '-json', `${module}@${version}`], {
      cwd: tmpdir(),
      encoding: 'utf8',
      env: { ...process.env, GOFLAGS: '-mod=mod' },
    });
    const { Dir, Error: error } = JSON.parse(out) as { Dir?: string; Error?: string };
    if (!Dir) throw new Error(`go mod download ${module}@${version}: ${error ?? 'no directory'}`);
    return files.map((file) => {
      const path = join(Dir, file);
      if (!existsSync(path)) throw new Error(`${module}@${version} has no ${file}`);
      return path;
    });
  });
}
