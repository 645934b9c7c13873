import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../../packages/testkit/src/chromium.test-support.js';

const demoDirectory = resolve(import.meta.dirname, '..');
/** The README's docs/images/demo.png is a copy of this file, taken by hand when the page changes. */
const screenshotPath = resolve(demoDirectory, 'test-results/demo-page.png');

let demo: ChildProcess;
let exited: Promise<number | null>;
let url: string;
let directory: string;
let browser: Browser;
let page: Page;

/** Starts the demo as `pnpm start` does (building the page), on an ephemeral port and a fresh database. */
async function startDemo(): Promise<void> {
  directory = mkdtempSync(join(tmpdir(), 'herald-demo-page-'));
  demo = spawn('pnpm', ['start'], {
    cwd: demoDirectory,
    // Its own process group, so the server under pnpm and tsx stops with it.
    detached: true,
    env: { ...process.env, PORT: '0', HERALD_DATABASE: join(directory, 'herald.db'), HERALD_LOG_LEVEL: 'warn', HERALD_ADMIN_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((done) => demo.once('exit', (code) => done(code)));
  let output = '';
  url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`the demo did not start:\n${output}`)), 90_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const found = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (found) {
        clearTimeout(timer);
        done(found);
      }
    };
    demo.stdout?.on('data', read);
    demo.stderr?.on('data', read);
    void exited.then((code) => fail(new Error(`the demo exited with ${code}:\n${output}`)));
  });
}

beforeAll(async () => {
  await startDemo();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1360, height: 840 } });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(url);
  for (const panel of ['ws-status', 'sse-status', 'webhook-status']) {
    await page.locator(`[data-testid="${panel}"][data-state="live"]`).waitFor({ timeout: 20_000 });
  }
  expect(problems).toEqual([]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (demo?.pid !== undefined && demo.exitCode === null) {
    process.kill(-demo.pid, 'SIGTERM');
    await exited;
  }
  if (directory) rmSync(directory, { recursive: true, force: true });
}, 30_000);

const item = (log: string, seq: number): Locator => page.locator(`[data-testid="${log}"] li[data-seq="${seq}"]`);

/** Publishes through the form; returns the seq the server gave the event and when the button was clicked. */
async function publishThroughForm(type: string, data: unknown): Promise<{ seq: number; clickedAt: number }> {
  const result = page.getByTestId('publish-result');
  const before = await result.textContent();
  await page.getByTestId('publish-type').selectOption(type);
  await page.getByTestId('publish-data').fill(JSON.stringify(data));
  const clickedAt = Date.now();
  await page.getByTestId('publish-submit').click();
  await expect.poll(() => result.textContent(), { timeout: 10_000 }).not.toBe(before);
  const text = (await result.textContent()) ?? '';
  const seq = /published #(\d+)/.exec(text)?.[1];
  if (seq === undefined) throw new Error(`the publish failed: ${text}`);
  return { seq: Number(seq), clickedAt };
}

