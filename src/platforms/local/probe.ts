// Readiness probes, as a kubelet runs them: an HTTP GET that must answer 200, a TCP connect, or
// none (a container without a probe is ready while it runs).
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import type { Endpoint, Probe } from '../../core/group.js';

const PROBE_TIMEOUT_MS = 1000;
/** Each stage of a probe (connect, headers, body) within the timeout. */
const probes = new Agent({ connect: { timeout: PROBE_TIMEOUT_MS } });

export async function probe(endpoint: Endpoint, spec: Probe): Promise<boolean> {
  if (spec.kind === 'running') return true; // the caller probes live processes only
  return spec.kind === 'http' ? httpProbe(endpoint, spec.path) : tcpProbe(endpoint);
}

async function httpProbe({ host, port }: Endpoint, path: string): Promise<boolean> {
  try {
    // undici's request(), not fetch(): a probe a second per member, and fetch's streams cost more.
    const res = await request(`http://${host}:${port}${path}`, {
      dispatcher: probes,
      headersTimeout: PROBE_TIMEOUT_MS,
      bodyTimeout: PROBE_TIMEOUT_MS,
    });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

function tcpProbe({ host, port }: Endpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
