// The `tandem` command line.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpecError, loadServices } from '../spec/load.js';
import { inferenceServiceJsonSchema } from '../spec/schema.js';
import { prepareServices } from '../engine/prepare.js';
import { ensureLlamaBinaries } from '../engine/llamacpp/build.js';
import { ensureLlamaSource } from '../engine/llamacpp/source.js';
import { ensureTinyLlama } from '../model/tiny-llama.js';
import { LocalPlatform } from '../runtime/local/platform.js';
import { Reconciler } from '../runtime/reconciler.js';
import { stateDir } from '../util/paths.js';
import { stderrProgress } from '../util/progress.js';
import { statusTable } from './status-table.js';
import { gatewayFor } from '../gateway/attach.js';

const USAGE: Record<string, string> = {
  tandem: `tandem: run large language models that span several machines

Usage: tandem <command> [options]

Commands:
  up FILE…         validate, build what is needed, start every group; Ctrl-C stops everything
  validate FILE…   check InferenceService files; every problem is listed (exit code 2 if any)
  prepare          build llama.cpp and make the project's model into the cache (once)
  schema           print the InferenceService JSON Schema
  version          print versions

Run 'tandem <command> --help' for a command's options.`,
  up: `Usage: tandem up FILE… [--port N] [--host H] [--log-dir DIR]

Starts every group of every InferenceService in FILE… on this machine (each member a local process
on its own loopback address), keeps them running (a group whose member dies is recreated), serves
every model behind one OpenAI-compatible endpoint, and shows their status. Ctrl-C (or SIGTERM)
stops every process it started.

Options:
  --port N        the gateway's port (default 8080)
  --host H        the gateway's address (default 127.0.0.1; 0.0.0.0 to listen wider)
  --log-dir DIR   where member logs go (default: $TANDEM_STATE/logs, ./.tandem/logs)`,
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

class UsageError extends Error {}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(fileURLToPath(import.meta.url), '../../../../package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

async function up(files: string[], logDir: string, host: string, port: number): Promise<void> {
  const loaded = loadServices(files);
  const templates = await prepareServices(loaded, stderrProgress);
  const platform = new LocalPlatform({ logDir });
  const reconciler = new Reconciler(platform, templates);
  const gateway = gatewayFor(reconciler, host, port);
  await gateway.listen();
  reconciler.on('event', (e) => {
    process.stdout.write(`${new Date(e.at).toISOString()} ${e.service}${e.replica === undefined ? '' : `/${e.replica}`}: ${e.message}\n`);
  });
  let last = '';
  reconciler.on('tick', () => {
    const table = statusTable(reconciler.snapshot());
    if (table !== last) process.stdout.write(`\n${table}\n\n`);
    last = table;
  });
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    process.stdout.write(`${signal}: stopping every group…\n`);
    stopping = Promise.all([gateway.close(), reconciler.stop()]).then(() => {
      process.stdout.write('stopped; no process left running\n');
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A crash must not orphan the members: stop them, then fail.
  process.on('uncaughtException', (err) => {
    process.stderr.write(`tandem: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
    stop('error');
  });
  process.stdout.write(`gateway: ${gateway.url}/v1 (models: ${templates.map((t) => t.servedName).join(', ')})\nlogs: ${logDir}\n`);
  reconciler.start();
}

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
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      'log-dir': { type: 'string' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE[command]}\n`);
    return 0;
  }
  switch (command) {
    case 'validate': {
      const loaded = loadServices(positionals);
      for (const { service, file } of loaded) process.stdout.write(`${file}: ${service.metadata.name}: ok\n`);
      return 0;
    }
    case 'up': {
      const port = Number(values.port ?? 8080);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: must be a port number (got ${values.port})`);
      await up(positionals, values['log-dir'] ?? join(stateDir(), 'logs'), values.host ?? '127.0.0.1', port);
      return -1; // keeps running until a signal
    }
    case 'prepare': {
      const binaries = await ensureLlamaBinaries(stderrProgress);
      const model = await ensureTinyLlama((await ensureLlamaSource(stderrProgress)).dir, stderrProgress);
      process.stdout.write(`llama-server:    ${binaries.llamaServer}\nggml-rpc-server: ${binaries.rpcServer}\nmodel:           ${model}\n`);
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

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof SpecError) {
      for (const p of err.problems) process.stderr.write(`${p}\n`);
      process.exitCode = 2;
    } else if (err instanceof UsageError || (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`tandem: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`tandem: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
