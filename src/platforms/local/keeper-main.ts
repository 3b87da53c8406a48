// The keeper: a small process beside `tandem up` that stops every member left running when tandem
// dies, however it dies (SIGKILL included). Tandem writes "+PGID" when it starts a member (each
// member leads its own process group) and "-PGID" when the member is gone. When tandem's end of
// the pipe closes, the kernel ends this process's stdin: every group still listed gets SIGTERM,
// then SIGKILL 1 s later, and the keeper exits.
import { setTimeout as sleep } from 'node:timers/promises';
import { signalGroup } from '../../util/process.js';

const KILL_AFTER_MS = 1000;
const groups = new Set<number>();

async function stopAll(): Promise<void> {
  for (const pgid of groups) {
    signalGroup(pgid, 'SIGTERM');
    signalGroup(pgid, 'SIGCONT'); // a stopped (SIGSTOP) member must wake to act on SIGTERM
  }
  const deadline = Date.now() + KILL_AFTER_MS;
  while (Date.now() < deadline && [...groups].some((g) => signalGroup(g, 0))) await sleep(50);
  for (const pgid of groups) signalGroup(pgid, 'SIGKILL');
  process.exit(0);
}

// Only the end of stdin stops the keeper: a terminal's Ctrl-C or a stray SIGTERM must not leave the
// members unguarded while tandem is still stopping them.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});

let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  const lines = (pending + chunk).split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    const pgid = Number(line.slice(1));
    if (!Number.isInteger(pgid) || pgid <= 1) continue;
    if (line[0] === '+') groups.add(pgid);
    else if (line[0] === '-') groups.delete(pgid);
  }
});
process.stdin.on('end', () => void stopAll());
process.stdin.on('error', () => void stopAll());
