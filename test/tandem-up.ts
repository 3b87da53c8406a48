// A real `tandem up` for tests of its control API and dashboard, as a user runs it: its own state
// folder, its gateway's address from its status view, the CLI against it.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { stringify } from 'yaml';
import { tinySpec } from './helpers.js';
import type { ServiceRecord } from '../src/core/control.js';

const root = join(fileURLToPath(import.meta.url), '../../..');
export const tandem = join(root, 'bin', 'tandem.js');

export interface Up {
  child: ChildProcess;
  state: string;
  gateway: string;
  log: () => string;
  stop(): Promise<void>;
}

/**
 * `tandem up` with no file, in a state folder of its own; resolves once its gateway listens.
 * `wrap` makes the command line that runs it from its state folder and its own (one that execs it
 * keeps its pid, which `stop` signals).
 */
export async function up(extra: string[] = [], wrap?: (state: string, command: string[]) => string[]): Promise<Up> {
  const state = mkdtempSync(join(tmpdir(), 'tandem-control-'));
  const command = [process.execPath, tandem, 'up', '--port', '0', ...extra];
  const [file, ...args] = wrap ? wrap(state, command) : command;
  const child = spawn(file!, args, {
    env: { ...process.env, TANDEM_STATE: state },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // Its status view names the gateway once it listens.
  const gateway = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /gateway: (http:\/\/[\d.]+:\d+)\/v1/.exec(out)?.[1];
      if (url) resolve(url);
    });
    void exited.then(() => reject(new Error(`tandem up exited before its gateway listened:\n${out}`)));
  });
  return {
    child,
    state,
    gateway,
    log: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * `command` run with a tmpfs of `size` at `dir` (made here), in a mount namespace of its own: the
 * host's mounts are not changed, and the tmpfs goes with the last process in it. Needs root.
 */
export function withPrivateTmpfs(dir: string, size: string, command: string[]): string[] {
  mkdirSync(dir, { recursive: true });
  return [
    'unshare',
    '-m',
    '--propagation',
    'private',
    'sh',
    '-c',
    `mount -t tmpfs -o size=${size} tandem-tmpfs "$0" && exec "$@"`,
    dir,
    ...command,
  ];
}

export function cli(u: Up, args: string[], key?: string) {
  return spawnSync(process.execPath, [tandem, ...args], {
    env: { ...process.env, TANDEM_STATE: u.state, ...(key ? { TANDEM_API_KEY: key } : {}) },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

export function specFile(u: Up, name: string, spec: Record<string, unknown>): string {
  const file = join(u.state, `${name}.yaml`);
  writeFileSync(file, stringify(tinySpec(name, spec as never)));
  return file;
}

export async function service(u: Up, name: string, key?: string): Promise<ServiceRecord | undefined> {
  const res = await fetch(`${u.gateway}/api/v1/services/${name}`, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  if (res.status === 404) return undefined;
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as ServiceRecord;
}

export interface ControlAnswer {
  status: number;
  body: unknown;
}

/** A control API request as JSON (or a string body of `contentType`); the answer's status and JSON. */
export function controlApi(gateway: string, headers: Record<string, string> = {}) {
  return async (
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<ControlAnswer> => {
    const res = await fetch(`${gateway}/api/v1${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': contentType }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? (JSON.parse(text) as unknown) : text };
  };
}

/** Checks answers against the API's own OpenAPI description; `checked` lists what was. */
export async function openApiChecker(api: ReturnType<typeof controlApi>) {
  const doc = (await api('GET', '/openapi.json')).body as {
    components: Record<string, unknown>;
    paths: Record<
      string,
      Record<string, { responses: Record<number, { content: Record<string, { schema: object }> }> }>
    >;
  };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const checked: string[] = [];
  const check = (path: string, method: string, answer: ControlAnswer) => {
    const described = doc.paths[path]?.[method]?.responses[answer.status];
    assert.ok(described, `${method} ${path} → ${answer.status} is not described`);
    const validate = ajv.compile({ ...described.content['application/json']!.schema, components: doc.components });
    assert.ok(
      validate(answer.body),
      `${method} ${path} → ${answer.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(answer.body)}`,
    );
    checked.push(`${method} ${path} ${answer.status}`);
    return answer;
  };
  return { check, checked, doc };
}
