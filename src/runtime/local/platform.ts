// The embedded default's platform: every group member is a local process on its own loopback
// address (127.B.G.M: one "node" per member), its output in a size-bounded log file, its
// readiness probed as a kubelet would. Each member leads its own process group, which a keeper
// process stops should tandem die without stopping it (keeper-main.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import type { Endpoint, GroupRef, MemberTemplate, ObservedMember, Platform } from '../types.js';
import { freePort } from '../../util/net.js';
import { signalGroup } from '../../util/process.js';
import { BoundedLog } from './bounded-log.js';
import { Keeper } from './keeper.js';
import { probe } from './probe.js';

const PROBE_INTERVAL_MS = 100;
const READY_RECHECK_MS = 1000;
const STOP_GRACE_MS = 5000;

interface LocalMember {
  group: GroupRef;
  template: MemberTemplate;
  templateHash: string;
  child: ChildProcess;
  log: BoundedLog;
  ready: boolean;
  /** Has been ready at least once. */
  started: boolean;
  createdAt: number;
  exited?: string;
  exitedPromise: Promise<void>;
  probeTimer?: NodeJS.Timeout;
}

export interface LocalPlatformOptions {
  logDir: string;
  /** Size limit of each member's log file. */
  logLimit?: number;
}

export class LocalPlatform implements Platform {
  private readonly members = new Map<string, LocalMember>();
  private readonly groupSlots = new Map<string, number>();
  /** Second octet shared by this platform's addresses; random so that parallel runs rarely meet. */
  private readonly block = randomInt(16, 255);
  private readonly keeper = new Keeper();

  constructor(private readonly options: LocalPlatformOptions) {}

  async endpoints(group: GroupRef, size: number): Promise<Endpoint[]> {
    if (size > 250) throw new Error(`a local group has at most 250 members (asked for ${size})`);
    const key = groupKey(group);
    let slot = this.groupSlots.get(key);
    if (slot === undefined) {
      const used = new Set(this.groupSlots.values());
      slot = 1;
      while (used.has(slot)) slot++;
      if (slot > 254) throw new Error('a local platform runs at most 254 groups');
      this.groupSlots.set(key, slot);
    }
    // 127.B.G.M: block, group slot, member: each member its own node address.
    const addrs = Array.from({ length: size }, (_, i) => `127.${this.block}.${slot}.${i + 1}`);
    return Promise.all(addrs.map(async (host) => ({ host, port: await freePort(host) })));
  }

  async create(group: GroupRef, template: MemberTemplate, templateHash: string): Promise<void> {
    const key = memberKey(group, template.index);
    if (this.members.has(key)) throw new Error(`${key} already exists`);
    const log = new BoundedLog(this.logPath(group, template.index), this.options.logLimit);
    log.write(`--- ${new Date().toISOString()} start: ${template.command} ${template.args.join(' ')}\n`);
    const child = spawn(template.command, template.args, {
      env: { ...process.env, ...template.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: stopped whole, and out of reach of the terminal's Ctrl-C
    });
    const pid = child.pid;
    if (pid !== undefined) this.keeper.add(pid);
    const member: LocalMember = {
      group,
      template,
      templateHash,
      child,
      log,
      ready: false,
      started: false,
      createdAt: Date.now(),
      exitedPromise: new Promise((resolve) => {
        const onExit = (reason: string) => {
          if (member.exited) return;
          member.exited = reason;
          member.ready = false;
          clearTimeout(member.probeTimer);
          if (pid !== undefined) {
            signalGroup(pid, 'SIGKILL'); // whatever the member started dies with it
            this.keeper.remove(pid);
          }
          log.write(`--- ${new Date().toISOString()} exited: ${reason}\n`);
          resolve();
        };
        child.once('error', (err) => onExit(`failed to start: ${err.message}`));
        child.once('exit', (code, signal) => onExit(signal ? `signal ${signal}` : `exit code ${code}`));
      }),
    };
    child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    this.members.set(key, member);
    this.scheduleProbe(member, 0);
  }

  async delete(group: GroupRef, index: number): Promise<void> {
    const key = memberKey(group, index);
    const member = this.members.get(key);
    if (!member) return;
    clearTimeout(member.probeTimer);
    const pid = member.child.pid;
    if (!member.exited && pid !== undefined) {
      signalGroup(pid, 'SIGTERM');
      signalGroup(pid, 'SIGCONT'); // a stopped member must wake to act on SIGTERM
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
      await member.exitedPromise;
      clearTimeout(timer);
    }
    // Streams may still deliver the last output after exit; wait for them to close.
    await Promise.all(
      [member.child.stdout, member.child.stderr].map((s) =>
        s && !s.closed ? new Promise((r) => s.once('close', r)) : undefined,
      ),
    );
    await member.log.close();
    this.members.delete(key);
  }

  async observe(group: GroupRef): Promise<ObservedMember[]> {
    const prefix = `${groupKey(group)}/`;
    return [...this.members.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .map(([, m]) => ({
        index: m.template.index,
        phase: m.exited ? 'Exited' : 'Running',
        ready: m.ready,
        templateHash: m.templateHash,
        createdAt: m.createdAt,
        started: m.started,
        ...(m.exited ? { exitReason: m.exited } : {}),
        ...(m.child.pid !== undefined ? { pid: m.child.pid } : {}),
      }));
  }

  async release(group: GroupRef): Promise<void> {
    this.groupSlots.delete(groupKey(group));
  }

  logPath(group: GroupRef, index: number): string {
    return join(this.options.logDir, group.service, `replica-${group.replica}`, `member-${index}.log`);
  }

  private scheduleProbe(member: LocalMember, delay: number): void {
    member.probeTimer = setTimeout(async () => {
      if (member.exited) return;
      const ok = await probe(member.template.endpoint, member.template.readiness);
      if (member.exited) return;
      member.ready = ok;
      member.started ||= ok;
      // TCP readiness is checked once (an RPC worker serves one client at a time); HTTP keeps being checked.
      if (ok && member.template.readiness.kind === 'tcp') return;
      this.scheduleProbe(member, ok ? READY_RECHECK_MS : PROBE_INTERVAL_MS);
    }, delay);
  }
}

function groupKey(group: GroupRef): string {
  return `${group.service}/${group.replica}`;
}

function memberKey(group: GroupRef, index: number): string {
  return `${groupKey(group)}/${index}`;
}
