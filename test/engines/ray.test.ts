// A vLLM Ray group's cluster, formed for real on this machine (Ray from PyPI, in the vLLM
// virtualenv): the leader starts a Ray head, a worker joins it from its own address in the group's
// network namespace, and only once the head sees both nodes does the leader run its serving command.
// vLLM's Ray executor refuses the CPU platform, so here that command is a probe of the cluster that
// reports the nodes it sees and answers /health; the command lines are vLLM's own otherwise.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateDocument } from '../../src/spec/load.js';
import { vllmServiceTemplate } from '../../src/engine/vllm/service.js';
import { ensureVllm } from '../../src/engine/vllm/install.js';
import { LocalPlatform } from '../../src/platforms/local/platform.js';
import { LocalEvents } from '../../src/platforms/local/events.js';
import { MemoryStatusStore } from '../../src/platforms/local/status-store.js';
import { Reconciler } from '../../src/controller/reconciler.js';
import { silentProgress } from '../../src/util/progress.js';
import { allReady, isAlive, waitFor } from '../helpers.js';

let reconciler: Reconciler | undefined;
const pids = new Set<number>();
after(async () => {
  await reconciler?.teardown();
  for (const pid of pids) assert.equal(isAlive(pid), false, `member ${pid} left running`);
});

test('a Ray head and a worker form a 2-node cluster; the group is Ready only once both joined', async () => {
  const install = await ensureVllm(silentProgress);
  const dir = mkdtempSync(join(tmpdir(), 'tandem-ray-'));
  const probe = join(dir, 'cluster-probe');
  writeFileSync(
    probe,
    [
      `#!${install.python}`,
      'import http.server, sys, ray',
      'args = sys.argv[1:]',
      "host, port = args[args.index('--host') + 1], int(args[args.index('--port') + 1])",
      "ray.init(address=f'{host}:6379', logging_level='ERROR')",
      "print('ray nodes alive:', sorted(n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']), flush=True)",
      'class Health(http.server.BaseHTTPRequestHandler):',
      '    def do_GET(self):',
      '        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")',
      'http.server.HTTPServer((host, port), Health).serve_forever()',
      '',
    ].join('\n'),
  );
  chmodSync(probe, 0o755);
  const { service } = validateDocument({
    apiVersion: 'tandem.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name: 'ray' },
    spec: {
      model: { servedName: 'ray', source: 'tandem://tiny-llama' },
      engine: { type: 'vllm', distributedExecutorBackend: 'ray' },
      parallelism: { nodes: 2, tensor: 1, pipeline: 2 },
      startupTimeout: '5m',
    },
  });
  const template = vllmServiceTemplate(
    service!,
    '/unused',
    { ...install, vllm: probe, env: { RAY_USAGE_STATS_ENABLED: '0' } },
    2,
  );
  const logDir = mkdtempSync(join(tmpdir(), 'tandem-ray-logs-'));
  const platform = new LocalPlatform({ logDir });
  const r = new Reconciler({ platform, store: new MemoryStatusStore(), events: new LocalEvents() });
  reconciler = r;
  r.on('tick', () =>
    r
      .snapshot()
      .flatMap((x) => x.groups.flatMap((g) => g.members))
      .forEach((m) => m.pid && pids.add(m.pid)),
  );
  r.apply(template);
  r.start();
  await waitFor(r, allReady, 5 * 60_000);
  // Member output reaches its file within 50 ms (gathered into one write): read once it is there.
  const path = platform.logPath({ service: 'ray', replica: 0 }, 0);
  for (let i = 0; i < 50 && !readFileSync(path, 'utf8').includes('ray nodes alive'); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const leaderLog = readFileSync(path, 'utf8');
  // The serving command ran once, after the head saw the worker's node from its own address.
  assert.deepEqual(leaderLog.match(/ray nodes alive: .*/g), ["ray nodes alive: ['127.0.0.1', '127.0.0.2']"]);
  const group = r.snapshot()[0]!.groups[0]!;
  const health = await fetch(`http://${group.leader.host}:${group.leader.port}/health`);
  assert.equal(health.status, 200);
});
