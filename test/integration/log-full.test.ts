// The log directory filling up: members write their own logs, so their failing writes tell nobody.
// `tandem up` runs in a mount namespace of its own with a small tmpfs as its log directory (the host
// is not changed), which the test fills through /proc/PID/root and empties again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { until } from '../helpers.js';
import { cli, service, specFile, up, withPrivateTmpfs } from '../tandem-up.js';

const root = process.getuid?.() === 0;

/** Writes `path` until the disk refuses: a full filesystem, whatever its size. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    closeSync(fd);
  }
}

test(
  'the log directory full: requests are still answered, an event says so, and another when there is room; the members log again',
  { skip: !root && 'needs root for a mount namespace with a tmpfs (unshare -m)' },
  async () => {
    const u = await up([], (state, command) => withPrivateTmpfs(join(state, 'logs'), '8m', command));
    try {
      const applied = cli(u, ['apply', specFile(u, 'logged', {})]);
      assert.equal(applied.status, 0, applied.stderr);
      await until('the group Ready', 120_000, async () =>
        (await service(u, 'logged'))?.status?.groups.some((g) => g.phase === 'Ready') ? true : undefined,
      );
      // The log directory as tandem up and its members see it: the tmpfs in their namespace.
      const logs = `/proc/${u.child.pid}/root${join(u.state, 'logs')}`;
      const memberLog = join(logs, 'logged', 'replica-0', 'member-0.log');
      const events = async () =>
        (
          (await (await fetch(`${u.gateway}/api/v1/events`)).json()) as {
            items: { reason: string; service: string; warning?: boolean; message: string }[];
          }
        ).items;
      const client = new OpenAI({ baseURL: `${u.gateway}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
      const request = { model: 'logged-model', prompt: 'Once upon a time', max_tokens: 16, temperature: 0 };
      const before = (await client.completions.create(request)).choices[0]!.text;

      fill(join(logs, 'filler'));
      const full = await until('a LogsFull event', 30_000, async () =>
        (await events()).find((e) => e.reason === 'LogsFull'),
      );
      assert.equal(full.service, 'logged');
      assert.equal(full.warning, true);
      assert.match(full.message, /is full .*serving goes on/);
      // The members' writes fail now; they serve on.
      for (let i = 0; i < 3; i++) assert.equal((await client.completions.create(request)).choices[0]!.text, before);
      const stream = await client.completions.create({ ...request, stream: true });
      let streamed = '';
      for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? '';
      assert.equal(streamed, before);

      unlinkSync(join(logs, 'filler'));
      const room = await until('a LogsHaveRoom event', 30_000, async () =>
        (await events()).find((e) => e.reason === 'LogsHaveRoom'),
      );
      assert.match(room.message, /has room again/);
      const size = statSync(memberLog).size;
      await client.completions.create(request);
      await until('the leader writing its log again', 10_000, async () =>
        statSync(memberLog).size > size ? true : undefined,
      );
    } finally {
      await u.stop();
    }
  },
);
