// Runs a long command (a build, an install) with its output appended to a log file, each line
// passed on for progress; on failure the error carries the log's tail.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Runs a build command, its output appended to `log`; on failure the error carries the log's tail. */
export function runLogged(
  cmd: string,
  args: string[],
  log: string,
  onLine: (line: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  mkdirSync(join(log, '..'), { recursive: true });
  const out = createWriteStream(log, { flags: 'a' });
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let partial = '';
    const onData = (chunk: Buffer) => {
      out.write(chunk);
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      lines.forEach(onLine);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(new Error(`${cmd}: ${err.message} (is it installed?)`)));
    child.on('close', (code) => {
      out.end(() => {
        if (code === 0) return resolve();
        const tail = readFileSync(log, 'utf8').split('\n').slice(-40).join('\n');
        reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}):\n${tail}`));
      });
    });
  });
}
