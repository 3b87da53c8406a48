// `tandem up`: validate, prepare, start every group and the gateway, show status, stop cleanly.
import { loadServices } from '../spec/load.js';
import { prepareServices } from '../engine/prepare.js';
import { embedded } from './embedded.js';
import { join } from 'node:path';
import { formatDuration } from '../spec/duration.js';
import { stderrProgress } from '../util/progress.js';
import { statusTable } from './status-table.js';
import { LiveView } from './live-view.js';
import { accessLog, gatewayOptions, listenOrExplain, type GatewaySettings } from './gateway.js';
import { clearRun, currentRun, reapLeftovers, writeRun, writeStatus } from './state.js';

export interface UpOptions extends GatewaySettings {
  files: string[];
  stateDir: string;
  logDir: string;
}

export async function up(options: UpOptions): Promise<void> {
  const running = currentRun(options.stateDir);
  if (running) {
    throw new Error(
      `tandem is already running here (pid ${running.pid}, gateway ${running.gateway}): run 'tandem down' first, or set TANDEM_STATE`,
    );
  }
  const reaped = await reapLeftovers(options.stateDir);
  if (reaped > 0)
    process.stderr.write(`tandem: stopped ${reaped} member process(es) left by an earlier run that died\n`);
  // No file: an empty gateway, for `tandem apply` to add services to.
  const loaded = options.files.length > 0 ? loadServices(options.files) : [];
  const templates = await prepareServices(loaded, stderrProgress);
  const access = accessLog(join(options.stateDir, 'gateway-access.log'));
  const local = embedded(templates, options.logDir, gatewayOptions(options, access.log), {}, options.drainMs);
  local.control.track(loaded, templates);
  const { reconciler, events, gateway, autoscaler } = local;
  await listenOrExplain(gateway, options);
  writeRun(options.stateDir, {
    pid: process.pid,
    gateway: gateway.url,
    logDir: options.logDir,
    files: options.files,
    startedAt: new Date().toISOString(),
  });

  const view = new LiveView(process.stdout);
  events.on('event', (e) => {
    view.event(
      `${new Date(e.at).toISOString()} ${e.service}${e.replica === undefined ? '' : `/${e.replica}`}: ${e.message}`,
    );
  });
  reconciler.on('tick', () => {
    const services = reconciler.snapshot();
    if (view.status(statusTable(services)))
      writeStatus(options.stateDir, { updatedAt: new Date().toISOString(), services, events: events.recent() });
  });

  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    view.release();
    process.stdout.write(
      `${why}: no new requests; letting those in flight finish (up to ${formatDuration(options.drainMs)})…\n`,
    );
    // Drain first, then stop the groups: a request in flight still needs its replica.
    void (async () => {
      autoscaler.stop();
      const cut = await gateway.close(options.drainMs).catch(() => 0);
      access.close();
      if (cut > 0) process.stdout.write(`${cut} request(s) still in flight were cut\n`);
      process.stdout.write('stopping every group…\n');
      await reconciler.teardown();
      clearRun(options.stateDir);
      process.stdout.write('stopped; no process left running\n');
      process.exit(process.exitCode ?? 0);
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A crash must not orphan the members: stop them, then fail.
  process.on('uncaughtException', (err) => {
    process.stderr.write(`tandem: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
    stop('error');
  });
  process.stdout.write(
    `gateway: ${gateway.url}/v1 (models: ${templates.map((t) => t.servedName).join(', ')})\nlogs: ${options.logDir}\n`,
  );
  local.start();
}
