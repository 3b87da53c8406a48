// The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against a real
// `tandem up` serving two services: what a person sees, and screenshots of it in test-artifacts/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium, type Page } from 'playwright-core';
import { stringify } from 'yaml';
import { splitLayers } from '../../src/planner/llamacpp.js';
import { streamingLoad, tinySpec, until } from '../helpers.js';
import { service, up } from '../tandem-up.js';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';

const artifacts = join(fileURLToPath(import.meta.url), '../../../../test-artifacts/dashboard');
const TINY_LAYERS = 12; // tandem-tiny-llama's

test('the dashboard: services, a 2-node group split as the planner splits it, charts that move under load, an apply that rolls a group, a killed member recreating its group, a member log', async () => {
  mkdirSync(artifacts, { recursive: true });
  const u = await up();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const applied = await fetch(`${u.gateway}/api/v1/services`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([tinySpec('pair', { parallelism: { nodes: 2 } }), tinySpec('solo')]),
    });
    assert.equal(applied.status, 200, await applied.clone().text());
    const ready = async (name: string) => {
      const s = await service(u, name);
      return s?.status?.groups.length === 1 && s.status.groups.every((g) => g.phase === 'Ready') ? s : undefined;
    };
    await until(
      'both services Ready',
      120_000,
      async () => ((await ready('pair')) && (await ready('solo')) ? true : undefined),
      u.log,
    );

    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${u.gateway}/ui/`);
    const shot = (name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
    const text = async (selector: string) => (await page.locator(selector).first().textContent()) ?? '';

    // Both services, and the 2-node group's nodes with the layer ranges the planner gives them.
    await page.locator('[data-testid=service-pair] [data-testid=group-pair-0]').waitFor();
    await page.locator('[data-testid=service-solo] [data-testid=group-solo-0]').waitFor();
    assert.match(await text('[data-testid=service-pair] [data-testid=replicas]'), /replicas 1\/1 ready/);
    let from = 0;
    for (const [i, n] of splitLayers(TINY_LAYERS, 2).entries()) {
      const node = `[data-testid=node-pair-0-${i}]`;
      assert.equal(await text(`${node} .layers`), `layers ${from}–${from + n - 1}`);
      assert.match(await text(node), /weights \d+ MiB.*KV cache \d+(\.\d)? MiB/s);
      from += n;
    }
    await shot('services');

    // Under streaming load the requests chart of the service rises above 0.
    const client = new OpenAI({ baseURL: `${u.gateway}/v1`, apiKey: 'none', maxRetries: 0 });
    const load = streamingLoad(client, 'pair-model', { maxMs: 60_000, maxRequests: 300 });
    try {
      await waitForText(
        page,
        '[data-testid=service-pair] [data-testid=chart-requests] h4',
        /req (0\.0*[1-9]|[1-9])/,
        30_000,
      );
    } finally {
      const outcomes = await load.stop();
      assert.ok(outcomes.length > 0 && outcomes.every((o) => o === 'ok'), outcomes.join('; '));
    }
    await shot('under-load');

    // An invalid spec is refused with the validator's messages inline; a changed one rolls the group.
    const apply = async (doc: unknown, expected: RegExp) => {
      await page.locator('[data-testid=apply-text]').fill(stringify(doc));
      await page.locator('[data-testid=apply]').click();
      await waitForText(page, '[data-testid=apply-outcome]', expected, 10_000);
    };
    const before = (await service(u, 'pair'))!.status!;
    await apply(tinySpec('pair', { parallelism: { nodes: 2 }, replicas: -1 }), /spec\.replicas/);
    assert.equal(
      (await service(u, 'pair'))!.status!.templateHash,
      before.templateHash,
      'a refused spec changes nothing',
    );
    const kvBefore = await text('[data-testid=node-pair-0-0]');
    await apply(
      tinySpec('pair', { parallelism: { nodes: 2 }, engine: { type: 'llamacpp', args: ['--ctx-size', '512'] } }),
      /pair: rolling/,
    );
    await until('the group rolled to the new template and Ready', 120_000, async () => {
      const s = (await service(u, 'pair'))!.status!;
      const g = s.groups[0];
      return s.templateHash !== before.templateHash && g?.templateHash === s.templateHash && g.phase === 'Ready'
        ? true
        : undefined;
    });
    await page.locator('[data-testid=group-pair-0][data-phase=Ready]').waitFor();
    await until('the picture shows the new KV cache (a smaller context)', 10_000, async () =>
      (await text('[data-testid=node-pair-0-0]')) !== kvBefore ? true : undefined,
    );
    await shot('applied');

    // A worker killed: the group shows its restart and why, the events its recreation.
    const worker = (await service(u, 'pair'))!.status!.groups[0]!.members[1]!;
    process.kill(worker.pid!, 'SIGKILL');
    await waitForText(page, '[data-testid=group-pair-0] h3', /restarts 1.*last failure: worker 1 exited/s, 30_000);
    await waitForText(page, '[data-testid=events]', /pair\/0: .*recreating the whole group/, 10_000);
    await page.locator('[data-testid=group-pair-0][data-phase=Ready]').waitFor({ timeout: 60_000 });

    // A member's log, following.
    await page.locator('[data-testid=node-solo-0-0] button').click();
    await waitForText(page, '[data-testid=log]', /listening/, 10_000);
    await shot('dashboard');
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
    await u.stop();
  }
});

/** Waits until the element's text matches (the page polls the control API each second). */
async function waitForText(page: Page, selector: string, pattern: RegExp, timeout: number): Promise<void> {
  try {
    await page.waitForFunction(
      ([s, source, flags]) => new RegExp(source!, flags).test(document.querySelector(s!)?.textContent ?? ''),
      [selector, pattern.source, pattern.flags],
      { timeout },
    );
  } catch (err) {
    const seen = await page
      .locator(selector)
      .first()
      .textContent()
      .catch(() => null);
    throw new Error(`${selector} never matched ${pattern}; it shows: ${seen}`, { cause: err });
  }
}
