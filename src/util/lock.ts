// Cross-process exclusion for cache builds: parallel test files and several `tandem up`
// must not build the same artifact at once.
import { mkdirSync } from 'node:fs';
import lockfile from 'proper-lockfile';

export async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true });
  // A build takes minutes: wait (bounded) rather than fail; a holder that died goes stale in 30 s.
  const release = await lockfile.lock(dir, {
    lockfilePath: `${dir}/.lock`,
    stale: 30_000,
    retries: { retries: 1200, minTimeout: 1000, maxTimeout: 1000 },
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}
