// The `tandem` command line.
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpecError, loadServices } from '../spec/load.js';
import { importOciRecipe } from '../spec/oci-recipe.js';
import { inferenceServiceJsonSchema } from '../spec/schema.js';
import { ensureLlamaBinaries } from '../engine/llamacpp/build.js';
import { ensureLlamaSource } from '../engine/llamacpp/source.js';
import { ensureTinyLlama } from '../model/tiny-llama.js';
import { stateDir } from '../util/paths.js';
import { stderrProgress } from '../util/progress.js';
import { statusTable } from './status-table.js';
import { up } from './up.js';
import { planCommand, type PlanFlags } from './plan.js';
import { UsageError } from './usage-error.js';
import { packageVersion } from '../util/version.js';
import { applyServices, deleteService } from './control-client.js';
import { showLog } from './logs.js';
import { currentRun, readStatus, reapLeftovers } from './state.js';
import { waitForExit } from '../util/process.js';
import { parseDuration } from '../spec/duration.js';
import { DEFAULT_TIMEOUTS, ROUTING_POLICIES, type RoutingPolicy } from '../gateway/server.js';
import { stringify } from 'yaml';
import { addKey } from '../gateway/keys.js';
import { EXPORT_TARGETS, exportService, type ExportTarget } from '../platforms/kubernetes/export/index.js';
import type { GatewaySettings } from './gateway.js';

const DEFAULT_DRAIN_MS = 30_000;

/** The gateway of the 'tandem up' running from this folder. */
function runningGateway(): string {
  const run = currentRun(stateDir());
  if (!run) throw new UsageError(`no 'tandem up' is running from here (${stateDir()}): start one, or set TANDEM_STATE`);
  return run.gateway;
}

/** The Kubernetes commands, loaded only when one runs: the client library costs every other command ≈ 75 MiB and 0.3 s. */
const cluster = () => import('./cluster.js');

/** The gateway's flags, as `up` and `gateway` both take them. */
const GATEWAY_FLAGS = `  --port N                  the gateway's port (default 8080)
  --host H                  the gateway's address (default 127.0.0.1; 0.0.0.0 to listen wider,
                            which needs --api-keys or --insecure-no-auth)
  --api-keys FILE           require an API key (Authorization: Bearer) from FILE ('tandem keys add'):
                            401 without a valid one, 403 for a model it may not use, 429 past its rate
  --insecure-no-auth        serve beyond loopback without keys
  --routing P               prefix (default: a request goes to the replica that served its prompt's
                            prefix, unless it is busier than the least busy one and either 4
                            requests busier or without a slot of its engine free) or
                            least-outstanding
  --connect-timeout D       connecting to a replica (default 5s)
  --first-byte-timeout D    from request to the first byte of the answer: a whole generation when
                            not streaming (default 10m); past it another replica is tried, then 504
  --idle-timeout D          between two chunks of an answer (default 60s)
  --unresponsive-timeout D  nothing at all from a replica whose streams were flowing (a hung member):
                            it is taken out, its streams go on elsewhere, its group is recreated
                            (default 10s)
  --drain-timeout D         on Ctrl-C or SIGTERM, how long requests in flight may take to finish
                            before it stops (default 30s)
Durations: 90s, 10m, 1h30m, 500ms.`;

