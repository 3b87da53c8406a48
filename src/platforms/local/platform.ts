// The embedded default's platform: every group member is a local process on its own loopback
// address (127.B.G.M: one "node" per member), its output in a size-bounded log file, its
// readiness probed as a kubelet would. Each member leads its own process group, which a keeper
// process stops should tandem die without stopping it (keeper-main.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { expandEnvRefs } from './env-refs.js';
import { join } from 'node:path';
import { randomInt, randomUUID } from 'node:crypto';
import type { Endpoint, GroupRef, GroupShape, MemberTemplate, ObservedMember, Platform } from '../../core/group.js';
import { freePort } from '../../util/net.js';
import { signalGroup } from '../../util/process.js';
import { BoundedLog } from './bounded-log.js';
import { LogSpace, type LogSpaceChange } from './log-space.js';
import { Keeper } from './keeper.js';
import { Prober } from './probe.js';
import { GroupNamespace } from './netns.js';
import { tmpdir } from 'node:os';

const PROBE_INTERVAL_MS = 100;
const READY_RECHECK_MS = 1000;
const STOP_GRACE_MS = 5000;
const LOG_CHECK_MS = 1000;
/** Every member of an isolated group has an address of its own in the namespace: one port for all. */
const ISOLATED_PORT = 8000;

interface LocalMember {
  uid: string;
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
  terminating: boolean;
  probeTimer?: NodeJS.Timeout;
  prober: Prober;
}

export interface LocalPlatformOptions {
  logDir: string;
  /** Size limit of each member's log file. */
  logLimit?: number;
  /** Told when the log directory fills up (members' output is being lost) and when it has room again. */
  onLogSpace?: (change: LogSpaceChange, freeBytes: number) => void;
}

export class LocalPlatform implements Platform {
  private readonly members = new Map<string, LocalMember>();
  private readonly groupSlots = new Map<string, number>();
  private readonly groupEndpoints = new Map<string, Endpoint[]>();
  private readonly listeners: ((service: string) => void)[] = [];
  /** Second octet shared by this platform's addresses; random so that parallel runs rarely meet. */
  private readonly block = randomInt(16, 255);
  private readonly keeper = new Keeper();
  /** Groups whose engine binds wildcard ports, each in a network namespace of its own. */
  private readonly namespaces = new Map<string, GroupNamespace>();

  constructor(private readonly options: LocalPlatformOptions) {
    // Members write their logs themselves: a look once a second keeps each under its limit, and
    // finds a full disk, which their failing writes do not tell.
    const space = new LogSpace(options.logDir, (change, free) => options.onLogSpace?.(change, free));
    setInterval(() => {
      this.members.forEach((m) => void m.log.checkSoon());
      if (this.members.size > 0) void space.look();
    }, LOG_CHECK_MS).unref();
  }

  async ensureGroup(group: GroupRef, { size, isolated }: GroupShape): Promise<Endpoint[]> {
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
    const known = this.groupEndpoints.get(key);
    // An isolated group's namespace holder or relay that died is made again (with new endpoints).
    if (known?.length === size && (!isolated || this.namespaces.get(key)?.alive())) return known;
    // 127.B.G.M: block, group slot, member: each member its own node address.
    const addrs = Array.from({ length: size }, (_, i) => `127.${this.block}.${slot}.${i + 1}`);
    const endpoints = isolated
      ? await this.isolate(group, slot, size, addrs[0]!)
      : await Promise.all(addrs.map(async (host) => ({ host, port: await freePort(host) })));
    this.groupEndpoints.set(key, endpoints);
    return endpoints;
  }

  /** A network namespace for the group: members on its loopback, the leader's API relayed out to `outside`. */
  private async isolate(group: GroupRef, slot: number, size: number, outside: string): Promise<Endpoint[]> {
    this.closeNamespace(group);
    const ns = await GroupNamespace.create();
    this.namespaces.set(groupKey(group), ns);
    const members: Endpoint[] = Array.from({ length: size }, (_, i) => ({
      host: `127.0.0.${i + 1}`,
      port: ISOLATED_PORT,
    }));
    const external = { host: outside, port: await freePort(outside) };
    await ns.expose(members[0]!, external, join(tmpdir(), `tandem-${process.pid}-${this.block}-${slot}.sock`));
    for (const pid of ns.pids) this.keeper.add(pid);
    members[0] = { ...members[0]!, external };
    return members;
  }

