import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Locator, Page, Route } from 'playwright-core';
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

/**
 * Starts the demo as `pnpm start` does (building the page), on an ephemeral port and a fresh database; or,
 * with `port`, starts it again on that port and the same database, without building anything.
 */
async function startDemo(port?: string): Promise<void> {
  directory ??= mkdtempSync(join(tmpdir(), 'herald-demo-page-'));
  const [command, ...args] = port === undefined ? ['pnpm', 'start'] : ['node', '--conditions=herald-source', '--import', 'tsx', 'src/main.ts'];
  demo = spawn(command as string, args, {
    cwd: demoDirectory,
    // Its own process group, so the server under pnpm and tsx stops with it.
    detached: true,
    env: { ...process.env, PORT: port ?? '0', HERALD_DATABASE: join(directory, 'herald.db'), HERALD_LOG_LEVEL: 'warn', HERALD_ADMIN_KEY: '' },
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
  for (const panel of ['ws-status', 'sse-status', 'poll-status', 'webhook-status']) {
    await page.locator(`[data-testid="${panel}"][data-state="live"]`).waitFor({ timeout: 20_000 });
  }
  expect(problems).toEqual([]);
}, 120_000);

async function stopDemo(): Promise<void> {
  if (demo?.pid !== undefined && demo.exitCode === null) {
    process.kill(-demo.pid, 'SIGTERM');
    await exited;
  }
}

/** Stops the demo and starts it again on the same port and database, as a user restarting `pnpm start` would. */
async function restartDemo(): Promise<void> {
  const previousUrl = url;
  await stopDemo();
  await startDemo(new URL(url).port);
  expect(url).toBe(previousUrl);
}

afterAll(async () => {
  await browser?.close();
  await stopDemo();
  if (directory) rmSync(directory, { recursive: true, force: true });
}, 30_000);

const logs = ['ws-log', 'sse-log', 'poll-log', 'webhook-log'];
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
  it('shows an event published through the form in the WebSocket, SSE, polling and webhook panels within 2 s', async () => {
    const { seq, clickedAt } = await publishThroughForm('order.created', { orderId: 'ord_test_1', total: 19.9, currency: 'EUR' });
    await Promise.all(logs.map((log) => item(log, seq).waitFor({ timeout: 5_000 })));
    // The page measures from just before its publish request to the event's arrival in each panel.
    for (const log of logs) {
      expect(await item(log, seq).getAttribute('data-type')).toBe('order.created');
      const latency = /^(\d+) ms$/.exec((await item(log, seq).locator('.latency').textContent()) ?? '')?.[1];
      expect(Number(latency), `${log}: ${latency} ms`).toBeLessThan(2_000);
    }
    // And from the outside, with the test's own polling on top.
    expect(Date.now() - clickedAt).toBeLessThan(5_000);
    expect(await item('webhook-log', seq).getAttribute('data-verified')).toBe('true');
  });

  it('resumes after a disconnect: the events published meanwhile arrive on reconnect, none missing, none twice', async () => {
    const resumable = ['ws', 'sse', 'poll'];
    for (const panel of resumable) await page.getByTestId(`${panel}-toggle`).click();
    for (const panel of resumable) await expect.poll(() => page.getByTestId(`${panel}-status`).getAttribute('data-state')).toBe('disconnected');

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
    for (const seq of seqs) for (const panel of resumable) expect(await item(`${panel}-log`, seq).count()).toBe(0);

    for (const panel of resumable) await page.getByTestId(`${panel}-toggle`).click();
    for (const seq of seqs) for (const panel of resumable) await item(`${panel}-log`, seq).waitFor({ timeout: 10_000 });
    for (const seq of seqs) {
      for (const panel of resumable) {
        expect(await item(`${panel}-log`, seq).count()).toBe(1);
        expect(await item(`${panel}-log`, seq).getAttribute('data-resumed')).toBe('true');
      }
    }
    for (const panel of resumable) await expect.poll(() => page.getByTestId(`${panel}-status`).getAttribute('data-state')).toBe('live');
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
    // Said under the Subscribe form, not under Publish's.
    const publishResult = await page.getByTestId('publish-result').textContent();
    await expect.poll(() => page.getByTestId('subscribe-result').textContent(), { timeout: 10_000 }).toMatch(/filter\.data\.amont/);
    expect(await page.getByTestId('publish-result').textContent()).toBe(publishResult);
    await created.getByRole('button', { name: 'delete' }).click();
    await expect.poll(() => created.count(), { timeout: 10_000 }).toBe(0);
    await page.getByTestId('subscribe-filter').fill('');
  });

  it('offers the transports the demo mounts: a panel polls, and the menu subscribes with each that needs no destination of its own', async () => {
    const session = (await (await fetch(`${url}/demo/session`)).json()) as { consumerKey: string; transports: unknown };
    const mounted = await fetch(`${url}/v1/transports`, { headers: { authorization: `Bearer ${session.consumerKey}` } });
    const { data } = (await mounted.json()) as { data: { name: string; kind: string }[] };
    expect(session.transports).toEqual(data);
    expect(data.map(({ name }) => name)).toEqual(['webhook', 'websocket', 'sse', 'poll', 'amqp', 'nats']);
    expect(await page.locator('h1').textContent()).toContain('six transports');
    // AMQP and NATS deliver to a broker the form does not ask for: the hint tells how to subscribe them.
    expect(await page.getByTestId('subscribe-transport').locator('option').allTextContents()).toEqual(['webhook', 'websocket', 'sse', 'poll']);
    expect(await page.getByTestId('queue-hint').textContent()).toContain('consumer portal');

    const rows = page.locator('[data-testid="subscriptions"] tr[data-subscription]');
    await page.getByTestId('subscribe-transport').selectOption('poll');
    await page.getByTestId('subscribe-types').fill('order.shipped');
    await page.getByTestId('subscribe-submit').click();
    await expect.poll(() => page.getByTestId('subscribe-result').textContent(), { timeout: 10_000 }).toMatch(/^subscribed: sub_\w+ \(poll\)$/);
    const created = rows.filter({ hasText: 'order.shipped' });
    await expect.poll(() => created.locator('td').nth(1).textContent(), { timeout: 10_000 }).toBe('poll');
    await created.getByRole('button', { name: 'delete' }).click();
    await expect.poll(() => created.count(), { timeout: 10_000 }).toBe(0);
    expect(await page.getByTestId('subscribe-result').textContent()).toMatch(/^deleted sub_\w+$/);
  });

  it('answers bad input to its own routes with problem+json, and no stack trace or path', async () => {
    const repository = resolve(demoDirectory, '../..');
    const post = (path: string, body: string) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const cases: [path: string, body: string, status: number, problem: string][] = [
      ['/demo/publish', '{"type": "order.created", ', 400, 'malformed-json'],
      ['/demo/publish', JSON.stringify({ type: 'order.created', data: { note: 'x'.repeat(200_000) } }), 413, 'body-too-large'],
      ['/demo/publish', '[]', 422, 'validation-failed'],
      ['/demo/inbox', 'x'.repeat(1_100_000), 413, 'body-too-large'],
    ];
    for (const [path, body, status, problem] of cases) {
      const response = await post(path, body);
      const text = await response.text();
      expect(response.status, text.slice(0, 300)).toBe(status);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(text).type).toBe(`urn:herald:problem:${problem}`);
      expect(text).not.toContain(repository);
      expect(text).not.toMatch(/\bat \S+ \(/);
    }
  });

  it('fits a phone, 360 to 430 px wide: the panels in one column, nothing wider than the screen', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await phone.goto(url);
      await phone.locator('[data-testid="subscriptions"] tr[data-subscription]').first().waitFor({ timeout: 10_000 });
      for (const width of [360, 390, 430]) {
        await phone.setViewportSize({ width, height: 844 });
        expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
        const rights = await phone.locator('button, textarea, select, input').evaluateAll((nodes) => nodes.map((node) => node.getBoundingClientRect().right));
        expect(Math.max(...rights)).toBeLessThanOrEqual(width);
        expect((await phone.getByTestId('publish-data').boundingBox())?.width).toBeGreaterThan(width * 0.75);
        const lefts = await phone.locator('.panel').evaluateAll((nodes) => nodes.map((node) => node.getBoundingClientRect().left));
        expect(new Set(lefts).size).toBe(1);
      }
    } finally {
      await phone.close();
    }
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
    await page.screenshot({ path: screenshotPath, fullPage: true });
    expect(statSync(screenshotPath).size).toBeGreaterThan(10_000);
  });

  it('renews its session when the demo starts again: the subscriptions are listed, the form works, the panels go on', async () => {
    const rows = page.locator('[data-testid="subscriptions"] tr[data-subscription]');
    const listed = () => rows.evaluateAll((nodes) => nodes.map((node) => (node as HTMLElement).dataset.subscription).sort());
    const consumerKey = async () => ((await (await fetch(`${url}/demo/session`)).json()) as { consumerKey: string }).consumerKey;
    const previousKey = await consumerKey();
    await restartDemo();

    // The demo revoked the page's key, and kept its inbox subscription at the same address: the list follows without a reload.
    const key = await consumerKey();
    expect(key).not.toBe(previousKey);
    const answer = await fetch(`${url}/v1/subscriptions`, { headers: { authorization: `Bearer ${key}` } });
    const current = ((await answer.json()) as { data: { id: string }[] }).data.map(({ id }) => id).sort();
    await expect.poll(listed, { timeout: 15_000 }).toEqual(current);
    await page.getByTestId('subscribe-transport').selectOption('websocket');
    await page.getByTestId('subscribe-types').fill('invoice.sent');
    await page.getByTestId('subscribe-submit').click();
    await expect.poll(() => page.getByTestId('subscribe-result').textContent(), { timeout: 10_000 }).toMatch(/^subscribed: sub_\w+ \(websocket\)$/);

    const { seq } = await publishThroughForm('order.created', { orderId: 'ord_after_restart', total: 1, currency: 'EUR' });
    await Promise.all(logs.map((log) => item(log, seq).waitFor({ timeout: 15_000 })));
  }, 120_000);

  /** The webhook panel's requests, oldest first: the inbox's id of each, `<start>-<n>`, and the seq of its event. */
  const webhookReceipts = () =>
    page.locator('[data-testid="webhook-log"] li[data-receipt]').evaluateAll((nodes) =>
      nodes.map((node) => ({ receipt: (node as HTMLElement).dataset.receipt ?? '', seq: Number((node as HTMLElement).dataset.seq) })).reverse(),
    );

  /** Whether the inbox ids, in the order the panel lists them, only go up: by start, then by number. */
  const inReceiptOrder = (receipts: { receipt: string }[]) =>
    receipts.every(({ receipt }, n) => {
      if (n === 0) return true;
      const [start, number] = receipt.split('-').map(Number) as [number, number];
      const [previousStart, previousNumber] = (receipts[n - 1]?.receipt ?? '').split('-').map(Number) as [number, number];
      return start > previousStart || (start === previousStart && number > previousNumber);
    });

  it('lists what the inbox received once each, in order, across a restart: the new start takes no id the page showed', async () => {
    const { seq: before } = await publishThroughForm('order.paid', { orderId: 'ord_inbox_1', amount: 5, currency: 'EUR', method: 'card' });
    await item('webhook-log', before).waitFor({ timeout: 10_000 });
    const shownBefore = await webhookReceipts();
    await restartDemo();

    const { seq: after } = await publishThroughForm('order.paid', { orderId: 'ord_inbox_2', amount: 6, currency: 'EUR', method: 'card' });
    await item('webhook-log', after).waitFor({ timeout: 15_000 });
    const shown = await webhookReceipts();
    expect(shown.slice(0, shownBefore.length)).toEqual(shownBefore);
    expect(new Set(shown.map(({ receipt }) => receipt)).size, JSON.stringify(shown)).toBe(shown.length);
    expect(inReceiptOrder(shown), JSON.stringify(shown)).toBe(true);
    expect(shown.filter(({ seq }) => seq === after)).toHaveLength(1);
  }, 120_000);

  it('shows the webhooks that landed while its inbox stream was reconnecting, once each, in the order they came', async () => {
    // The page's reconnection to the inbox stream is held until the webhooks have landed.
    const held: Route[] = [];
    const inboxStream = (address: URL) => address.pathname === '/demo/inbox/stream';
    await page.route(inboxStream, (route) => void held.push(route));
    const seqs: number[] = [];
    try {
      await restartDemo();
      await expect.poll(() => held.length, { timeout: 15_000 }).toBeGreaterThan(0);
      for (const n of [1, 2, 3]) seqs.push((await publishThroughForm('order.shipped', { orderId: `ord_landed_${n}`, carrier: 'DHL' })).seq);
      const { consumerKey } = (await (await fetch(`${url}/demo/session`)).json()) as { consumerKey: string };
      const asConsumer = async <T>(path: string) => (await (await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${consumerKey}` } })).json()) as T;
      const [inbox] = (await asConsumer<{ data: { id: string }[] }>('/v1/subscriptions?transport=webhook')).data;
      const delivered = async () => {
        const { data } = await asConsumer<{ data: { eventSeq: number; status: string }[] }>(`/v1/subscriptions/${inbox?.id}/deliveries?limit=50`);
        return seqs.every((seq) => data.some((delivery) => delivery.eventSeq === seq && delivery.status === 'delivered'));
      };
      await expect.poll(delivered, { timeout: 20_000 }).toBe(true);
      for (const seq of seqs) expect(await item('webhook-log', seq).count()).toBe(0);
    } finally {
      await page.unroute(inboxStream);
      for (const route of held) await route.continue().catch(() => {});
    }
    for (const seq of seqs) await item('webhook-log', seq).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.getByTestId('webhook-status').getAttribute('data-state')).toBe('live');
    const shown = await webhookReceipts();
    for (const seq of seqs) expect(shown.filter((receipt) => receipt.seq === seq)).toHaveLength(1);
    expect(inReceiptOrder(shown), JSON.stringify(shown)).toBe(true);
  }, 120_000);
});