const USAGE: Record<string, string> = {
  tandem: `tandem: run large language models that span several machines

Usage: tandem <command> [options]

Commands:
  up [FILE…]       validate, build what is needed, start every group and the gateway; Ctrl-C stops everything
  apply FILE…      add or change services of the running 'tandem up' (a new template rolls its groups)
  delete NAME      drain a service of the running 'tandem up', then stop it
  status           show the groups of the running 'tandem up'
  logs SERVICE     show a member's log (-f to follow)
  down             stop the running 'tandem up' and every process it started
  plan             tensor/pipeline layouts, memory and KV capacity of a model on GPUs
  validate FILE…   check InferenceService files; every problem is listed (exit code 2 if any)
  prepare          build llama.cpp and make the project's model into the cache (once)
  schema           print the InferenceService JSON Schema
  operator         run the Kubernetes operator (InferenceService objects become groups of pods)
  gateway          serve a cluster's InferenceServices behind one OpenAI-compatible endpoint
  install          print the CRD, RBAC and Deployments that install the operator and gateway on a cluster
  keys add NAME    make an API key for the gateway (its hash goes into the key file)
  import FILE      print an OCI AI Blueprints multi-node recipe (JSON) as an InferenceService
  render FILE…     print an InferenceService as LeaderWorkerSet, KubeRay, AIBrix or plain objects
  version          print versions

Run 'tandem <command> --help' for a command's options.`,
  up: `Usage: tandem up [FILE…] [--port N] [--host H] [--log-dir DIR]

Starts every group of every InferenceService in FILE… on this machine (each member a local process
on its own loopback address), keeps them running (a group whose member dies is recreated), serves
every model behind one OpenAI-compatible endpoint, and shows their status. Ctrl-C (or SIGTERM)
stops every process it started. With no FILE, the gateway starts empty: 'tandem apply' adds
services. The control API (/api/v1: list, apply, scale, delete services; events) answers admin
keys, or without keys callers on this machine.

Options:
  --log-dir DIR             where member logs go (default: $TANDEM_STATE/logs, ./.tandem/logs)
${GATEWAY_FLAGS}`,
  apply: `Usage: tandem apply FILE… [--api-key KEY]

Sends the InferenceServices in FILE… to the 'tandem up' running from this folder (its state is in
$TANDEM_STATE, default ./.tandem), through its control API. They are checked as 'validate' checks
them, and one problem refuses them all: nothing running changes. A new service starts; a changed
template (engine, model, arguments, resources) rolls its groups one at a time (spec.rollout),
streams in flight continuing on another replica; any other change (replicas, autoscaling, policies)
recreates nothing. --api-key (or TANDEM_API_KEY): an admin key, where the gateway has keys.`,
  delete: `Usage: tandem delete NAME [--api-key KEY]

Deletes the service NAME from the 'tandem up' running from this folder: its model takes no new
request, those in flight finish (up to --drain-timeout of 'tandem up'), then its groups stop. Waits
until it is gone. --api-key (or TANDEM_API_KEY): an admin key, where the gateway has keys.`,
  status: `Usage: tandem status [--json] [--kubeconfig FILE [--namespace NS]]

Shows the gateway and every group member of the 'tandem up' running from this folder (its state is
in $TANDEM_STATE, default ./.tandem), with restarts and the latest failures. With --kubeconfig (or
--namespace), shows the InferenceServices of a cluster instead: ready groups, each group's phase,
ready members, restarts and last failure.`,
  logs: `Usage: tandem logs SERVICE [--replica N] [--member M] [-f] [--kubeconfig FILE [--namespace NS]]

Prints a group member's log (default: replica 0, member 0 = the leader); -f follows it.
With --kubeconfig (or --namespace), prints the member pod's log from the cluster.`,
  operator: `Usage: tandem operator [--kubeconfig FILE] [--namespace NS]

Runs the operator for one namespace (default: the kubeconfig context's, else "default"): every
InferenceService there becomes groups of pods, kept, recreated whole, rolled and scaled. Several may
run; a Lease (NS/tandem-operator) lets one act at a time. Stopping it leaves every pod running.
Kubeconfig: --kubeconfig, else KUBECONFIG, else ~/.kube/config, else the pod's service account.`,
  gateway: `Usage: tandem gateway [--kubeconfig FILE] [--namespace NS] [--port N] [--host H] …

Serves every InferenceService of a namespace (default: the kubeconfig context's, else "default")
behind one OpenAI-compatible endpoint, as 'tandem up' does for local groups: each model's Ready
groups (from the objects' status) are reached at their leader pods' IPs. The access log (JSON lines)
goes to stdout. SIGTERM drains, then stops. 'tandem install' runs it in the cluster.

Options:
  --keda-port N             also serve KEDA's external scaler (gRPC) on --host:N, for the
                            ScaledObjects 'tandem render --to keda' writes (installed: 9090), and
                            autoscale on the load of every gateway: its peers' too, found as the
                            other Ready pods of the installed gateway (with POD_IP set, as installed)
  --peers H:P,…             other gateways' --keda-port addresses, besides (or instead of) those found
${GATEWAY_FLAGS}
Kubeconfig: --kubeconfig, else KUBECONFIG, else ~/.kube/config, else the pod's service account.`,
  install: `Usage: tandem install --image IMAGE [--namespace NS]

Prints, as YAML for 'kubectl apply -f -': the InferenceService CRD; ServiceAccounts with Roles
limited to what the operator and the gateway do in NS (default tandem-system); a Deployment of two
operator replicas and one of two gateway replicas (with its Service, tandem-gateway:80), running
IMAGE (an image with this package, its entrypoint 'tandem'). The gateway requires API keys from
the Secret tandem-gateway-keys: 'tandem keys add NAME --file keys.yaml', then
'kubectl -n NS create secret generic tandem-gateway-keys --from-file=keys.yaml'.`,
  keys: `Usage: tandem keys add NAME --file FILE [--models M1,M2] [--rpm N] [--tpm N] [--admin]

Makes a new API key, prints it once, and adds its name and SHA-256 hash to FILE (YAML, made if
missing, mode 600). --models limits it to those models, --rpm to N requests per minute, --tpm to N
tokens per minute (prompt and completion, charged from the engines' usage after each answer). --admin
lets it use the control API ('tandem apply', 'tandem delete'). 'tandem up --api-keys FILE' enforces
the file and reads it again whenever it changes.`,
  import: `Usage: tandem import FILE

Reads an OCI AI Blueprints multi-node recipe (recipe_mode "raycluster", JSON) and prints the
InferenceService that runs the same group: vLLM over Ray on recipe_node_pool_size nodes of
recipe_node_shape, the head's CPUs, memory and GPUs per node, the model from a PersistentVolumeClaim
holding the recipe's bucket. The recipe's rules are checked (uniform head and workers, pool size =
workers + 1); every problem names its field.`,
  render: `Usage: tandem render FILE… --to lws|kuberay|rayservice|aibrix|manifests [--namespace NS]

Prints each InferenceService as the objects another controller runs, as YAML for 'kubectl apply -f -':
  lws         a LeaderWorkerSet (sigs.k8s.io/lws v1): the leader and worker pod templates Tandem renders
  kuberay     a KubeRay RayCluster per replica, the head serving vLLM with the Ray executor (vllm only)
  rayservice  a KubeRay RayService running Ray Serve LLM's OpenAI app (vllm only)
  aibrix      an AIBrix RayClusterFleet of such RayClusters (vllm only)
  manifests   the Pods, Services, NetworkPolicies (and Volcano PodGroups) the operator would create,
              standalone: nothing recreates a member that dies (the namespace NS, default "default")`,
  down: `Usage: tandem down

Stops the 'tandem up' running from this folder and waits until every process it started is gone.
If that tandem died without stopping its members (killed with SIGKILL, say), stops them.`,
  plan: `Usage: tandem plan --model M (--gpu G | --gpu-memory GIB) [options]

Lists the feasible tensor/pipeline layouts of a model on nodes of GPUs, best first (fewest nodes;
tensor parallel inside a node, pipeline parallel across nodes; then KV capacity), with per-GPU memory,
KV capacity, a decode-speed bound, communication per token and the engine's flags; and the
infeasible layouts with their reasons. Exit code 1 if no layout is feasible.

Options:
  --model M                   a catalog name (Llama-3.1-8B/70B/405B, Llama-3.2-1B, Qwen2.5-7B/32B/72B,
                              Mistral-7B, Mixtral-8x7B, DeepSeek-V3), a config.json or its folder (multimodal
                              configs count their vision/audio towers), or a .gguf
  --gpu G                     a GPU (V100-16/32, T4, A10, A10G, A30, A40, L4, L40, L40S, A100-40/80, H100-80,
                              H100-NVL, H800, H20, GH200, H200, B200, GB200, RTX-A4000/A5000/A6000,
                              RTX-6000-Ada, RTX-PRO-6000, RTX-3090/4090/5090, MI250, MI300X, MI325X, Gaudi2,
                              Gaudi3) or a cloud shape (OCI BM.GPU.H100.8, AWS p5.48xlarge, GCP
                              a3-highgpu-8g, Azure Standard_ND96isr_H100_v5, …); with --gpu-memory, any name
  --gpu-memory GIB            any GPU: its memory as the driver reports it (e.g. 44.4 for a 48 GB card)
  --gpu-bandwidth GBS         its memory bandwidth, for the decode-speed bound (else the catalog's, or none)
  --gpus-per-node N           default: the shape's, else 8
  --nodes N                   the most nodes to use (default 4)
  --max-model-len N           default: the model's maximum positions
  --engine E                  vllm (default), sglang, llamacpp
  --engine-version V          the release whose memory model and defaults apply, e.g. 0.6.4, 0.9.2, 0.19.0
                              (vLLM), 0.4.9 (SGLang); default: latest
  --dtype D                   weights: bf16 (default), fp16, fp8, int8, awq, gptq, gguf-q4_k_m, gguf-q8_0, …
  --kv-dtype D                KV cache: auto (default, 16-bit), fp8
  --memory-utilization F      vLLM's --gpu-memory-utilization, SGLang's --mem-fraction-static (default: the
                              release's: vLLM 0.92 from 0.21, 0.9 before; SGLang's by tp size or GPU size)
  --max-num-batched-tokens N  default: the release's (vLLM V1: 8192 on ≥ 70 GiB GPUs other than A100, else 2048)
  --max-num-seqs N            default: the release's (vLLM V1: 1024 or 256, as above)
  --json                      {"layouts": […], "infeasible": […]} for machines
  --svg FILE                  write a picture of the best layout`,
  validate: `Usage: tandem validate FILE…

Checks InferenceService files (YAML or JSON; several documents per file allowed). Prints every
problem as FILE: path: message and exits with code 2 if there is any; prints "ok" per service otherwise.`,
  prepare: `Usage: tandem prepare

Builds llama-server and ggml-rpc-server from the llama.cpp source shipped by node-llama-cpp and makes
the project's model, into the cache ($TANDEM_CACHE, default ~/.cache/tandem). Later runs reuse them.`,
  schema: `Usage: tandem schema

Prints the InferenceService JSON Schema (the same schema the Kubernetes CRD uses).`,
  version: `Usage: tandem version`,
};

