// The browser tier's Chromium: Debian's package (never a browser a test tool downloads). Where it
// is missing, the tier installs it when it can (root with apt, as on our machines and in CI), else
// fails with one line that says how.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Progress } from '../../src/util/progress.js';

/** TANDEM_CHROMIUM names another Chromium binary. */
export const CHROMIUM = process.env.TANDEM_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Headless on a machine without a network: the background services would otherwise open
 * connections that are refused, many at a time, and look up Google's hosts at every start.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function ensureChromium(progress: Progress): Promise<void> {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's package (sudo apt-get install chromium), or set TANDEM_CHROMIUM`,
    );
  }
  progress("installing Chromium from Debian's packages (apt-get install chromium)");
  const apt = (args: string[]) =>
    new Promise<number>((resolve) => {
      const child = spawn('apt-get', args, {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let tail = '';
      const take = (d: Buffer) => {
        for (const line of d.toString().split('\n'))
          if (/^(Get|Unpacking|Setting up)/.test(line)) progress(`apt: ${line.trim()}`);
        tail = (tail + d.toString()).slice(-2000);
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      child.on('exit', (code) => resolve(code === 0 ? 0 : (progress(tail), 1)));
      child.on('error', () => resolve(1));
    });
  const install = ['install', '-y', '--no-install-recommends', 'chromium'];
  // A fresh machine's package lists may be missing or stale: fetched once, then tried again.
  if ((await apt(install)) !== 0 && ((await apt(['update'])) !== 0 || (await apt(install)) !== 0)) {
    throw new Error("apt-get could not install Chromium: install Debian's package chromium, or set TANDEM_CHROMIUM");
  }
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium, but ${CHROMIUM} is not there`);
}