  async create(group: GroupRef, template: MemberTemplate, templateHash: string): Promise<void> {
    const key = memberKey(group, template.index);
    if (this.members.has(key)) return;
    const log = new BoundedLog(this.logPath(group, template.index), this.options.logLimit);
    const args = template.args.map((a) => expandEnvRefs(a, template.env));
    log.note(`--- ${new Date().toISOString()} start: ${template.command} ${args.join(' ')}\n`);
    const ns = this.namespaces.get(groupKey(group));
    const [command, argv] = ns ? ns.wrap(template.command, args) : [template.command, args];
    const child = spawn(command, argv, {
      env: { ...process.env, ...template.env },
      stdio: ['ignore', log.fd, log.fd],
      detached: true, // its own process group: stopped whole, and out of reach of the terminal's Ctrl-C
    });
    const pid = child.pid;
    if (pid !== undefined) this.keeper.add(pid);
    const member: LocalMember = {
      uid: randomUUID(),
      group,
      template,
      templateHash,
      child,
      log,
      ready: false,
      started: false,
      terminating: false,
      createdAt: Date.now(),
      prober: new Prober(template.endpoint.external ?? template.endpoint, template.readiness),
    };
    const onExit = (reason: string) => {
      if (member.exited) return;
      member.exited = reason;
      member.ready = false;
      clearTimeout(member.probeTimer);
      member.prober.close();
      if (pid !== undefined) {
        signalGroup(pid, 'SIGKILL'); // whatever the member started dies with it
        this.keeper.remove(pid);
      }
      log.note(`--- ${new Date().toISOString()} exited: ${reason}\n`);
      if (member.terminating) this.remove(key, member);
      else this.changed(group.service);
    };
    child.once('error', (err) => onExit(`failed to start: ${err.message}`));
    child.once('exit', (code, signal) => onExit(signal ? `signal ${signal}` : `exit code ${code}`));
    this.members.set(key, member);
    this.scheduleProbe(member, 0);
    this.changed(group.service); // as a pod watch would: the next pass sees it and its deadlines
  }

  async delete(group: GroupRef, index: number): Promise<void> {
    const key = memberKey(group, index);
    const member = this.members.get(key);
    if (!member || member.terminating) return;
    member.terminating = true;
    member.ready = false;
    clearTimeout(member.probeTimer);
    member.prober.close();
    const pid = member.child.pid;
    if (member.exited || pid === undefined) {
      this.remove(key, member);
      return;
    }
    signalGroup(pid, 'SIGTERM');
    signalGroup(pid, 'SIGCONT'); // a stopped member must wake to act on SIGTERM
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
    member.child.once('exit', () => clearTimeout(timer));
  }

  async observe(service: string): Promise<ObservedMember[]> {
    return [...this.members.values()]
      .filter((m) => m.group.service === service)
      .map((m) => ({
        replica: m.group.replica,
        index: m.template.index,
        uid: m.uid,
        phase: m.exited ? 'Exited' : 'Running',
        ready: m.ready,
        terminating: m.terminating,
        scheduled: true,
        templateHash: m.templateHash,
        createdAt: m.createdAt,
        started: m.started,
        ...(m.exited ? { exitReason: m.exited } : {}),
        ...(m.child.pid !== undefined ? { pid: m.child.pid } : {}),
      }));
  }

  onChange(listener: (service: string) => void): void {
    this.listeners.push(listener);
  }

  async releaseGroup(group: GroupRef): Promise<void> {
    this.groupSlots.delete(groupKey(group));
    this.groupEndpoints.delete(groupKey(group));
    this.closeNamespace(group);
  }

  private closeNamespace(group: GroupRef): void {
    const ns = this.namespaces.get(groupKey(group));
    if (!ns) return;
    ns.close();
    for (const pid of ns.pids) this.keeper.remove(pid);
    this.namespaces.delete(groupKey(group));
  }

  logPath(group: GroupRef, index: number): string {
    return join(this.options.logDir, group.service, `replica-${group.replica}`, `member-${index}.log`);
  }

  /** Forgets a deleted member once it exited. */
  private remove(key: string, member: LocalMember): void {
    member.log.close();
    if (this.members.get(key) === member) this.members.delete(key);
    this.changed(member.group.service);
  }

  private changed(service: string): void {
    for (const listener of this.listeners) listener(service);
  }

  private scheduleProbe(member: LocalMember, delay: number): void {
    member.probeTimer = setTimeout(async () => {
      if (member.exited) return;
      const ok = await member.prober.check();
      if (member.exited || member.terminating) return;
      if (member.ready !== ok) {
        member.ready = ok;
        member.started ||= ok;
        this.changed(member.group.service);
      }
      // TCP readiness is checked once (an RPC worker serves one client at a time); HTTP keeps being checked.
      if (ok && member.template.readiness.kind !== 'http') return;
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
