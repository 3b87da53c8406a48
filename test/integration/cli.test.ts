// The `tandem` command as a user runs it: a real process, real signals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlive, until } from '../helpers.js';
import { cli, service, specFile, up } from '../tandem-up.js';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const tandem = join(root, 'bin', 'tandem.js');
const env = (state: string) => ({ ...process.env, TANDEM_STATE: state });

const BAD = `apiVersion: tandem.dev/v1alpha1
kind: InferenceService
metadata: {name: Bad_Name}
spec:
  model: {servedName: m, source: "hf://x"}
  engine: {type: llamacpp, argz: []}
  parallelism: {nodes: 0}
`;

test('an invalid spec: every problem with its path, exit code 2, nothing started', () => {
  const state = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  const file = join(state, 'bad.yaml');
  writeFileSync(file, BAD);
  for (const command of ['validate', 'up']) {
    const run = spawnSync(process.execPath, [tandem, command, file], {
      env: env(state),
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(run.status, 2, `${command}: ${run.stderr}`);
    assert.deepEqual(run.stderr.trim().split('\n').sort(), [
      `${file}: metadata.name: must be a name of lower-case letters, digits and "-" (at most 40), starting with a letter`,
      `${file}: spec.engine.argz: unknown field`,
      `${file}: spec.model.source: must be file://PATH.gguf, tandem://tiny-llama, hf://ORG/NAME or pvc://CLAIM/PATH.gguf for llamacpp`,
      `${file}: spec.parallelism.nodes: must be an integer from 1 to 256`,
    ]);
  }
  assert.ok(!existsSync(join(state, 'logs')), 'a member was started');
});

test('unknown commands and options are usage errors; every command has --help', () => {
  assert.equal(spawnSync(process.execPath, [tandem, 'frobnicate'], { encoding: 'utf8' }).status, 2);
  assert.equal(spawnSync(process.execPath, [tandem, 'validate', '--nope'], { encoding: 'utf8' }).status, 2);
  for (const command of ['up', 'status', 'logs', 'down', 'plan', 'validate', 'prepare', 'schema', 'version']) {
    const run = spawnSync(process.execPath, [tandem, command, '--help'], { encoding: 'utf8' });
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^Usage: tandem /);
  }
});

test('tandem up runs the example behind the gateway; status, logs and down work on it; nothing is left behind', async () => {
  const state = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  const child = spawn(process.execPath, [tandem, 'up', join(root, 'examples', 'tiny-2node.yaml'), '--port', '0'], {
    env: env(state),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 60_000;
    while ((out.match(/group ready/g) ?? []).length < 2) {
      assert.ok(Date.now() < deadline, `not ready in time:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const members = memberPids(child.pid!);
    assert.equal(members.length, 4, '2 replicas × 2 members');
    assert.match(out, /tiny\s+1\s+1 worker\s+127\.\d+\.\d+\.2:\d+\s+Ready/);
    assert.ok(readdirSync(join(state, 'logs', 'tiny')).length === 2);
    const gateway = out.match(/gateway: (http:\/\/127\.0\.0\.1:\d+)\/v1/)![1];
    const res = await fetch(`${gateway}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tandem-tiny', prompt: 'Hello', max_tokens: 4 }),
    });
    assert.equal(res.status, 200);

    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [tandem, ...args], { env: env(state), encoding: 'utf8', timeout: 30_000 });
    const status = cli('status');
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`gateway: ${gateway}/v1`));
    assert.equal((status.stdout.match(/\bReady\s+Ready\b/g) ?? []).length, 4, status.stdout);
    const again = cli('up', join(root, 'examples', 'tiny-2node.yaml'), '--port', '0');
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already running here/);
    const logs = cli('logs', 'tiny', '--replica', '1');
    assert.match(logs.stdout, /llama_server: model loaded/);
    assert.match(cli('logs', 'tiny', '--member', '1').stdout, /Accepted client connection/);

    const down = cli('down');
    assert.equal(down.status, 0, down.stderr);
    assert.equal(await exited, 0, out);
    assert.equal(cli('status').status, 1);
    for (const pid of members) assert.equal(isAlive(pid), false, `member ${pid} left running`);
    assert.match(out, /stopped; no process left running/);
  } finally {
    child.kill('SIGKILL');
  }
});

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** The engine processes `tandem up` (pid) started. */
function memberPids(pid: number): number[] {
  return childrenOf(pid).filter((p) => /llama-server|ggml-rpc-server/.test(cmdline(p)));
}

/** Pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return (
          readFileSync(`/proc/${d}/stat`, 'utf8')
            .replace(/^.*\) /, '')
            .split(' ')[1] === String(pid)
        );
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('tandem plan: a table by default, JSON and SVG on request, clear errors for bad input', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [tandem, 'plan', ...args], { encoding: 'utf8', timeout: 30_000 });
  const table = run('--model', 'Llama-3.1-405B', '--gpu', 'BM.GPU.H100.8', '--nodes', '2', '--max-model-len', '32768');
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /best: tp 8 × pp 2 on 2 node\(s\)/);
  assert.match(table.stdout, /--tensor-parallel-size 8 --pipeline-parallel-size 2/);
  assert.match(table.stdout, /infeasible:\n {2}tp 1 × pp 1: weights do not fit/);

  const dir = mkdtempSync(join(tmpdir(), 'tandem-plan-'));
  const json = run(
    '--model',
    join(root, 'test', 'fixtures', 'llama-3.1-8b-config.json'),
    '--gpu',
    'L4',
    '--gpus-per-node',
    '4',
    '--nodes',
    '1',
    '--max-model-len',
    '16384',
    '--json',
    '--svg',
    join(dir, 'plan.svg'),
  );
  assert.equal(json.status, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as {
    layouts: { tp: number; pp: number; nodes: number; kvTokens: number }[];
    infeasible: { reason: string }[];
  };
  assert.ok(parsed.layouts.length > 0 && parsed.layouts.every((l) => l.kvTokens >= 16384));
  assert.ok(Array.isArray(parsed.infeasible));
  assert.match(readFileSync(join(dir, 'plan.svg'), 'utf8'), /^<svg[\s\S]*<\/svg>\n$/);

  // Any GPU by its memory: a 48 GB workstation card the catalog does not list.
  const anyGpu = run(
    ...['--model', join(root, 'test', 'fixtures', 'llama-3.1-8b-config.json'), '--gpu', 'RTX-A6000'],
    ...['--gpu-memory', '47.5', '--gpus-per-node', '2', '--max-model-len', '8192'],
  );
  assert.equal(anyGpu.status, 0, anyGpu.stderr);
  assert.match(anyGpu.stdout, /RTX-A6000/);
  assert.match(anyGpu.stdout, /best: tp 2 × pp 1 on 1 node\(s\)/);
  const same = (memory: string) =>
    JSON.parse(run('--model', 'Llama-3.1-8B', '--gpu-memory', memory, '--gpus-per-node', '1', '--json').stdout) as {
      layouts: { kvTokens: number; decodeTokensPerSecondMax?: number }[];
    };
  // The catalog's L4 is 22.03 GiB: given as a number, the same plan, with no bandwidth to bound decode by.
  const l4 = JSON.parse(run('--model', 'Llama-3.1-8B', '--gpu', 'L4', '--gpus-per-node', '1', '--json').stdout) as {
    layouts: { kvTokens: number }[];
  };
  assert.equal(same('22.03').layouts[0]!.kvTokens, l4.layouts[0]!.kvTokens);
  assert.equal(same('22.03').layouts[0]!.decodeTokensPerSecondMax, undefined);

  // Any config.json, multimodal too, on any GPU by its memory; an older release's memory model.
  const mm = run(
    ...['--model', join(root, 'test', 'fixtures', 'mistral-small-3.1-config.json')],
    ...['--gpu-memory', '48', '--gpus-per-node', '2', '--max-model-len', '8192'],
  );
  assert.equal(mm.status, 0, mm.stderr);
  assert.match(mm.stdout, /best: tp 2 × pp 1 on 1 node\(s\)/);
  const old = run('--model', 'Llama-3.1-8B', '--gpu', 'p5.48xlarge', '--engine-version', '0.6.4');
  assert.equal(old.status, 0, old.stderr);
  assert.match(old.stdout, /engine: vLLM < 0\.8 \(V0 engine/);
  assert.match(old.stdout, /--gpu-memory-utilization 0\.9$/m);

  const none = run('--model', 'Llama-3.1-405B', '--gpu', 'L4', '--gpus-per-node', '1', '--nodes', '1');
  assert.equal(none.status, 1);
  assert.match(none.stdout, /no feasible layout/);
  for (const [args, message] of [
    [['--gpu', 'H100'], /--model is required/],
    [['--model', 'Llama-3.1-8B', '--gpu', 'TPU'], /unknown GPU "TPU"/],
    [['--model', 'nope', '--gpu', 'H100'], /unknown model "nope"/],
    [['--model', 'Llama-3.1-8B', '--gpu', 'H100', '--dtype', 'int3'], /unknown --dtype "int3"/],
    [['--model', 'Llama-3.1-8B', '--gpu', 'H100', '--nodes', '0'], /--nodes: must be an integer ≥ 1/],
    [['--model', 'Llama-3.1-8B', '--gpu-memory', 'lots'], /--gpu-memory: must be the GPU's memory in GiB/],
    [['--model', 'Llama-3.1-8B'], /--gpu is required: .*--gpu-memory GIB/],
    [['--model', 'Llama-3.1-8B', '--gpu', 'H100', '--engine-version', 'banana'], /--engine-version: "banana"/],
    [
      ['--model', 'Llama-3.1-8B', '--gpu', 'H100', '--engine', 'llamacpp', '--engine-version', '1.0'],
      /applies to vllm and sglang/,
    ],
  ] as const) {
    const bad = run(...args);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, message);
  }
});

test('an option of another command is a usage error, not silently ignored', () => {
  const run = spawnSync(
    process.execPath,
    [tandem, 'validate', '--model', 'x', join(root, 'examples', 'tiny-2node.yaml')],
    { encoding: 'utf8' },
  );
  assert.equal(run.status, 2);
  assert.match(run.stderr, /Unknown option '--model'/);
});

/** `tandem up` of the 2 × 2 example, once both groups are ready. */
async function upExample(state: string, ...args: string[]) {
  const child = spawn(
    process.execPath,
    [tandem, 'up', join(root, 'examples', 'tiny-2node.yaml'), '--port', '0', ...args],
    {
      env: env(state),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while ((out.match(/group ready/g) ?? []).length < 2) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      assert.fail(`not ready in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const gateway = out.match(/gateway: (http:\/\/127\.0\.0\.1:\d+)\/v1/)![1]!;
  const keeper = childrenOf(child.pid!).filter((pid) => /keeper-main/.test(cmdline(pid)));
  return { child, exited, gateway, members: memberPids(child.pid!), keeper, output: () => out };
}

test('SIGKILL of tandem up: no member survives it, its keeper stops them', async () => {
  const state = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  const { child, exited, members } = await upExample(state);
  assert.equal(members.length, 4);
  child.kill('SIGKILL');
  await exited;
  await until(
    () => `every member gone (${members.filter(isAlive).length} of ${members.length} alive)`,
    30_000,
    async () => (members.some(isAlive) ? undefined : true),
  );
  const down = spawnSync(process.execPath, [tandem, 'down'], { env: env(state), encoding: 'utf8', timeout: 30_000 });
  assert.equal(down.status, 0, down.stderr);
  assert.match(down.stdout, /tandem is not running here/);
});

test('if the keeper is killed too, the next down stops the members left behind', async () => {
  const state = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  const { child, exited, members, keeper } = await upExample(state);
  assert.equal(keeper.length, 1, 'one keeper beside tandem');
  // Once the status file lists every member, a later `tandem down` can find them.
  const listed = () => {
    const file = join(state, 'status.json');
    if (!existsSync(file)) return [];
    const status = JSON.parse(readFileSync(file, 'utf8')) as {
      services: { groups: { members: { pid?: number }[] }[] }[];
    };
    return status.services.flatMap((sv) => sv.groups.flatMap((g) => g.members.map((m) => m.pid)));
  };
  await until('the status file to list every member', 30_000, async () =>
    members.every((pid) => listed().includes(pid)) ? true : undefined,
  );
  process.kill(keeper[0]!, 'SIGKILL');
  child.kill('SIGKILL');
  await exited;
  assert.ok(members.every(isAlive), 'with tandem and its keeper gone, nothing stopped the members yet');
  const down = spawnSync(process.execPath, [tandem, 'down'], { env: env(state), encoding: 'utf8', timeout: 30_000 });
  assert.equal(down.status, 0, down.stderr);
  assert.match(down.stdout, /stopped 4 member process\(es\) left by a tandem that died/);
  for (const pid of members) assert.equal(isAlive(pid), false, `member ${pid} left running`);
});

test('SIGTERM drains: a request in flight finishes, new connections are refused, then the groups stop', async () => {
  const state = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  const { child, exited, gateway, members, output } = await upExample(state, '--drain-timeout', '20s');
  try {
    const res = await fetch(`${gateway}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tandem-tiny', prompt: 'Once', max_tokens: 300, stream: true, ignore_eos: true }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = new TextDecoder().decode((await reader.read()).value); // the first event: in flight
    child.kill('SIGTERM');
    // Soon after the signal, new connections are refused, while the stream in flight goes on.
    await until('a new connection to be refused while draining', 10_000, async () =>
      fetch(`${gateway}/v1/models`).then(
        () => undefined,
        () => true,
      ),
    );
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    assert.match(text, /"finish_reason":"length"/);
    assert.match(text, /data: \[DONE\]/);
    assert.equal(await exited, 0, output());
    assert.match(output(), /no new requests; letting those in flight finish \(up to 20s\)/);
    for (const pid of members) assert.equal(isAlive(pid), false, `member ${pid} left running`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a gateway port in use is a clear usage error, and nothing is started', async () => {
  const state = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const run = spawnSync(
      process.execPath,
      [tandem, 'up', join(root, 'examples', 'tiny-2node.yaml'), '--port', String(port)],
      { env: env(state), encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is in use: pass --port N`));
    assert.ok(!existsSync(join(state, 'logs')), 'a member was started');
  } finally {
    blocker.close();
  }
});

test('tandem up whose output has nowhere to go (its terminal closed, its reader gone) keeps serving, and quietly', async () => {
  const u = await up();
  try {
    u.child.stdout!.destroy();
    u.child.stderr!.destroy();
    // Each change is printed into the pipe (the status view), which now fails with EPIPE: that
    // error was written to the same closed stderr, failed again, … and the process stopped serving.
    const applied = cli(u, ['apply', specFile(u, 'quiet', {})]);
    assert.equal(applied.status, 0, applied.stderr);
    await until('its group to be Ready', 60_000, async () =>
      (await service(u, 'quiet'))?.status?.groups[0]?.phase === 'Ready' ? true : undefined,
    );
    assert.equal((await fetch(`${u.gateway}/healthz`)).status, 200);
    assert.equal(u.child.exitCode, null, 'still running');
  } finally {
    await u.stop();
  }
});
