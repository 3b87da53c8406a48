// The gateway's settings from the command line, shared by `tandem up` (in front of local groups)
// and `tandem gateway` (in front of a cluster's).
import sonicBoom from 'sonic-boom';
import { watchKeyFile } from '../gateway/keys.js';
import type {
  AccessEntry,
  AccessLog,
  Gateway,
  GatewayOptions,
  RoutingPolicy,
  UpstreamTimeouts,
} from '../gateway/server.js';
import { UsageError } from './usage-error.js';

// A CommonJS module: its class is a member of what the default import gives.
const { SonicBoom } = sonicBoom;

export interface GatewaySettings {
  host: string;
  port: number;
  timeouts: UpstreamTimeouts;
  /** How long in-flight requests may take to finish once a stop is asked for. */
  drainMs: number;
  /** The API key file; none: every request is served. */
  apiKeys?: string;
  routing: RoutingPolicy;
}

/** The gateway's options, its key file watched for changes. */
export function gatewayOptions(s: GatewaySettings, accessLog: AccessLog): Omit<GatewayOptions, 'source'> {
  const keys = s.apiKeys ? watchKeyFile(s.apiKeys, (l) => process.stderr.write(`${l}\n`)) : undefined;
  return {
    host: s.host,
    port: s.port,
    timeouts: s.timeouts,
    ...(keys ? { keys: keys.ring } : {}),
    routing: s.routing,
    accessLog,
  };
}

export async function listenOrExplain(gateway: Gateway, s: GatewaySettings): Promise<void> {
  await gateway.listen().catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'EADDRINUSE'
      ? new UsageError(`${s.host}:${s.port} is in use: pass --port N (0 picks a free one)`)
      : err;
  });
}

/** Entries kept before they are written out together (or at the next second). */
const ACCESS_BATCH = 64;

/**
 * The access log: JSON lines to a file (or 1, stdout) as pino writes them (level 30, time in ms,
 * then the entry). A request only hands its entry over; lines are made and written a batch at a
 * time, at least once a second, and the rest on `close`. Made one at a time on the request's way
 * out, a line cost more than the request's own work where requests come one at a time (pino's
 * serializer and JSON.stringify alike: profiles of bench:peers at concurrency 1, where the loop is
 * cold between requests). A file is written by the event loop itself, as nginx writes a buffered
 * access_log: a write handed to libuv's threads costs the loop more than the write does. Stdout
 * stays off the loop: a pipe that a log collector reads slowly would hold it.
 */
export function accessLog(dest: string | 1): {
  log: AccessLog;
  close: () => void;
  /** Calls `listener` on a failed write (its lines are lost; the gateway serves on). */
  onWriteError: (listener: (err: Error) => void) => void;
} {
  const stream = new SonicBoom({ ...(dest === 1 ? { fd: 1 } : { dest, mkdir: true }), sync: dest !== 1 });
  // A full disk loses access log lines, never the gateway: unheard, the stream's error was an
  // uncaught exception that stopped `tandem up`.
  let failed = false;
  stream.on('error', (err: Error) => {
    if (failed) return;
    failed = true;
    process.stderr.write(`tandem: the access log could not be written (it is off from now): ${err.message}\n`);
    // As pino does on EPIPE: nothing more is written or flushed, at exit either (sonic-boom's
    // flushSync retries a write that fails with ENOSPC for ever: the process never ended).
    stream.write = () => true;
    stream.flush = () => undefined;
    stream.flushSync = () => undefined;
  });
  const pending: { time: number; entry: AccessEntry }[] = [];
  const writeOut = () => {
    if (pending.length === 0) return;
    let lines = '';
    // The entry's own JSON after pino's two fields: no copy of each entry to put them first.
    for (const { time, entry } of pending) lines += `{"level":30,"time":${time},${JSON.stringify(entry).slice(1)}\n`;
    pending.length = 0;
    stream.write(lines);
  };
  const timer = setInterval(writeOut, 1000).unref();
  return {
    log: {
      write: (entry) => {
        if (pending.push({ time: Date.now(), entry }) >= ACCESS_BATCH) writeOut();
      },
    },
    close: () => {
      clearInterval(timer);
      writeOut();
      try {
        stream.flushSync();
      } catch {
        // not open yet: nothing was written
      }
    },
    onWriteError: (listener) => stream.on('error', listener),
  };
}
