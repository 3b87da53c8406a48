// How each gateway of bench:peers is started in front of the same replicas: its command, on a port
// of its own, everything it listens on bound to 127.0.0.1, nothing fetched at run time.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { treeCpuMs } from '../cpu.js';
import { freePort } from '../../src/util/net.js';
import type { Venv } from '../../src/util/venv.js';

export interface Launched {
  url: string;
  /** Its CPU time so far (ms), workers included. */
  cpuMs(): number;
  stop(): Promise<void>;
}

export interface PeerContext {
  venv: Venv;
  nginx: string;
  /** A folder of this run's, for configs and logs. */
  dir: string;
  leaders: string[];
  model: string;
  /** The API key LiteLLM is given as its master key (it serves nothing without one). */
  key: string;
}

export type PeerName = 'nginx' | 'sglang-router' | 'smg' | 'vllm-router' | 'litellm' | 'node-floor';

/** Starts a peer; `policy` picks a routing policy where the peer has one. */
export async function launchPeer(name: PeerName, ctx: PeerContext, policy?: string): Promise<Launched> {
  const port = await freePort();
  const log = join(ctx.dir, `${name}${policy ? `-${policy}` : ''}.log`);
  let child: ChildProcess;
  const run = (command: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawn(command, args, { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, ...env } });
  const router = async (bin: string, extra: string[] = []) => [
    'launch',
    '--worker-urls',
    ...ctx.leaders,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--policy',
    policy ?? 'round_robin',
    '--prometheus-host',
    '127.0.0.1',
    '--prometheus-port',
    String(await freePort()),
    '--log-level',
    bin === 'vllm-router' ? 'warning' : 'warn',
    ...extra,
  ];
  switch (name) {
    case 'nginx': {
      const prefix = join(ctx.dir, 'nginx');
      mkdirSync(prefix, { recursive: true });
      const conf = join(prefix, 'nginx.conf');
      writeFileSync(
        conf,
        `worker_processes auto;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${log} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream replicas {
    least_conn;
${ctx.leaders.map((l) => `    server ${new URL(l).host};`).join('\n')}
    keepalive 64;
    keepalive_timeout 4s; # below llama-server's 5 s: nginx does not retry a POST on a closed one
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`,
      );
      child = run(ctx.nginx, ['-p', prefix, '-c', conf, '-e', log]);
      break;
    }
    case 'sglang-router':
    case 'smg':
      child = run(ctx.venv.bin(name), await router(name));
      break;
    case 'vllm-router': {
      const args = await router(name);
      child = run(ctx.venv.bin(name), args.slice(1)); // no `launch` subcommand
      break;
    }
    case 'node-floor':
      child = run(process.execPath, [
        fileURLToPath(new URL('./node-floor.js', import.meta.url)),
        String(port),
        ...ctx.leaders,
      ]);
      break;
    case 'litellm': {
      const config = join(ctx.dir, 'litellm.yaml');
      writeFileSync(
        config,
        JSON.stringify({
          model_list: ctx.leaders.map((l) => ({
            model_name: ctx.model,
            litellm_params: { model: `openai/${ctx.model}`, api_base: `${l}/v1`, api_key: 'none' },
          })),
          router_settings: { routing_strategy: policy ?? 'simple-shuffle' },
          general_settings: { master_key: ctx.key },
          litellm_settings: { telemetry: false },
        }),
      );
      child = run(
        ctx.venv.bin('litellm'),
        ['--config', config, '--host', '127.0.0.1', '--port', String(port), '--num_workers', '1'],
        // Its model price list from the package, not from the network.
        { LITELLM_LOCAL_MODEL_COST_MAP: 'True', LITELLM_LOG: 'ERROR' },
      );
      break;
    }
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    cpuMs: () => treeCpuMs(child.pid!),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}