describe('the demo page', () => {
  it('shows an event published through the form in the WebSocket, SSE and webhook panels within 2 s', async () => {
    const { seq, clickedAt } = await publishThroughForm('order.created', { orderId: 'ord_test_1', total: 19.9, currency: 'EUR' });
    await Promise.all(['ws-log', 'sse-log', 'webhook-log'].map((log) => item(log, seq).waitFor({ timeout: 5_000 })));
    // The page measures from just before its publish request to the event's arrival in each panel.
    for (const log of ['ws-log', 'sse-log', 'webhook-log']) {
      expect(await item(log, seq).getAttribute('data-type')).toBe('order.created');
      const latency = /^(\d+) ms$/.exec((await item(log, seq).locator('.latency').textContent()) ?? '')?.[1];
      expect(Number(latency), `${log}: ${latency} ms`).toBeLessThan(2_000);
    }
    // And from the outside, with the test's own polling on top.
    expect(Date.now() - clickedAt).toBeLessThan(5_000);
    expect(await item('webhook-log', seq).getAttribute('data-verified')).toBe('true');
  });

  it('resumes after a disconnect: the events published meanwhile arrive on reconnect, none missing, none twice', async () => {
    await page.getByTestId('ws-toggle').click();
    await page.getByTestId('sse-toggle').click();
    await expect.poll(() => page.getByTestId('ws-status').getAttribute('data-state')).toBe('disconnected');
    await expect.poll(() => page.getByTestId('sse-status').getAttribute('data-state')).toBe('disconnected');

    const seqs: number[] = [];
    for (const [n, type] of ['order.paid', 'order.shipped', 'invoice.sent'].entries()) {
      const data =
        type === 'order.paid'
          ? { orderId: `ord_${n}`, amount: 10 + n, currency: 'EUR', method: 'card' }
          : type === 'order.shipped'
            ? { orderId: `ord_${n}`, carrier: 'DHL' }
            : { invoiceId: `inv_${n}`, orderId: `ord_${n}`, email: 'billing@acme.test' };
      seqs.push((await publishThroughForm(type, data)).seq);
    }
    // The webhook panel was never disconnected: once it shows all three, they were delivered while the others were away.
    for (const seq of seqs) await item('webhook-log', seq).waitFor({ timeout: 10_000 });
    for (const seq of seqs) {
      expect(await item('ws-log', seq).count()).toBe(0);
      expect(await item('sse-log', seq).count()).toBe(0);
    }

    await page.getByTestId('ws-toggle').click();
    await page.getByTestId('sse-toggle').click();
    for (const seq of seqs) {
      await item('ws-log', seq).waitFor({ timeout: 10_000 });
      await item('sse-log', seq).waitFor({ timeout: 10_000 });
    }
    for (const seq of seqs) {
      expect(await item('ws-log', seq).count()).toBe(1);
      expect(await item('sse-log', seq).count()).toBe(1);
      expect(await item('ws-log', seq).getAttribute('data-resumed')).toBe('true');
    }
    await expect.poll(() => page.getByTestId('ws-status').getAttribute('data-state')).toBe('live');
    await expect.poll(() => page.getByTestId('sse-status').getAttribute('data-state')).toBe('live');
  });

  it('lists the subscriptions, creates and deletes one, and shows the webhook delivery attempts', async () => {
    const rows = page.locator('[data-testid="subscriptions"] tr[data-subscription]');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBeGreaterThan(0);
    const before = await rows.count();

    await page.getByTestId('subscribe-transport').selectOption('sse');
    await page.getByTestId('subscribe-types').fill('invoice.*');
    await page.getByTestId('subscribe-submit').click();
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(before + 1);
    const created = rows.filter({ hasText: 'invoice.*' });
    await created.getByRole('button', { name: 'delete' }).click();
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(before);

    const inbox = rows.filter({ hasText: 'webhook' }).first();
    await inbox.getByRole('button', { name: 'attempts' }).click();
    const attempts = page.locator('[data-testid="subscriptions"] tr.deliveries tr');
    await expect.poll(() => attempts.filter({ hasText: 'delivered' }).count(), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await attempts.filter({ hasText: 'delivered' }).first().textContent()).toMatch(/#\d+delivered1(200|204)/);
  });

  it('subscribes with a payload filter from the form, and says where a bad one is wrong (issue 20)', async () => {
    const rows = page.locator('[data-testid="subscriptions"] tr[data-subscription]');
    await page.getByTestId('subscribe-transport').selectOption('sse');
    await page.getByTestId('subscribe-types').fill('invoice.paid');
    await page.getByTestId('subscribe-filter').fill('{"data.amount": {"$gte": 100}}');
    await page.getByTestId('subscribe-submit').click();
    const created = rows.filter({ hasText: 'where {"data.amount":{"$gte":100}}' });
    await expect.poll(() => created.count(), { timeout: 10_000 }).toBe(1);
    await page.getByTestId('subscribe-filter').fill('{"data.amont": 1}');
    await page.getByTestId('subscribe-submit').click();
    await expect.poll(() => page.getByTestId('publish-result').textContent(), { timeout: 10_000 }).toMatch(/filter\.data\.amont/);
    await created.getByRole('button', { name: 'delete' }).click();
    await expect.poll(() => created.count(), { timeout: 10_000 }).toBe(0);
    await page.getByTestId('subscribe-filter').fill('');
  });

  it('serves /docs, which renders every operation of /openapi.json and every channel of /asyncapi.json', async () => {
    const openApi = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId: string }>> };
    const asyncApi = (await (await fetch(`${url}/asyncapi.json`)).json()) as { channels: Record<string, unknown> };
    const operationIds = Object.values(openApi.paths).flatMap((item) => Object.values(item).map((operation) => operation.operationId));
    const docs = await browser.newPage();
    try {
      await docs.goto(`${url}/docs`);
      await docs.locator('#rest details[id]').first().waitFor({ timeout: 10_000 });
      const rendered = await docs.locator('#rest details[id]').evaluateAll((nodes) => nodes.map((node) => node.id));
      expect(rendered.sort()).toEqual([...operationIds].sort());
      expect(await docs.locator('#events h3').count()).toBe(Object.keys(asyncApi.channels).length);
      expect(await docs.locator('#events').textContent()).toContain('order.created');
    } finally {
      await docs.close();
    }
  });

  it('links to the consumer portal, opened for its demo-page consumer (issue 19)', async () => {
    const portalPage = await browser.newPage();
    try {
      await portalPage.goto(url);
      await portalPage.getByRole('link', { name: 'Consumer portal' }).click();
      await portalPage.getByTestId('portal-subscriptions').waitFor({ timeout: 15_000 });
      expect(portalPage.url()).not.toContain('token=');
      await expect.poll(() => portalPage.getByTestId('subscription-row').count()).toBeGreaterThan(0);
    } finally {
      await portalPage.close();
    }
  });

  it('keeps a screenshot of the page for the README', async () => {
    await page.getByTestId('publish-burst').click();
    await expect.poll(() => page.locator('[data-testid="ws-log"] li[data-seq]').count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(14);
    await expect.poll(() => page.locator('[data-testid="webhook-log"] li[data-seq]').count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(14);
    mkdirSync(resolve(screenshotPath, '..'), { recursive: true });
    await page.screenshot({ path: screenshotPath });
    expect(statSync(screenshotPath).size).toBeGreaterThan(10_000);
  });
});