function status(json: boolean): number {
  const run = currentRun(stateDir());
  if (!run) {
    process.stderr.write(`tandem is not running here (no live run in ${stateDir()})\n`);
    return 1;
  }
  const file = readStatus(stateDir());
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...run, ...file }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`gateway: ${run.gateway}/v1   pid: ${run.pid}   since: ${run.startedAt}\n\n`);
  process.stdout.write(`${statusTable(file?.services ?? [])}\n`);
  const failures = (file?.services ?? []).flatMap((s) =>
    s.groups
      .filter((g) => g.lastFailure)
      .map((g) => `${s.name}/${g.replica}: ${new Date(g.lastFailure!.at).toISOString()} ${g.lastFailure!.reason}`),
  );
  if (failures.length > 0) process.stdout.write(`\nlast failures:\n${failures.join('\n')}\n`);
  return 0;
}

async function down(): Promise<number> {
  const run = currentRun(stateDir());
  if (!run) {
    const reaped = await reapLeftovers(stateDir());
    process.stdout.write(
      reaped > 0 ? `stopped ${reaped} member process(es) left by a tandem that died\n` : 'tandem is not running here\n',
    );
    return 0;
  }
  // No SIGKILL here: tandem must get to stop its members.
  process.kill(run.pid, 'SIGTERM');
  if (!(await waitForExit([run.pid], 120_000))) throw new Error(`pid ${run.pid} did not stop within 120 s`);
  process.stdout.write(`stopped tandem (pid ${run.pid})\n`);
  return 0;
}

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

