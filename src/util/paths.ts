// Where Tandem keeps what it builds (engine binaries, models) and what it runs (logs, state).
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Built artifacts, reused across runs and checkouts: TANDEM_CACHE or ~/.cache/tandem. */
export function cacheDir(): string {
  return process.env.TANDEM_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tandem');
}

/** Run-time state of `tandem up` (logs, status): TANDEM_STATE or ./.tandem. */
export function stateDir(): string {
  return process.env.TANDEM_STATE || join(process.cwd(), '.tandem');
}
