import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { EventMapOf } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import { sse } from '@herald/sse';
import { testEventTypes } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import express from 'express';
import { type Browser, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portal } from './portal-app.js';

const packageDirectory = resolve(import.meta.dirname, '..');
// The docs' screenshots are refreshed on request, so that a test run leaves the checkout as it found it.
const imagesDirectory = process.env.HERALD_DOCS_SCREENSHOTS === '1' ? resolve(packageDirectory, '../../docs/images') : resolve(packageDirectory, 'test-results');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const adminKey = 'admin-portal-browser-test-0123456789abcdef';

let herald: Herald<EventMapOf<typeof testEventTypes>>;
let baseUrl: string;
let receiver: Server;
let hookUrl: string;
/** What the receiver answers: 200 "thanks", or 500 "receiver down". */
let receiverFails = false;
let browser: Browser;

async function admin(method: string, path: string, body?: unknown, key = adminKey) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function openPortal(consumer: string, key = adminKey): Promise<Page> {
  const session = await admin('POST', '/v1/portal-sessions', { consumer, ttl: 600 }, key);
  expect(session.status).toBe(201);
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 }, bypassCSP: true });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(session.body.url);
  await page.getByTestId('portal-subscriptions').waitFor();
  expect(problems).toEqual([]);
  return page;
}

/** axe-core on the page as it is now (injected, which is why the pages bypass the CSP): no serious or critical violations. */
async function expectAccessible(page: Page, view: string): Promise<void> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate(async () => {
    const result = await (window as unknown as { axe: { run: (context: Document) => Promise<{ violations: { id: string; impact: string; help: string }[] }> } }).axe.run(document);
    return result.violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
  });
  expect({ view, violations }).toEqual({ view, violations: [] });
}

const screenshot = (page: Page, name: string) => page.screenshot({ path: resolve(imagesDirectory, `portal-${name}.png`), fullPage: true });