/** Each command's options; any other option is a usage error. */
const GATEWAY_OPTIONS: Options = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  'connect-timeout': { type: 'string' },
  'first-byte-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'unresponsive-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'api-keys': { type: 'string' },
  'insecure-no-auth': { type: 'boolean' },
  routing: { type: 'string' },
};

const OPTIONS: Record<string, Options> = {
  up: {
    'log-dir': { type: 'string' },
    ...GATEWAY_OPTIONS,
  },
  status: { json: { type: 'boolean' }, kubeconfig: { type: 'string' }, namespace: { type: 'string' } },
  operator: { kubeconfig: { type: 'string' }, namespace: { type: 'string' } },
  gateway: {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'keda-port': { type: 'string' },
    peers: { type: 'string' },
    ...GATEWAY_OPTIONS,
  },
  install: { image: { type: 'string' }, namespace: { type: 'string' } },
  render: { to: { type: 'string' }, namespace: { type: 'string' } },
  keys: {
    file: { type: 'string' },
    models: { type: 'string' },
    rpm: { type: 'string' },
    tpm: { type: 'string' },
    admin: { type: 'boolean' },
  },
  apply: { 'api-key': { type: 'string' } },
  delete: { 'api-key': { type: 'string' } },
  import: {},
  logs: {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'log-dir': { type: 'string' },
    replica: { type: 'string' },
    member: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
  },
  plan: {
    ...Object.fromEntries(
      [
        'model',
        'gpu',
        'gpu-memory',
        'gpu-bandwidth',
        'gpus-per-node',
        'nodes',
        'max-model-len',
        'engine',
        'engine-version',
        'dtype',
        'kv-dtype',
        'memory-utilization',
        'max-num-batched-tokens',
        'max-num-seqs',
        'svg',
      ].map((name) => [name, { type: 'string' as const }]),
    ),
    json: { type: 'boolean' },
  },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE.tandem}\n`);
    return command ? 0 : 2;
  }
  if (!(command in USAGE) || command === 'tandem') {
    process.stderr.write(`tandem: unknown command "${command}"\n\n${USAGE.tandem}\n`);
    return 2;
  }
  const parsed = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, ...OPTIONS[command] },
  });
  const { positionals } = parsed;
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const text = (name: string) => values[name] as string | undefined;
  const duration = (name: string, fallback: number): number => {
    const value = text(name);
    if (value === undefined) return fallback;
    try {
      return parseDuration(value);
    } catch {
      throw new UsageError(`--${name}: must be a duration such as 90s, 10m or 1h30m (got ${value})`);
    }
  };
  /** The gateway's flags (up, gateway). */
  const gatewaySettings = (): GatewaySettings => {
    const port = Number(text('port') ?? 8080);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--port: must be a port number (got ${text('port')})`);
    const host = text('host') ?? '127.0.0.1';
    if (!isLoopback(host) && text('api-keys') === undefined && values['insecure-no-auth'] !== true) {
      throw new UsageError(
        `--host ${host} serves beyond this machine: give --api-keys FILE (tandem keys add makes one), or --insecure-no-auth`,
      );
    }
    const routing = text('routing') ?? 'prefix';
    if (!(ROUTING_POLICIES as readonly string[]).includes(routing)) {
      throw new UsageError(`--routing: must be one of ${ROUTING_POLICIES.join(', ')} (got ${routing})`);
    }
    return {
      routing: routing as RoutingPolicy,
      ...(text('api-keys') !== undefined ? { apiKeys: text('api-keys')! } : {}),
      host,
      port,
      timeouts: {
        connectMs: duration('connect-timeout', DEFAULT_TIMEOUTS.connectMs),
        firstByteMs: duration('first-byte-timeout', DEFAULT_TIMEOUTS.firstByteMs),
        idleMs: duration('idle-timeout', DEFAULT_TIMEOUTS.idleMs),
        unresponsiveMs: duration('unresponsive-timeout', DEFAULT_TIMEOUTS.unresponsiveMs),
      },
      drainMs: duration('drain-timeout', DEFAULT_DRAIN_MS),
    };
  };
  if (values.help) {
    process.stdout.write(`${USAGE[command]}\n`);
    return 0;
  }
  switch (command) {
    case 'keys': {
      const [verb, name] = positionals;
      const file = text('file');
      if (verb !== 'add' || !name || positionals.length > 2)
        throw new UsageError('keys: tandem keys add NAME --file FILE');
      if (!file) throw new UsageError('keys add: --file FILE names the key file (made if missing)');
      const limit = (flag: 'rpm' | 'tpm') => {
        const v = text(flag);
        if (v !== undefined && !(Number.isInteger(Number(v)) && Number(v) > 0)) {
          throw new UsageError(`--${flag}: must be an integer ≥ 1 (got ${v})`);
        }
        return v === undefined ? undefined : Number(v);
      };
      const rpm = limit('rpm');
      const tpm = limit('tpm');
      const key = addKey(file, {
        name,
        ...(text('models') ? { models: text('models')!.split(',').filter(Boolean) } : {}),
        ...(rpm ? { requestsPerMinute: rpm } : {}),
        ...(tpm ? { tokensPerMinute: tpm } : {}),
        ...(values.admin === true ? { admin: true } : {}),
      });
      stderrProgress(`added the key "${name}" to ${file} (stored as its SHA-256 hash): it is shown only now`);
      process.stdout.write(`${key}\n`);
      return 0;
    }
    case 'import': {
      const [file] = positionals;
      if (!file || positionals.length > 1) throw new UsageError('import: name one recipe FILE (JSON)');
      let recipe: unknown;
      try {
        recipe = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new SpecError([`${file}: ${(err as Error).message}`]);
      }
      let imported: ReturnType<typeof importOciRecipe>;
      try {
        imported = importOciRecipe(recipe);
      } catch (err) {
        if (err instanceof SpecError) throw new SpecError(err.problems.map((p) => `${file}: ${p}`));
        throw err;
      }
      for (const note of imported.notes) stderrProgress(`note: ${note}`);
      process.stdout.write(stringify(imported.service));
      return 0;
    }
    case 'render': {
      const to = text('to');
      if (!to || !(EXPORT_TARGETS as readonly string[]).includes(to)) {
        throw new UsageError(`render: --to must be one of ${EXPORT_TARGETS.join(', ')}${to ? ` (got ${to})` : ''}`);
      }
      const docs = loadServices(positionals).flatMap(({ service }) =>
        exportService(service, to as ExportTarget, text('namespace') ?? 'default'),
      );
      process.stdout.write(docs.map((d) => stringify(d)).join('---\n'));
      return 0;
    }
    case 'apply': {
      const loaded = loadServices(positionals);
      const applied = await applyServices(runningGateway(), loaded, text('api-key') ?? process.env.TANDEM_API_KEY);
      for (const { name, result } of applied) process.stdout.write(`${name}: ${result}\n`);
      return 0;
    }
    case 'delete': {
      const [name] = positionals;
      if (!name || positionals.length > 1) throw new UsageError('delete: name one service (metadata.name)');
      await deleteService(runningGateway(), name, text('api-key') ?? process.env.TANDEM_API_KEY, stderrProgress);
      process.stdout.write(`${name}: deleted\n`);
      return 0;
    }
    case 'validate': {
      const loaded = loadServices(positionals);
      for (const { service, file } of loaded) process.stdout.write(`${file}: ${service.metadata.name}: ok\n`);
      return 0;
    }
    case 'up': {
      await up({
        ...gatewaySettings(),
        files: positionals,
        stateDir: stateDir(),
        logDir: text('log-dir') ?? join(stateDir(), 'logs'),
      });
      return -1; // keeps running until a signal
    }
    case 'gateway': {
      const { loadKubeConfig, namespaceOf, runClusterGateway } = await cluster();
      const kc = loadKubeConfig(text('kubeconfig'));
      const keda = text('keda-port');
      const kedaPort = keda === undefined ? undefined : Number(keda);
      if (kedaPort !== undefined && (!Number.isInteger(kedaPort) || kedaPort < 0 || kedaPort > 65535))
        throw new UsageError(`--keda-port: must be a port number (got ${keda})`);
      const peers = text('peers')
        ?.split(',')
        .filter((p) => p !== '');
      if (peers && kedaPort === undefined) throw new UsageError('--peers: only with --keda-port (it autoscales)');
      for (const p of peers ?? [])
        if (!/^[^:\s]+:\d+$/.test(p)) throw new UsageError(`--peers: HOST:PORT expected (got ${p})`);
      await runClusterGateway(kc, namespaceOf(kc, text('namespace')), gatewaySettings(), kedaPort, peers);
      return -1; // keeps running until a signal
    }
    case 'status': {
      if (text('kubeconfig') === undefined && text('namespace') === undefined) return status(values.json === true);
      const { loadKubeConfig, namespaceOf, clusterStatus } = await cluster();
      const kc = loadKubeConfig(text('kubeconfig'));
      return clusterStatus(kc, namespaceOf(kc, text('namespace')), values.json === true);
    }
    case 'operator': {
      // The operator's memory is mostly the client library's code (≈ 75 MiB): V8 keeps ≈ 15 MiB
      // less of it with this flag, which only works when set before that code loads.
      setFlagsFromString('--optimize-for-size');
      const { loadKubeConfig, namespaceOf, runOperator } = await cluster();
      const kc = loadKubeConfig(text('kubeconfig'));
      await runOperator(kc, namespaceOf(kc, text('namespace')));
      return -1; // keeps running until a signal
    }
    case 'install': {
      const image = text('image');
      if (!image) throw new UsageError('install: --image IMAGE is required (an image with tandem as its entrypoint)');
      const { installManifests } = await cluster();
      process.stdout.write(installManifests(text('namespace') ?? 'tandem-system', image));
      return 0;
    }
    case 'plan':
      return planCommand(values as PlanFlags);
    case 'logs': {
      const [service] = positionals;
      if (!service) throw new UsageError('logs: name a SERVICE (metadata.name)');
      const index = (name: 'replica' | 'member') => {
        const n = Number(text(name) ?? 0);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name}: must be an integer ≥ 0`);
        return n;
      };
      if (text('kubeconfig') !== undefined || text('namespace') !== undefined) {
        const { loadKubeConfig, namespaceOf, clusterLogs } = await cluster();
        const kc = loadKubeConfig(text('kubeconfig'));
        await clusterLogs(
          kc,
          namespaceOf(kc, text('namespace')),
          service,
          index('replica'),
          index('member'),
          values.follow === true,
        );
        return 0;
      }
      const logDir = text('log-dir') ?? currentRun(stateDir())?.logDir ?? join(stateDir(), 'logs');
      await showLog(
        join(logDir, service, `replica-${index('replica')}`, `member-${index('member')}.log`),
        values.follow === true,
      );
      return 0;
    }
    case 'down':
      return down();
    case 'prepare': {
      const binaries = await ensureLlamaBinaries(stderrProgress);
      const model = await ensureTinyLlama((await ensureLlamaSource(stderrProgress)).dir, stderrProgress);
      process.stdout.write(
        `llama-server:    ${binaries.llamaServer}\nggml-rpc-server: ${binaries.rpcServer}\nmodel:           ${model}\n`,
      );
      return 0;
    }
    case 'schema':
      process.stdout.write(`${JSON.stringify(inferenceServiceJsonSchema(), null, 2)}\n`);
      return 0;
    case 'version':
      process.stdout.write(`tandem ${packageVersion()}\n`);
      return 0;
  }
  return 2;
}

// Output whose reader went away (a closed terminal, `| head`, a parent that died) is dropped: its
// write error, raised as uncaught, was written to the same closed stderr, failed again, and so on,
// a loop that took a core while `tandem up` served on.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

// A promise nobody handles is a bug: named as one, with its stack, then raised as an uncaught
// exception (what `tandem up` stops its members on; elsewhere the process exits with code 1).
process.on('unhandledRejection', (err) => {
  process.stderr.write(`tandem: bug: unhandled rejection: ${err instanceof Error ? err.stack : String(err)}\n`);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof SpecError) {
      for (const p of err.problems) process.stderr.write(`${p}\n`);
      process.exitCode = 2;
    } else if (
      err instanceof UsageError ||
      (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`tandem: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`tandem: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
