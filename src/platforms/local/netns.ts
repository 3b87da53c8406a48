// A network namespace per group, for engines that bind wildcard ports (torch's TCPStore binds
// *:MASTER_PORT whatever address it is given): the members share the namespace's own loopback,
// each on its own address, and nothing outside the group can reach them. The gateway and the
// readiness probes reach the leader's API through two relays: a TCP listener on a host loopback
// address (in this process) → a Unix socket → a relay inside the namespace → the leader's port.
// Needs root (or user namespaces) and iproute2's `ip`, util-linux's `unshare` and `nsenter`.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../../core/group.js';
import { splice } from '../../util/net.js';

const RELAY = fileURLToPath(new URL('./relay-main.js', import.meta.url));

export class GroupNamespace {
  private relay?: { inner: ChildProcess; outer: Server; socket: string };

  private constructor(
    private readonly holder: ChildProcess,
    readonly pid: number,
  ) {}

  /** A new namespace with its loopback up, held by a sleeping process until close(). */
  static async create(): Promise<GroupNamespace> {
    const holder = spawn(
      'unshare',
      ['--net', '--', 'sh', '-c', 'ip link set lo up && echo up && exec sleep infinity'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    const pid = await new Promise<number>((resolve, reject) => {
      let err = '';
      holder.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      holder.once('error', (e) => reject(new Error(`unshare: ${e.message} (util-linux is needed)`)));
      holder.once('exit', (code) =>
        reject(
          new Error(
            `a network namespace for the group could not be made (exit ${code}): ${err.trim()} (it needs root)`,
          ),
        ),
      );
      holder.stdout!.once('data', () => resolve(holder.pid!));
    });
    holder.removeAllListeners('exit');
    return new GroupNamespace(holder, pid);
  }

  /** `command args…` run inside the namespace. */
  wrap(command: string, args: string[]): [string, string[]] {
    return ['nsenter', [`--net=/proc/${this.pid}/ns/net`, '--', command, ...args]];
  }

  /** Makes `inside` (an address in the namespace) reachable at `outside` (a host loopback address). */
  async expose(inside: Endpoint, outside: Endpoint, socket: string): Promise<void> {
    const [command, args] = this.wrap(process.execPath, [RELAY, socket, inside.host, String(inside.port)]);
    const inner = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    await new Promise<void>((resolve, reject) => {
      inner.once('exit', (code) => reject(new Error(`the group's relay exited (${code})`)));
      inner.stdout!.once('data', () => resolve());
    });
    inner.removeAllListeners('exit');
    const outer = createServer((client) => {
      splice(client, connect(socket));
    });
    await new Promise<void>((resolve, reject) => {
      outer.once('error', reject);
      outer.listen(outside.port, outside.host, resolve);
    });
    this.relay = { inner, outer, socket };
  }

  /** The processes that hold the namespace up, for the keeper (stopped if tandem dies). */
  get pids(): number[] {
    return [this.holder.pid!, ...(this.relay?.inner.pid ? [this.relay.inner.pid] : [])];
  }

  /** Its holder, and its relay if it has one, still run. */
  alive(): boolean {
    const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
    return running(this.holder) && (!this.relay || running(this.relay.inner));
  }

  close(): void {
    if (this.relay) {
      this.relay.outer.close();
      this.relay.inner.kill('SIGKILL');
      rmSync(this.relay.socket, { force: true });
    }
    this.holder.kill('SIGKILL');
  }
}
