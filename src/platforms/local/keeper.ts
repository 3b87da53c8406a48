// Tandem's side of the keeper (keeper-main.ts): starts it, tells it which member process groups
// exist, and starts a new one (told every live group) should it die while tandem runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PROGRAM = fileURLToPath(new URL('./keeper-main.js', import.meta.url));

export class Keeper {
  private readonly groups = new Set<number>();
  private child: ChildProcess;

  constructor() {
    this.child = this.spawn();
  }

  /** Registers a member's process group: it is stopped if tandem dies. */
  add(pgid: number): void {
    this.groups.add(pgid);
    this.send(`+${pgid}`);
  }

  remove(pgid: number): void {
    this.groups.delete(pgid);
    this.send(`-${pgid}`);
  }

  private send(line: string): void {
    // A pipe write completes at once (it is far below the pipe's buffer), so nothing is lost if
    // tandem is killed right after.
    this.child.stdin?.write(`${line}\n`);
  }

  private spawn(): ChildProcess {
    // Its own session: a terminal's signals reach tandem, which stops members in order.
    const child = spawn(process.execPath, [PROGRAM], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
    child.stdin?.on('error', () => {}); // reported through 'exit'
    child.once('exit', () => {
      // Replaced after a pause, so that a keeper that cannot start is not restarted in a tight loop.
      setTimeout(() => {
        this.child = this.spawn();
        for (const pgid of this.groups) this.send(`+${pgid}`);
      }, 1000).unref();
    });
    // Neither the keeper nor its pipe keeps tandem alive: tandem's exit is what the keeper waits for.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  }
}