/** Clicks Refresh until `selector` shows (the deliveries view does not poll). */
async function refreshUntil(page: Page, selector: string, timeout = 30_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while ((await page.locator(selector).count()) === 0) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${selector}`);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForTimeout(250);
  }
}

beforeAll(async () => {
  await build({ root: resolve(packageDirectory, 'app'), configFile: resolve(packageDirectory, 'vite.config.ts') });
  receiver = createServer((_req, res) => {
    res.statusCode = receiverFails ? 500 : 200;
    res.end(receiverFails ? 'receiver down' : 'thanks');
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  herald = createHerald({
    database: ':memory:',
    logLevel: 'silent',
    env: {},
    adminKey,
    eventTypes: testEventTypes,
    transports: [webhook({ allowPrivate: true, pollInterval: 50 }), sse()],
  });
  const app = express();
  app.use('/portal', portal());
  app.use(herald.app);
  const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handler: app, handleSignals: false });
  baseUrl = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await herald?.close();
  await new Promise((done) => receiver?.close(done));
});

describe('the consumer portal in Chromium (issue 19)', () => {
  it('lets consumer A create a webhook, watch its deliveries fail and retry one until it is delivered', async () => {
    const page = await openPortal('alpha');
    expect(page.url()).not.toContain('token=');
    await page.getByTestId('portal-create-transport').selectOption('webhook');
    await page.getByTestId('portal-create-types').fill('order.*');
    await page.getByTestId('portal-create-url').fill(hookUrl);
    await page.getByTestId('portal-create-submit').click();
    await expect.poll(() => page.getByTestId('portal-secret').textContent()).toMatch(/^whsec_/);
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBe(1);
    await page.getByTestId('subscription-types').fill('order.*, invoice.*');
    await page.getByRole('button', { name: 'Save types' }).click();
    await expect.poll(async () => (await admin('GET', '/v1/subscriptions?consumer=alpha')).body.data[0].types).toEqual(['order.*', 'invoice.*']);
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => page.getByTestId('subscription-row').textContent()).toContain('paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => page.getByTestId('subscription-row').textContent()).toContain('active');
    await screenshot(page, 'subscriptions');
    await expectAccessible(page, 'subscriptions');

    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'alpha' })).status).toBe(202);
    await page.getByRole('button', { name: 'Deliveries', exact: true }).first().click();
    await page.getByTestId('portal-deliveries').waitFor();
    await refreshUntil(page, '[data-testid="delivery-row"][data-status="delivered"]');

    receiverFails = true;
    expect((await admin('POST', '/v1/events', { type: 'order.shipped', data: { n: 2 }, consumer: 'alpha' })).status).toBe(202);
    await refreshUntil(page, '[data-testid="delivery-attempt"][data-status="failed"]');
    const failing = page.getByTestId('delivery-row').filter({ has: page.locator('[data-testid="delivery-attempt"][data-status="failed"]') });
    await expect.poll(() => failing.textContent()).toContain('receiver down');
    expect(await failing.getAttribute('data-status')).not.toBe('delivered');
    await screenshot(page, 'deliveries');
    await expectAccessible(page, 'deliveries');

    receiverFails = false;
    await failing.getByTestId('delivery-retry').click();
    await expect.poll(() => page.locator('.error').count()).toBe(0);
    const deadline = Date.now() + 30_000;
    while ((await page.locator('[data-testid="delivery-row"][data-status="delivered"]').count()) < 2) {
      expect(Date.now()).toBeLessThan(deadline);
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.waitForTimeout(250);
    }

    // Every delivery is delivered: no attempt is made while the view and the API are compared.
    await page.getByRole('button', { name: 'Health' }).click();
    await page.getByTestId('health-endpoint').waitFor();
    const subscriptionId = await page.getByTestId('health-endpoint').getAttribute('data-id');
    const attempts = (await admin('GET', `/v1/subscriptions/${subscriptionId}/deliveries?limit=200`)).body.data.flatMap(
      (delivery: { attempts: { status: string }[] }) => delivery.attempts,
    );
    const succeeded = attempts.filter((attempt: { status: string }) => attempt.status === 'succeeded').length;
    expect(succeeded).toBeGreaterThanOrEqual(2);
    expect(succeeded).toBeLessThan(attempts.length);
    expect(await page.getByTestId('health-summary').textContent()).toContain(
      `${Math.round((succeeded / attempts.length) * 100)}% of ${attempts.length} attempts succeeded`,
    );
    await screenshot(page, 'health');
    await expectAccessible(page, 'health');

    await page.getByRole('button', { name: 'Deliveries', exact: true }).click();
    await page.getByTestId('portal-replay-after').fill('0');
    await page.getByTestId('portal-replay-submit').click();
    await expect.poll(() => page.locator('.error').count()).toBe(0);

    await page.getByRole('button', { name: 'Catalog' }).click();
    await page.getByTestId('portal-catalog').waitFor();
    expect(await page.getByTestId('portal-catalog').textContent()).toContain('order.created');
    await screenshot(page, 'catalog');
    await expectAccessible(page, 'catalog');

    await page.getByRole('button', { name: 'Live tail' }).click();
    await page.getByTestId('portal-tail').waitFor();
    await page.waitForTimeout(500);
    expect((await admin('POST', '/v1/events', { type: 'invoice.paid', data: { n: 3 }, consumer: 'alpha' })).status).toBe(202);
    await expect.poll(() => page.getByTestId('portal-tail').textContent(), { timeout: 15_000 }).toContain('invoice.paid');
    await screenshot(page, 'tail');
    await expectAccessible(page, 'tail');

    await page.setViewportSize({ width: 375, height: 740 });
    await page.getByRole('button', { name: 'Subscriptions' }).click();
    await screenshot(page, 'phone');
    await expectAccessible(page, 'phone');
    await page.close();
  }, 180_000);

  it('never shows A the subscriptions of B', async () => {
    const theirs = await admin('POST', '/v1/subscriptions', { consumer: 'beta', transport: 'webhook', types: ['invoice.*'], config: { url: hookUrl } });
    expect(theirs.status).toBe(201);
    const page = await openPortal('alpha');
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBeGreaterThan(0);
    const ids = await page.getByTestId('subscription-row').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-id')));
    expect(ids).not.toContain(theirs.body.id);
    const betaPage = await openPortal('beta');
    await expect.poll(() => betaPage.getByTestId('subscription-row').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-id')))).toEqual([theirs.body.id]);
    await page.close();
    await betaPage.close();
  }, 60_000);

  it('shows "session ended" when the admin key that opened it is revoked, or the token expired', async () => {
    const minting = await admin('POST', '/v1/keys', { role: 'admin' });
    const page = await openPortal('alpha', minting.body.key);
    expect((await admin('DELETE', `/v1/keys/${minting.body.id}`)).status).toBe(204);
    await page.getByRole('button', { name: 'Catalog' }).click();
    await page.getByRole('button', { name: 'Subscriptions' }).click();
    await page.getByTestId('portal-create-types').fill('order.*');
    await page.getByTestId('portal-create-submit').click();
    await page.getByTestId('portal-ended').waitFor();
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Session ended');
    await screenshot(page, 'session-ended');
    await expectAccessible(page, 'session-ended');
    await page.close();

    const issuer = await herald.keys.authenticate(adminKey);
    const { key } = await herald.keys.createPortalToken(issuer, 'alpha', 1);
    await new Promise((done) => setTimeout(done, 1_500));
    const expired = await browser.newPage();
    await expired.goto(`${baseUrl}/portal#token=${key}`);
    await expired.getByTestId('portal-ended').waitFor();
    expect(await expired.getByTestId('portal-ended').textContent()).toContain('Session ended');
    await expired.close();
  }, 60_000);
});
