// The gateway's settings from the command line, shared by `tandem up` (in front of local groups)
// and `tandem gateway` (in front of a cluster's).
import pino, { type Logger } from 'pino';
import { watchKeyFile } from '../gateway/keys.js';
import type { Gateway, GatewayOptions, RoutingPolicy, UpstreamTimeouts } from '../gateway/server.js';
import { UsageError } from './usage-error.js';

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
export function gatewayOptions(s: GatewaySettings, accessLog: Logger): Omit<GatewayOptions, 'source'> {
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

/**
 * The access log: JSON lines to a file (or 1, stdout), written 4 KiB at a time and at least once a
 * second (a write per request costs more than the request's own log line); `close` writes the rest.
 * A file is written by the event loop itself, as nginx writes a buffered access_log: sonic-boom's
 * writes through libuv's threads cost the loop more per line than the write does (µs per line,
 * alone: 1 for 4 KiB written at once, 3 to 4 handed to a thread). Stdout stays off the loop: a
 * pipe that a log collector reads slowly would hold it.
 */
export function accessLog(dest: string | 1): {
  log: Logger;
  close: () => void;
  /** Calls `listener` on a failed write (its lines are lost; the gateway serves on). */
  onWriteError: (listener: (err: Error) => void) => void;
} {
  const stream = pino.destination({ dest, mkdir: true, sync: dest !== 1, minLength: 4096 });
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
  const timer = setInterval(() => stream.flush(), 1000).unref();
  return {
    log: pino(stream),
    close: () => {
      clearInterval(timer);
      try {
        stream.flushSync();
      } catch {
        // not open yet: nothing was written
      }
    },
    onWriteError: (listener) => stream.on('error', listener),
  };
}
