import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { createHerald } from '@herald/server';
import { sse } from '@herald/sse';
import { testEventTypes } from '@herald/testkit';
import express from 'express';
import type { Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import {
  admin,
  adminKey,
  appDirectory,
  baseUrl,
  browser,
  elementBundle,
  expectAccessible,
  expectTarget,
  herald,
  hookUrl,
  openElementPage,
  openEmbedded,
  openPortal,
  pageWidth,
  received,
  refreshUntil,
  screenshot,
  serveElementPage,
  sseTransport,
  streamAnswerTimes,
  testServer,
  usePortalBrowser,
  wordsOf,
} from './portal-browser.test-support.js';
import { portal } from './portal-app.js';

usePortalBrowser();

describe('the consumer portal in Chromium (issue 19): subscriptions and layout', () => {
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
    await page.getByRole('button', { name: 'Save changes' }).click();
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

    testServer.receiverFails = true;
    expect((await admin('POST', '/v1/events', { type: 'order.shipped', data: { n: 2 }, consumer: 'alpha' })).status).toBe(202);
    await refreshUntil(page, '[data-testid="delivery-attempt"][data-status="failed"]');
    const failing = page.getByTestId('delivery-row').filter({ has: page.locator('[data-testid="delivery-attempt"][data-status="failed"]') });
    await expect.poll(() => failing.textContent()).toContain('receiver down');
    expect(await failing.getAttribute('data-status')).not.toBe('delivered');
    await screenshot(page, 'deliveries');
    await expectAccessible(page, 'deliveries');

    testServer.receiverFails = false;
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
    // Opened again, the tail starts afresh: no list of before above what it missed while the view was left.
    await page.getByRole('button', { name: 'Catalog' }).click();
    expect((await admin('POST', '/v1/events', { type: 'invoice.paid', data: { n: 4 }, consumer: 'alpha' })).status).toBe(202);
    await page.getByRole('button', { name: 'Live tail' }).click();
    await page.waitForTimeout(500);
    const latest = await admin('POST', '/v1/events', { type: 'invoice.paid', data: { n: 5 }, consumer: 'alpha' });
    await expect.poll(() => page.locator('ol.tail > li > code:first-child').allTextContents()).toEqual([`#${latest.body.seq}`]);

    await page.setViewportSize({ width: 375, height: 740 });
    await page.getByRole('button', { name: 'Subscriptions' }).click();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await screenshot(page, 'phone');
    await expectAccessible(page, 'phone');
    await page.close();
  }, 180_000);

  it('creates a subscription with a filter: an event that does not match it is not delivered, one that does is; a bad filter shows why by its field', async () => {
    const page = await openPortal('gamma');
    const filterError = page.getByTestId('portal-create-filter-error');
    await page.getByTestId('portal-create-transport').selectOption('webhook');
    await page.getByTestId('portal-create-types').fill('order.created');
    await page.getByTestId('portal-create-url').fill(`${hookUrl}/gamma`);
    await page.getByTestId('portal-create-filter').fill('{"data.n": ');
    await page.getByTestId('portal-create-submit').click();
    await expect.poll(() => filterError.textContent()).toContain('The filter is not JSON');

    await page.getByTestId('portal-create-filter').fill('{"data.n": {"$near": 10}}');
    await page.getByTestId('portal-create-submit').click();
    await expect.poll(() => filterError.textContent()).toMatch(/filter\.data\.n/);
    const field = page.getByTestId('portal-create-filter');
    expect(await field.getAttribute('aria-invalid')).toBe('true');
    expect((await field.getAttribute('aria-describedby'))?.split(' ')).toContain(await filterError.getAttribute('id'));
    expect(await filterError.getAttribute('role')).toBe('alert');
    expect(await page.locator('p.error').count()).toBe(0);
    await expect
      .poll(() => page.evaluate(() => document.querySelector('herald-portal')?.shadowRoot?.activeElement?.getAttribute('data-testid')))
      .toBe('portal-create-filter');
    expect((await admin('GET', '/v1/subscriptions?consumer=gamma')).body.data).toEqual([]);
    await screenshot(page, 'filter-refused');
    await expectAccessible(page, 'filter refused');
    // Once the field is edited, the reason for what it held before goes.
    await field.fill('');
    await expect.poll(() => filterError.count()).toBe(0);
    expect(await field.getAttribute('aria-invalid')).toBe('false');
    expect((await field.getAttribute('aria-describedby'))?.split(' ')).toEqual(['filter-help-create']);

    await field.fill('{"data.n": {"$gte": 10}}');
    await page.getByTestId('portal-create-submit').click();
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBe(1);
    expect(await filterError.count()).toBe(0);
    const [stored] = (await admin('GET', '/v1/subscriptions?consumer=gamma')).body.data;
    expect(stored.filter).toEqual({ 'data.n': { $gte: 10 } });
    expect(await page.getByTestId('subscription-filter').inputValue()).toBe('{"data.n":{"$gte":10}}');

    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'gamma' })).status).toBe(202);
    const matching = await admin('POST', '/v1/events', { type: 'order.created', data: { n: 20 }, consumer: 'gamma' });
    expect(matching.status).toBe(202);
    // A delivery may be sent before it is stored (held by its fan-out): wait for the stored one.
    const delivered = async () =>
      (await admin('GET', `/v1/subscriptions/${stored.id}/deliveries?status=delivered`)).body.data.map((delivery: { eventSeq: number }) => delivery.eventSeq);
    await expect.poll(delivered, { timeout: 15_000 }).toEqual([matching.body.seq]);
    // Deliveries are made in the order of the log: with the later event's made, the earlier one was passed over.
    await new Promise((done) => setTimeout(done, 500));
    expect((await admin('GET', `/v1/subscriptions/${stored.id}/deliveries`)).body.data.map((delivery: { eventSeq: number }) => delivery.eventSeq)).toEqual([
      matching.body.seq,
    ]);
    expect((received.get('/hook/gamma') ?? []).map((body) => JSON.parse(body).data)).toEqual([{ n: 20 }]);
    await page.getByTestId('subscription-row').getByRole('button', { name: 'Deliveries' }).click();
    await refreshUntil(page, '[data-testid="delivery-row"][data-status="delivered"]');
    expect(await page.getByTestId('delivery-row').count()).toBe(1);

    // The edit form: a refused filter is shown by its row, and an empty one removes it.
    await page.getByRole('button', { name: 'Subscriptions' }).click();
    const row = page.getByTestId('subscription-row');
    await row.getByTestId('subscription-filter').fill('{"data.n": {"$gte": "ten", "$lt": []}}');
    await row.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(() => row.getByTestId('subscription-filter-error').textContent()).toMatch(/filter\.data\.n/);
    expect(await row.getByTestId('subscription-filter').getAttribute('aria-invalid')).toBe('true');
    await expectAccessible(page, 'filter refused in the edit form');
    expect((await admin('GET', `/v1/subscriptions/${stored.id}`)).body.filter).toEqual({ 'data.n': { $gte: 10 } });
    await row.getByTestId('subscription-filter').press('End');
    await row.getByTestId('subscription-filter').press('Backspace');
    await expect.poll(() => row.getByTestId('subscription-filter-error').count()).toBe(0);
    expect(await row.getByTestId('subscription-filter').getAttribute('aria-invalid')).toBe('false');
    await row.getByTestId('subscription-filter').fill('');
    await row.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(async () => (await admin('GET', `/v1/subscriptions/${stored.id}`)).body.filter ?? null).toBeNull();
    await expect.poll(() => row.getByTestId('subscription-filter-error').count()).toBe(0);
    await page.close();
  }, 90_000);

  it('offers the transports the server mounts unless its transports attribute names them, and only push subscriptions have deliveries', async () => {
    const page = await openPortal('delta');
    const transport = page.getByTestId('portal-create-transport');
    expect(await transport.locator('option').allTextContents()).toEqual((await admin('GET', '/v1/transports')).body.data.map((t: { name: string }) => t.name));
    expect(await transport.locator('option').allTextContents()).toEqual(['webhook', 'sse']);
    await transport.selectOption('sse');
    expect(await page.getByTestId('portal-create-url').count()).toBe(0);
    await page.getByTestId('portal-create-types').fill('invoice.*');
    // Another transport than a webhook takes its config as JSON; the server's reasons are shown.
    await page.getByTestId('portal-create-config').fill('{"url": "https://example.com"}');
    await page.getByTestId('portal-create-submit').click();
    await expect.poll(() => page.locator('p.error').textContent()).toMatch(/The config is not valid for transport "sse": config\S*/);
    expect((await admin('GET', '/v1/subscriptions?consumer=delta')).body.data).toEqual([]);
    await page.getByTestId('portal-create-config').fill('');
    await page.getByTestId('portal-create-submit').click();
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBe(1);
    const streamRow = page.getByTestId('subscription-row');
    expect(await streamRow.locator('td[data-label="Transport"]').textContent()).toBe('sse');
    expect(await streamRow.getByTestId('portal-test-send').count()).toBe(0);
    expect(await streamRow.getByRole('button', { name: 'Deliveries' }).count()).toBe(0);
    await expectAccessible(page, 'subscriptions with a stream subscription');

    await page.evaluate(() => document.querySelector('herald-portal')?.setAttribute('transports', 'webhook'));
    await expect.poll(() => transport.locator('option').allTextContents()).toEqual(['webhook']);
    expect(await page.getByTestId('portal-create-url').count()).toBe(1);

    // The health view asks for the deliveries of the push subscription alone: a 404 for the stream one's would be in the console.
    await page.getByTestId('portal-create-types').fill('order.*');
    await page.getByTestId('portal-create-url').fill(`${hookUrl}/delta`);
    await page.getByTestId('portal-create-submit').click();
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBe(2);
    const logged: string[] = [];
    page.on('console', (message) => logged.push(message.text()));
    await page.getByRole('button', { name: 'Health' }).click();
    await page.getByTestId('health-endpoint').waitFor();
    expect(await page.getByTestId('health-endpoint').count()).toBe(1);
    expect(logged).toEqual([]);
    // Nothing was published for delta: its endpoint had no attempt, and the view says so in words.
    expect(await page.getByTestId('health-summary').textContent()).toBe('No delivery attempts in the last 24 hours.');
    expect(await page.getByTestId('health-endpoint').locator('.legend').textContent()).not.toContain('top:');
    await page.close();
  }, 60_000);

  it('labels the Health chart\'s time axis, 24 hours ago, 12 hours ago and now, in the browser\'s time zone, within a 375 px phone', async () => {
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'axis', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/axis` } });
    expect(hook.status).toBe(201);
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'axis' })).status).toBe(202);
    await expect.poll(() => (received.get('/hook/axis') ?? []).length, { timeout: 15_000 }).toBe(1);
    const session = await admin('POST', '/v1/portal-sessions', { consumer: 'axis', ttl: 600 });
    // Half an hour off UTC, so that an axis in UTC, or rounded to the hour, reads wrong; a 24-hour clock, as en-GB has it.
    const page = await browser.newPage({ viewport: { width: 375, height: 800 }, bypassCSP: true, timezoneId: 'Asia/Kolkata', locale: 'en-GB' });
    await page.goto(session.body.url);
    await page.getByTestId('portal-subscriptions').waitFor();
    const asked = Date.now();
    await page.getByRole('button', { name: 'Health' }).click();
    const axis = page.getByTestId('health-axis');
    await axis.waitFor();
    const answered = Date.now();
    const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Kolkata', weekday: 'short', hour: 'numeric', minute: '2-digit' });
    const labelsFit = async () => {
      const [chart, ...labels] = await page
        .locator('[data-testid="health-endpoint"] svg.chart, [data-testid="health-axis"] time')
        .evaluateAll((all) => all.map((element) => element.getBoundingClientRect().toJSON() as DOMRect));
      const [start, middle, end] = labels as [DOMRect, DOMRect, DOMRect];
      const chartBox = chart as DOMRect;
      // At the chart's left edge, its middle and its right edge, apart from one another.
      expect(Math.abs(start.left - chartBox.left)).toBeLessThanOrEqual(1);
      expect(Math.abs(middle.left + middle.width / 2 - (chartBox.left + chartBox.width / 2))).toBeLessThanOrEqual(2);
      expect(Math.abs(end.right - chartBox.right)).toBeLessThanOrEqual(1);
      expect(start.right).toBeLessThan(middle.left);
      expect(middle.right).toBeLessThan(end.left);
      expect(await pageWidth(page)).toBeLessThanOrEqual(page.viewportSize()?.width ?? 0);
    };
    const times = await axis.locator('time').evaluateAll((all) => all.map((time) => [time.getAttribute('datetime') ?? '', time.textContent ?? '']));
    expect(times.map(([, text]) => text)).toEqual(times.map(([at]) => local.format(new Date(at ?? ''))));
    const [start, middle, end] = times.map(([at]) => Date.parse(at ?? ''));
    expect(end).toBeGreaterThanOrEqual(asked - 1_000);
    expect(end).toBeLessThanOrEqual(answered);
    expect([end! - middle!, end! - start!]).toEqual([12 * 3_600_000, 24 * 3_600_000]);
    expect(await page.locator('svg.chart').getAttribute('aria-label')).toContain(`from ${times[0]?.[1]} to ${times[2]?.[1]}`);
    await labelsFit();
    await expectAccessible(page, 'health at 375 px, its time axis');
    await page.setViewportSize({ width: 1200, height: 800 });
    await labelsFit();
    await page.close();
  }, 60_000);

  it('runs embedded in a provider\'s dashboard (docs/portal-embedded.html), themed by its CSS custom properties, down to 375 px', async () => {
    const hook = await admin('POST', '/v1/subscriptions', {
      consumer: 'epsilon',
      transport: 'webhook',
      types: ['order.*'],
      config: { url: `${hookUrl}/epsilon` },
      filter: { 'data.n': { $gte: 100 } },
    });
    expect(hook.status).toBe(201);
    expect((await admin('POST', '/v1/subscriptions', { consumer: 'epsilon', transport: 'sse', types: ['invoice.*'] })).status).toBe(201);
    const session = await admin('POST', '/v1/portal-sessions', { consumer: 'epsilon', ttl: 600 });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${baseUrl}/embedded/?token=${session.body.token}`);
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBe(2);
    expect(problems).toEqual([]);
    expect(await page.getByRole('heading', { level: 1, name: 'Webhooks' }).count()).toBe(1);
    // A test event goes to the endpoint once, now, and leaves no delivery behind.
    const result = page.getByTestId('portal-test-result');
    testServer.receiverFails = true;
    await page.getByTestId('portal-test-send').click();
    await expect.poll(() => result.getAttribute('data-status')).toBe('failed');
    expect(await result.textContent()).toMatch(/HTTP 500[\s\S]*receiver down/);
    testServer.receiverFails = false;
    await page.getByTestId('portal-test-send').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => result.getAttribute('data-status')).toBe('succeeded');
    expect(await result.textContent()).toMatch(/Test event order\.\S+: succeeded · HTTP 200 · \d+ ms\s+thanks/);
    const tests = (received.get('/hook/epsilon') ?? []).map((body) => JSON.parse(body));
    expect(tests.map((event) => [event.seq, event.id.startsWith('evt_test_')])).toEqual([
      [0, true],
      [0, true],
    ]);
    expect((await admin('GET', `/v1/subscriptions/${hook.body.id}/deliveries`)).body.data).toEqual([]);
    expect(await page.locator('p.error').count()).toBe(0);

    // The page's --herald-accent (#6d28d9) colours the element's primary buttons.
    expect(await page.getByTestId('portal-create-submit').evaluate((button) => getComputedStyle(button).backgroundColor)).toBe('rgb(109, 40, 217)');
    await screenshot(page, 'embedded');
    await expectAccessible(page, 'embedded');

    await page.setViewportSize({ width: 375, height: 740 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await screenshot(page, 'embedded-phone');
    await expectAccessible(page, 'embedded at 375 px');
    await page.close();
  }, 60_000);

  it('fits every view in a 375 px phone, long subscription ids, URLs and answers included', async () => {
    // An unbroken path, so that only wrapping anywhere keeps the health view's heading in the screen.
    const url = `${hookUrl}/theta/${'x'.repeat(90)}`;
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'theta', transport: 'webhook', types: ['order.*'], config: { url } });
    expect(hook.status).toBe(201);
    expect((await admin('POST', '/v1/subscriptions', { consumer: 'theta', transport: 'sse', types: ['invoice.*'] })).status).toBe(201);
    testServer.receiverFails = true;
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'theta' })).status).toBe(202);
    await expect.poll(() => (received.get(new URL(url).pathname) ?? []).length, { timeout: 15_000 }).toBeGreaterThan(0);
    testServer.receiverFails = false;

    const page = await openPortal('theta');
    await page.setViewportSize({ width: 375, height: 800 });
    const views = page.getByRole('navigation', { name: 'Portal views' });
    const widths: Record<string, number> = {};
    const measure = async (view: string) => {
      widths[view] = await page.evaluate(() => document.documentElement.scrollWidth);
      await screenshot(page, `phone-${view}`);
    };

    const row = page.getByTestId('subscription-row').filter({ hasText: hook.body.id });
    await expectTarget(row, url);
    // A stream subscription has no endpoint: its consumer connects to it.
    expect(await page.getByTestId('subscription-row').filter({ hasNotText: hook.body.id }).getByTestId('subscription-target').count()).toBe(0);
    await row.getByTestId('portal-test-send').click();
    await expect.poll(() => row.getByTestId('portal-test-result').getAttribute('data-status')).toBe('succeeded');
    await page.getByTestId('portal-create-types').fill('order.*');
    await page.getByTestId('portal-create-url').fill(url);
    await page.getByTestId('portal-create-filter').fill(`{"data.${'z'.repeat(60)}": {"$near": 1}}`);
    await page.getByTestId('portal-create-submit').click();
    await page.getByTestId('portal-create-filter-error').waitFor();
    await measure('subscriptions');
    await page.getByTestId('portal-create-transport').selectOption('sse');
    await measure('subscriptions-sse');

    await row.getByRole('button', { name: 'Deliveries' }).click();
    await refreshUntil(page, '[data-testid="delivery-attempt"][data-status="failed"]');
    const picked = await page.getByTestId('portal-deliveries').getByRole('combobox', { name: 'Subscription' }).evaluate((select: HTMLSelectElement) => select.selectedOptions[0]?.textContent);
    expect(picked).toBe(`${hook.body.id} (webhook)`);
    await page.getByTestId('portal-replay-submit').click();
    await page.getByTestId('portal-replay-status').waitFor();
    await measure('deliveries');

    await views.getByRole('button', { name: 'Health' }).click();
    await page.getByTestId('health-endpoint').waitFor();
    await measure('health');
    await views.getByRole('button', { name: 'Catalog' }).click();
    await page.getByTestId('portal-catalog').locator('details').first().waitFor();
    await page.getByTestId('portal-catalog').locator('details').evaluateAll((all) => {
      for (const details of all) (details as HTMLDetailsElement).open = true;
    });
    await measure('catalog');
    await views.getByRole('button', { name: 'Live tail' }).click();
    await page.getByTestId('portal-tail').waitFor();
    await page.waitForTimeout(500);
    expect((await admin('POST', '/v1/events', { type: 'invoice.paid', data: { n: 2 }, consumer: 'theta' })).status).toBe(202);
    await expect.poll(() => page.getByTestId('portal-tail').textContent(), { timeout: 15_000 }).toContain('invoice.paid');
    await measure('tail');
    expect(Object.keys(widths)).toEqual(['subscriptions', 'subscriptions-sse', 'deliveries', 'health', 'catalog', 'tail']);
    expect(Object.entries(widths).filter(([, width]) => width > 375)).toEqual([]);
    await expectAccessible(page, 'tail at 375 px');

    // The same views on a desktop, for the eye: the fixes for the phone leave them as they were.
    await page.setViewportSize({ width: 1280, height: 800 });
    for (const [label, view] of [
      ['Subscriptions', 'subscriptions'],
      ['Deliveries', 'deliveries'],
      ['Health', 'health'],
      ['Catalog', 'catalog'],
      ['Live tail', 'tail'],
    ] as const) {
      await views.getByRole('button', { name: label }).click();
      await page.getByTestId(`portal-${view}`).waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth), view).toBeLessThanOrEqual(1280);
      await screenshot(page, `desktop-${view}`);
    }
    // The long URL, in its row and in the question asked before a delete, on a desktop and on a phone.
    await views.getByRole('button', { name: 'Subscriptions' }).click();
    await expectTarget(row, url);
    await row.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => row.getByTestId('portal-confirm').textContent()).toContain(url);
    expect(await pageWidth(page)).toBeLessThanOrEqual(1280);
    await page.setViewportSize({ width: 375, height: 800 });
    await expectTarget(row, url);
    expect(await pageWidth(page)).toBeLessThanOrEqual(375);
    await row.getByTestId('portal-confirm-cancel').click();
    expect((await admin('GET', `/v1/subscriptions/${hook.body.id}`)).status).toBe(200);
    await page.close();
  }, 90_000);

  it('keeps the page as wide as the window after a failing test event with a long answer, on a desktop and on a phone', async () => {
    // An endpoint that fails with a long answer: a line of words, and a token that has no place to break.
    const answer = `upstream order service unavailable, try again later: ${'trace-0123456789abcdef'.repeat(12)} (ECONNRESET)`;
    const failing = createServer((req, res) => {
      req.resume();
      res.statusCode = 502;
      res.end(answer);
    });
    await new Promise<void>((done) => failing.listen(0, '127.0.0.1', done));
    onTestFinished(() => new Promise<void>((done) => failing.close(() => done())));
    const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/hook/${'endpoint-'.repeat(6)}${'y'.repeat(80)}?tenant=${'t'.repeat(40)}`;
    for (const types of [['order.*'], ['order.created']]) {
      expect((await admin('POST', '/v1/subscriptions', { consumer: 'nu', transport: 'webhook', types, config: { url } })).status).toBe(201);
    }
    const page = await openPortal('nu');
    await page.setViewportSize({ width: 1280, height: 800 });
    const row = page.getByTestId('subscription-row').first();
    const idWidths = () => page.locator('td[data-label="Subscription"]').evaluateAll((cells) => cells.map((cell) => Math.round(cell.getBoundingClientRect().width)));
    const idWidthsBefore = await idWidths();
    await row.getByTestId('portal-test-send').click();
    await expect.poll(() => row.getByTestId('portal-test-result').getAttribute('data-status')).toBe('failed');
    expect(await row.getByTestId('portal-test-result').textContent()).toContain('(ECONNRESET)');
    expect(await pageWidth(page)).toBeLessThanOrEqual(1280);
    // The answer does not take the room of the other columns: the ids' stays as wide as it was.
    expect(await idWidths()).toEqual(idWidthsBefore);
    await expectTarget(row, url);
    await screenshot(page, 'test-event-failing');
    await expectAccessible(page, 'a failing test event');

    await page.setViewportSize({ width: 375, height: 800 });
    expect(await pageWidth(page)).toBeLessThanOrEqual(375);
    // Sent again at this width, and from the other row: the page stays as wide as the phone.
    await page.getByTestId('subscription-row').nth(1).getByTestId('portal-test-send').click();
    await expect.poll(() => page.locator('[data-testid="portal-test-result"][data-status="failed"]').count()).toBe(2);
    expect(await pageWidth(page)).toBeLessThanOrEqual(375);
    await expectTarget(row, url);
    await screenshot(page, 'phone-test-event-failing');
    await page.close();
  }, 60_000);

  it('fits the embedded portal\'s Deliveries view, and its other views, in a 375 px phone', async () => {
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'xi', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/xi` } });
    expect(hook.status).toBe(201);
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'xi' })).status).toBe(202);
    const page = await openEmbedded('xi', 375);
    const views = page.getByRole('navigation', { name: 'Portal views' });
    await views.getByRole('button', { name: 'Deliveries' }).click();
    await refreshUntil(page, '[data-testid="delivery-row"][data-status="delivered"]');
    const picked = await page.getByRole('combobox', { name: 'Subscription' }).evaluate((select: HTMLSelectElement) => select.selectedOptions[0]?.textContent);
    expect(picked).toBe(`${hook.body.id} (webhook)`);
    expect(await pageWidth(page)).toBeLessThanOrEqual(375);
    await screenshot(page, 'embedded-phone-deliveries');
    await expectAccessible(page, 'embedded deliveries at 375 px');
    for (const [label, view] of [
      ['Health', 'health'],
      ['Catalog', 'catalog'],
      ['Live tail', 'tail'],
      ['Subscriptions', 'subscriptions'],
    ] as const) {
      await views.getByRole('button', { name: label }).click();
      await page.getByTestId(`portal-${view}`).waitFor();
      expect(await pageWidth(page), view).toBeLessThanOrEqual(375);
      await screenshot(page, `embedded-phone-${view}`);
    }
    await page.close();
  }, 60_000);

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

  it('asks in the page before a delete or a rotation: Cancel changes nothing, the confirm button does it', async () => {
    const url = `${hookUrl}/rho`;
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'rho', transport: 'webhook', types: ['order.*'], config: { url } });
    const stream = await admin('POST', '/v1/subscriptions', { consumer: 'rho', transport: 'sse', types: ['invoice.*'] });
    expect([hook.status, stream.status]).toEqual([201, 201]);
    const page = await openPortal('rho');
    // No window.confirm: the question is in the page.
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    /** The focused element's text, and the id of its row. */
    const focused = () =>
      page.evaluate(() => {
        const active = document.querySelector('herald-portal')?.shadowRoot?.activeElement;
        return [active?.textContent?.trim(), active?.closest('tr')?.getAttribute('data-id')];
      });
    const storedStatus = async (id: string) => (await admin('GET', `/v1/subscriptions/${id}`)).status;
    const hookRow = page.getByTestId('subscription-row').filter({ hasText: hook.body.id });
    const streamRow = page.getByTestId('subscription-row').filter({ hasText: stream.body.id });

    // Delete, cancelled by its button, then by Escape: the subscription stays, as the API says.
    await hookRow.getByRole('button', { name: 'Delete' }).click();
    const question = hookRow.getByTestId('portal-confirm');
    await question.waitFor();
    expect(await wordsOf(question.locator('p'))).toBe(`Delete subscription ${hook.body.id} (${url})? It stops deliveries; its events stay in the log.`);
    expect(await focused()).toEqual(['Cancel', hook.body.id]);
    await screenshot(page, 'confirm-delete');
    await expectAccessible(page, 'a delete to confirm');
    await question.getByRole('button', { name: 'Cancel' }).click();
    expect(await question.count()).toBe(0);
    expect(await focused()).toEqual(['Delete', hook.body.id]);
    await page.keyboard.press('Enter');
    await question.waitFor();
    await page.keyboard.press('Escape');
    expect(await question.count()).toBe(0);
    await page.waitForTimeout(250);
    expect(await storedStatus(hook.body.id)).toBe(200);
    expect(await page.getByTestId('subscription-row').count()).toBe(2);

    // Rotate secret, cancelled: no new secret, the old one does not stop signing.
    await hookRow.getByRole('button', { name: 'Rotate secret' }).click();
    const rotation = hookRow.getByTestId('portal-confirm');
    expect(await wordsOf(rotation.locator('p'))).toBe(
      `Rotate the signing secret of ${hook.body.id} (${url})? A new secret signs its deliveries from now on; the current one goes on signing alongside it for a grace period, while your endpoint switches over.`,
    );
    await rotation.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForTimeout(250);
    expect(await page.getByTestId('portal-secret').count()).toBe(0);
    expect((await admin('GET', `/v1/subscriptions/${hook.body.id}`)).body.config.previousSecretExpiresAt).toBeUndefined();
    // Confirmed: a new secret, and the old one signs alongside it for the grace period.
    await hookRow.getByRole('button', { name: 'Rotate secret' }).click();
    await rotation.getByRole('button', { name: 'Yes, rotate' }).click();
    await expect.poll(() => page.getByTestId('portal-secret').textContent()).toMatch(/^whsec_/);
    expect((await admin('GET', `/v1/subscriptions/${hook.body.id}`)).body.config.previousSecretExpiresAt).toEqual(expect.any(String));
    expect(await focused()).toEqual(['Rotate secret', hook.body.id]);

    // A question asked in another row replaces the first; confirmed, the delete is done.
    await hookRow.getByRole('button', { name: 'Delete' }).click();
    await streamRow.getByRole('button', { name: 'Delete' }).click();
    expect(await page.getByTestId('portal-confirm').count()).toBe(1);
    expect(await wordsOf(streamRow.getByTestId('portal-confirm').locator('p'))).toBe(`Delete subscription ${stream.body.id}? It stops deliveries; its events stay in the log.`);
    await streamRow.getByRole('button', { name: 'Yes, delete' }).click();
    await expect.poll(() => storedStatus(stream.body.id)).toBe(404);
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBe(1);
    expect(await storedStatus(hook.body.id)).toBe(200);
    expect(await page.locator('p.error').count()).toBe(0);
    expect(dialogs).toEqual([]);
    await page.close();
  }, 60_000);

  it('says whose signing secret it shows, and drops it once a later create or rotation fails', async () => {
    const page = await openPortal('sigma');
    const card = page.getByTestId('portal-secret-card');
    const secretWords = () => wordsOf(card.locator('p').first());
    const create = async (url: string) => {
      await page.getByTestId('portal-create-transport').selectOption('webhook');
      await page.getByTestId('portal-create-types').fill('order.*');
      await page.getByTestId('portal-create-url').fill(url);
      await page.getByTestId('portal-create-submit').click();
    };
    const idOf = async (url: string) =>
      (await admin('GET', '/v1/subscriptions?consumer=sigma')).body.data.find((subscription: { config: { url?: string } }) => subscription.config.url === url)?.id as string;

    const firstUrl = `${hookUrl}/sigma-first`;
    await create(firstUrl);
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBe(1);
    const first = await idOf(firstUrl);
    expect(await secretWords()).toBe(`Signing secret of ${first} (${firstUrl}), shown only now: keep it.`);
    expect(await card.getAttribute('data-id')).toBe(first);

    // A create the server refuses: the secret of the first is not left there, to be taken for this one's.
    await create('ftp://example.com/hook');
    await page.locator('p.error').waitFor();
    expect(await card.count()).toBe(0);

    const secondUrl = `${hookUrl}/sigma-second`;
    await create(secondUrl);
    await expect.poll(() => page.getByTestId('subscription-row').count()).toBe(2);
    const second = await idOf(secondUrl);
    await expect.poll(secretWords).toBe(`Signing secret of ${second} (${secondUrl}), shown only now: keep it.`);

    // A rotation replaces it, and says until when the secret it replaces goes on signing.
    const firstRow = page.getByTestId('subscription-row').filter({ hasText: first });
    await firstRow.getByRole('button', { name: 'Rotate secret' }).click();
    await firstRow.getByRole('button', { name: 'Yes, rotate' }).click();
    await expect.poll(secretWords).toBe(`New signing secret of ${first} (${firstUrl}), shown only now: keep it.`);
    expect(await card.textContent()).toContain('The secret it replaces goes on signing alongside it until');
    await screenshot(page, 'secret-rotated');
    await expectAccessible(page, 'a rotated secret');

    // A rotation that fails (the subscription was deleted meanwhile) leaves no secret shown.
    expect((await admin('DELETE', `/v1/subscriptions/${second}`)).status).toBe(204);
    const secondRow = page.getByTestId('subscription-row').filter({ hasText: second });
    await secondRow.getByRole('button', { name: 'Rotate secret' }).click();
    await secondRow.getByRole('button', { name: 'Yes, rotate' }).click();
    await page.locator('p.error').waitFor();
    expect(await card.count()).toBe(0);
    await page.close();
  }, 60_000);

  it("lists every subscription of a consumer that holds more than a page of them, the server's cap lowered since they were made", async () => {
    const database = tempDatabase();
    const start = async (maxSubscriptions: number) => {
      const started = createHerald({ database, logLevel: 'silent', env: {}, adminKey, eventTypes: testEventTypes, transports: [sse()], maxSubscriptions });
      const app = express();
      serveElementPage(app);
      app.use(started.app);
      const { url } = await started.listen({ port: 0, host: '127.0.0.1', handler: app, handleSignals: false });
      return { started, url };
    };
    const before = await start(10);
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await admin('POST', '/v1/subscriptions', { consumer: 'nu', transport: 'sse', types: ['order.*'] }, adminKey, before.url);
      expect(created.status).toBe(201);
      made.push(created.body.id as string);
    }
    await before.started.close();
    // A page is as long as the cap: two now, for a consumer that holds five.
    const after = await start(2);
    onTestFinished(() => after.started.close());
    expect((await admin('GET', '/v1/subscriptions?consumer=nu', undefined, adminKey, after.url)).body.data).toHaveLength(2);
    const session = await admin('POST', '/v1/portal-sessions', { consumer: 'nu', ttl: 600 }, adminKey, after.url);
    expect(session.status).toBe(201);
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 }, bypassCSP: true });
    await page.goto(`${after.url}/element/`);
    await page.evaluate((token) => {
      const element = document.createElement('herald-portal');
      element.setAttribute('token', token);
      document.querySelector('main')?.append(element);
    }, session.body.token as string);
    const rows = page.getByTestId('subscription-row');
    await expect.poll(() => rows.count()).toBe(5);
    expect(await rows.evaluateAll((shown) => shown.map((row) => row.getAttribute('data-id')))).toEqual(made);
    await page.close();
  }, 30_000);
});

describe('the consumer portal in Chromium (issue 19): deliveries, replay, and a Herald that does not answer', () => {
  it('says how many attempts a delivery lists, and how many of them are in its latest round, once a retry started a new one', async () => {
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'omicron', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/omicron` } });
    expect(hook.status).toBe(201);
    const first = await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'omicron' });
    const second = await admin('POST', '/v1/events', { type: 'order.created', data: { n: 2 }, consumer: 'omicron' });
    const deliveryOf = async (seq: number) =>
      (await admin('GET', `/v1/subscriptions/${hook.body.id}/deliveries`)).body.data.find((delivery: { eventSeq: number }) => delivery.eventSeq === seq);
    await expect.poll(async () => (await deliveryOf(first.body.seq))?.status, { timeout: 15_000 }).toBe('delivered');
    await expect.poll(async () => (await deliveryOf(second.body.seq))?.status, { timeout: 15_000 }).toBe('delivered');
    // Two retries by hand: three rounds of one attempt each, every attempt kept.
    for (let round = 2; round <= 3; round++) {
      expect((await admin('POST', `/v1/deliveries/${(await deliveryOf(first.body.seq)).id}/retry`)).status).toBe(202);
      await expect
        .poll(async () => {
          const delivery = await deliveryOf(first.body.seq);
          return [delivery.status, delivery.attempts.length];
        }, { timeout: 15_000 })
        .toEqual(['delivered', round]);
    }
    expect((await deliveryOf(first.body.seq)).attemptCount).toBe(1);

    const page = await openPortal('omicron');
    await page.getByRole('button', { name: 'Deliveries', exact: true }).first().click();
    await refreshUntil(page, '[data-testid="delivery-row"][data-status="delivered"]');
    const retried = page.getByTestId('delivery-row').filter({ hasText: `Event #${first.body.seq}` });
    const once = page.getByTestId('delivery-row').filter({ hasText: `Event #${second.body.seq}` });
    await expect.poll(() => retried.getByTestId('delivery-attempt').count()).toBe(3);
    expect((await retried.locator('p').first().textContent())?.replace(/\s+/g, ' ').trim()).toBe(
      `Event #${first.body.seq} · delivered · 3 attempts listed, 1 in its latest round Retry`,
    );
    expect((await once.locator('p').first().textContent())?.replace(/\s+/g, ' ').trim()).toBe(`Event #${second.body.seq} · delivered · 1 attempt Retry`);
    await screenshot(page, 'deliveries-rounds');
    await page.close();
  }, 60_000);

  it('says what to check when Herald does not answer the page: on another origin without CORS, or not at all', async () => {
    const session = await admin('POST', '/v1/portal-sessions', { consumer: 'pi', ttl: 600 });
    // A provider's page on another origin (another port) than Herald, which answers no CORS; and a path of its own where nothing answers.
    const pageOf = (base: string) =>
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Another origin</title></head><body><main><herald-portal base-url="${base}" token="${session.body.token}"></herald-portal></main><script type="module" src="/herald-portal.js"></script></body></html>`;
    const other = express();
    other.get('/cors', (_req, res) => res.type('html').send(pageOf(baseUrl)));
    other.get('/down', (_req, res) => res.type('html').send(pageOf('/nothing-here')));
    other.get('/herald-portal.js', (_req, res) => res.type('text/javascript').send(elementBundle));
    other.use('/nothing-here', (req) => req.socket.destroy());
    const server = createServer(other);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    onTestFinished(() => new Promise<void>((done) => server.close(() => done())));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${origin}/cors`);
    const error = page.locator('p.error');
    await error.waitFor();
    const said = await error.textContent();
    expect(said).toContain(`Herald did not answer at ${baseUrl}`);
    expect(said).toContain('CORS');
    expect(said).toContain(origin);
    expect(said).not.toMatch(/^Failed to fetch$/);
    // No create form without a transport to offer, and no hint about the transport of none.
    expect(await page.getByTestId('portal-subscriptions').textContent()).not.toMatch(/What the\s+transport/);
    expect(await page.getByTestId('portal-create-transport').count()).toBe(0);
    expect(await page.getByTestId('portal-create-unavailable').textContent()).toContain('could not load');
    await screenshot(page, 'cross-origin-no-cors');
    await expectAccessible(page, 'another origin without CORS');

    await page.goto(`${origin}/down`);
    await error.waitFor();
    const down = await error.textContent();
    expect(down).toContain(`Herald did not answer at ${origin}/nothing-here`);
    expect(down).not.toContain('CORS');
    await page.close();
  }, 60_000);

  it('says what stands in front of Herald answered when it is not JSON, a proxy\'s error page or sign-in page or a web page, on a view and in the live tail', async () => {
    const errorPage = '<!doctype html><html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr><p>nginx</p></body></html>';
    const signInPage = '<!doctype html><html><head><title>Sign in</title></head><body><form>Sign in to continue</form></body></html>';
    let answer: { status: number; page: string; holdStreams?: boolean } = { status: 502, page: errorPage };
    /** How many requests of the live tail's stream the gateway holds unanswered now, as a slow proxy does. */
    let heldStreams = 0;
    const other = express();
    other.get('/page', (_req, res) =>
      res
        .type('html')
        .send('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Behind a proxy</title></head><body><main><herald-portal base-url="/gateway" token="hp_behind_a_proxy"></herald-portal></main><script type="module" src="/herald-portal.js"></script></body></html>'),
    );
    other.get('/herald-portal.js', (_req, res) => res.type('text/javascript').send(elementBundle));
    other.use('/gateway', (req, res) => {
      if (!answer.holdStreams || req.path !== '/v1/stream') return res.status(answer.status).type('html').send(answer.page);
      heldStreams += 1;
      res.on('close', () => (heldStreams -= 1));
    });
    const server = createServer(other);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    onTestFinished(() => {
      server.closeAllConnections();
      return new Promise<void>((done) => server.close(() => done()));
    });
    const gateway = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gateway`;

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    // How many requests of the stream the page has made that got no answer yet, and the most at once.
    await page.addInitScript(() => {
      const tries = { waiting: 0, most: 0 };
      (window as unknown as { streamTries: typeof tries }).streamTries = tries;
      const fetchOf = window.fetch.bind(window);
      window.fetch = (input, init) => {
        const answered = fetchOf(input, init);
        if (String(input).includes('/v1/stream')) {
          tries.most = Math.max(tries.most, ++tries.waiting);
          answered.then(
            () => tries.waiting--,
            () => tries.waiting--,
          );
        }
        return answered;
      };
    });
    await page.goto(gateway.replace(/gateway$/, 'page'));
    const error = page.locator('p.error');
    await error.waitFor();
    expect(await error.textContent()).toBe(`Herald at ${gateway} answered HTTP 502 (not JSON). Check that it is running, and that what stands in front of it (a proxy) reaches it.`);
    expect(await page.getByTestId('portal-try-again').count()).toBe(1);
    await screenshot(page, 'not-json');
    await expectAccessible(page, 'a proxy\'s error page');

    const problem = page.getByTestId('portal-tail-problem');
    // Every reason the live tail gives, however briefly.
    await page.evaluate(() => {
      const root = document.querySelector('herald-portal')?.shadowRoot as ShadowRoot;
      const said = window as unknown as { tailProblems: Set<string> };
      said.tailProblems = new Set();
      new MutationObserver(() => {
        const shown = root.querySelector('[data-testid="portal-tail-problem"] .problem')?.textContent;
        if (shown) said.tailProblems.add(shown);
      }).observe(root, { childList: true, characterData: true, subtree: true });
    });
    await page.getByRole('button', { name: 'Live tail' }).click();
    await problem.waitFor({ timeout: 10_000 });
    const refused = `Herald at ${gateway} answered HTTP 502 instead of the live tail's stream. Check that it is running, and that what stands in front of it (a proxy) reaches it.`;
    expect(await problem.textContent()).toContain(refused);

    // A try that gets no answer (a slow proxy holds it) does not wait for its request-timeout (15 s) on Try again: it is
    // dropped, and a fresh one made at once, never two side by side; the one dropped is no failure to tell of.
    answer = { ...answer, holdStreams: true };
    await problem.getByRole('button', { name: 'Try again' }).click();
    await expect.poll(() => heldStreams).toBe(1);
    // A web page where the API should be (a proxy's sign-in page, a wrong base-url): answered 200, still not what was asked.
    answer = { status: 200, page: signInPage };
    await problem.getByRole('button', { name: 'Try again' }).click();
    const notAStream = `Herald at ${gateway} answered HTTP 200 (text/html; charset=utf-8) instead of the live tail's stream (text/event-stream). Check that the portal's base-url is the address of Herald's API, and that what stands in front of it (a proxy) passes the stream on.`;
    await expect.poll(() => problem.textContent(), { timeout: 5_000 }).toContain(notAStream);
    await expect.poll(() => heldStreams).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { streamTries: { most: number } }).streamTries.most)).toBe(1);
    expect(await page.evaluate(() => [...(window as unknown as { tailProblems: Set<string> }).tailProblems])).toEqual([refused, notAStream]);
    expect(await page.getByTestId('portal-tail-status').textContent()).toBe('Reconnecting…');
    await page.getByRole('button', { name: 'Subscriptions' }).click();
    await expect
      .poll(() => error.textContent())
      .toBe(`Herald at ${gateway} answered HTTP 200 (not JSON). Check that the portal's base-url is the address of Herald's API, not of a web page.`);

    // A proxy in front of Herald that signs users in answers 401 with its own page: that is what the view says, on every
    // view and in the live tail, not that the session ended; Try again asks again.
    answer = { status: 401, page: signInPage };
    const signInAsked = `Herald at ${gateway} answered HTTP 401 (not JSON). Check that what stands in front of it (a proxy that signs users in) lets the portal's requests through to Herald, with their Authorization header.`;
    const saidOrEnded = page.locator('p.error, [data-testid="portal-no-session"], [data-testid="portal-ended"]').first();
    await page.getByTestId('portal-try-again').click();
    await expect.poll(() => wordsOf(saidOrEnded)).toBe(signInAsked);
    expect(await page.getByTestId('portal-try-again').count()).toBe(1);
    await screenshot(page, 'proxy-sign-in');
    await page.getByRole('button', { name: 'Live tail' }).click();
    await expect.poll(() => page.getByTestId('portal-tail-status').textContent()).toBe('Not connected.');
    expect(await wordsOf(saidOrEnded)).toBe(signInAsked);
    expect(await page.locator('herald-portal').evaluate((element) => element.shadowRoot?.textContent ?? '')).not.toMatch(/SyntaxError|Unexpected token|JSON\.parse/);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('replays every event since a date and time entered in the browser\'s time zone', async () => {
    const subscription = await admin('POST', '/v1/subscriptions', { consumer: 'zeta', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/zeta` } });
    expect(subscription.status).toBe(201);
    const numbers = () => (received.get('/hook/zeta') ?? []).map((body) => JSON.parse(body).data.n);
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'zeta' })).status).toBe(202);
    await expect.poll(numbers, { timeout: 15_000 }).toEqual([1]);
    // The field takes whole seconds: the second after event 1 was published, and before event 2 is.
    await new Promise((done) => setTimeout(done, 1_100));
    const since = Math.floor(Date.now() / 1000) * 1000;
    await new Promise((done) => setTimeout(done, 100));
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 2 }, consumer: 'zeta' })).status).toBe(202);
    await expect.poll(numbers, { timeout: 15_000 }).toEqual([1, 2]);

    // Half an hour off UTC, so that a time taken as UTC, or rounded to the hour, replays the wrong events.
    const page = await openPortal('zeta', adminKey, 'Asia/Kolkata');
    expect(await page.evaluate(() => new Date().getTimezoneOffset())).toBe(-330);
    await page.getByRole('button', { name: 'Deliveries', exact: true }).first().click();
    await refreshUntil(page, '[data-testid="delivery-row"][data-status="delivered"]');
    const local = await page.evaluate((ms) => {
      const at = new Date(ms);
      const two = (n: number) => String(n).padStart(2, '0');
      return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
    }, since);
    await page.getByTestId('portal-replay-since').fill(local);
    await page.getByTestId('portal-replay-since-submit').click();
    await expect.poll(numbers, { timeout: 15_000 }).toEqual([1, 2, 2]);
    expect(await page.locator('p.error').count()).toBe(0);
    await expect.poll(() => page.getByTestId('portal-replay-status').textContent()).toMatch(/Last replay completed.*1 delivery made/s);
    await page.waitForTimeout(500);
    expect(numbers()).toEqual([1, 2, 2]);
    await expectAccessible(page, 'deliveries after a replay since');
    await page.close();
  }, 60_000);

  it('shows a running replay as it goes, and cancels it', async () => {
    // An endpoint that takes every request and never answers: the replay waits after its first two batches of 500.
    const hanging = createServer(() => {});
    await new Promise<void>((done) => hanging.listen(0, '127.0.0.1', done));
    try {
      for (let n = 0; n < 1_200; n += 200) {
        await herald.bus.publishMany(Array.from({ length: 200 }, (_, i) => ({ type: 'order.created', data: { n: n + i }, consumer: 'eta' })) as never);
      }
      // Made after the events, so that only the replay sends them.
      const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hang`;
      expect((await admin('POST', '/v1/subscriptions', { consumer: 'eta', transport: 'webhook', types: ['order.*'], config: { url } })).status).toBe(201);
      const page = await openPortal('eta');
      await page.getByRole('button', { name: 'Deliveries', exact: true }).first().click();
      await page.getByTestId('portal-replay-after').fill('0');
      await page.getByTestId('portal-replay-submit').click();
      const status = page.getByTestId('portal-replay-status');
      await expect.poll(() => status.getAttribute('data-status')).toBe('running');
      // Followed while it runs, without a click on Refresh.
      await expect.poll(() => status.textContent(), { timeout: 15_000 }).toContain('1,000 deliveries made');
      expect(await page.getByTestId('delivery-row').count()).toBe(20);
      await screenshot(page, 'replay-running');
      await expectAccessible(page, 'a running replay');
      // Older pages stay while it runs: the next looks read the replay alone, not the first page again.
      await page.getByRole('button', { name: 'Older', exact: true }).click();
      await expect.poll(() => page.getByTestId('delivery-row').count()).toBe(40);
      const replayLook = () => page.waitForResponse((response) => response.request().method() === 'GET' && new URL(response.url()).pathname.endsWith('/replay'));
      await replayLook();
      await replayLook();
      expect(await page.getByTestId('delivery-row').count()).toBe(40);
      expect(await status.getAttribute('data-status')).toBe('running');

      await page.getByTestId('portal-replay-cancel').click();
      await expect.poll(() => status.getAttribute('data-status')).toBe('cancelled');
      expect(await status.textContent()).toMatch(/Last replay cancelled.*1,000 deliveries made.*cancelled by request/s);
      expect(await page.getByTestId('portal-replay-cancel').count()).toBe(0);
      expect(await page.locator('p.error').count()).toBe(0);
      await screenshot(page, 'replay-cancelled');
      await page.close();
    } finally {
      hanging.closeAllConnections();
      await new Promise((done) => hanging.close(done));
    }
  }, 60_000);

  it('shows an attempt that got no HTTP answer without an HTTP status', async () => {
    // Nothing listens on port 1: the connection is refused, and no HTTP status comes back.
    expect((await admin('POST', '/v1/subscriptions', { consumer: 'kappa', transport: 'webhook', types: ['order.*'], config: { url: 'http://127.0.0.1:1/hook' } })).status).toBe(201);
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'kappa' })).status).toBe(202);
    const page = await openPortal('kappa');
    await page.getByRole('button', { name: 'Deliveries', exact: true }).first().click();
    const attempt = page.getByTestId('delivery-attempt').first();
    await expect.poll(() => attempt.getAttribute('data-status'), { timeout: 10_000 }).toBe('failed');
    expect(await attempt.textContent()).toMatch(/^\s*failed · \d+ ms\s+\S/);
    expect(await attempt.textContent()).not.toContain('HTTP');
    await page.close();
  });

  it('follows the deliveries a replay made until they are sent, without a click on Refresh', async () => {
    // An endpoint that answers after 3 s: the replay has made its deliveries, and ended, well before they are delivered.
    const slow = createServer((req, res) => {
      req.resume();
      setTimeout(() => res.end('late thanks'), 3_000);
    });
    await new Promise<void>((done) => slow.listen(0, '127.0.0.1', done));
    try {
      for (const n of [1, 2, 3]) expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n }, consumer: 'iota' })).status).toBe(202);
      // Made after the events, so that only the replay sends them.
      const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`;
      expect((await admin('POST', '/v1/subscriptions', { consumer: 'iota', transport: 'webhook', types: ['order.*'], config: { url } })).status).toBe(201);
      const page = await openPortal('iota');
      await page.getByRole('button', { name: 'Deliveries', exact: true }).first().click();
      await page.getByTestId('portal-deliveries').waitFor();
      await page.getByTestId('portal-replay-after').fill('0');
      await page.getByTestId('portal-replay-submit').click();
      await expect.poll(() => page.getByTestId('portal-replay-status').textContent()).toMatch(/Last replay completed.*3 deliveries made/s);
      // The replay is over, its deliveries are not: they are being sent.
      expect(await page.locator('[data-testid="delivery-row"][data-status="pending"]').count()).toBe(3);
      await screenshot(page, 'replay-sending');

      const rows = page.getByTestId('delivery-row');
      await expect.poll(() => page.locator('[data-testid="delivery-row"][data-status="delivered"]').count(), { timeout: 15_000 }).toBe(3);
      for (const row of await rows.all()) expect(await row.textContent()).toMatch(/delivered · 1 attempt\s+Retry[\s\S]*succeeded · HTTP 200[\s\S]*late thanks/);
      expect(await page.locator('p.error').count()).toBe(0);
      await screenshot(page, 'replay-settled');
      // Every delivery shown is settled: the view stops looking.
      const looks: string[] = [];
      page.on('request', (request) => looks.push(new URL(request.url()).pathname));
      await page.waitForTimeout(2_500);
      expect(looks).toEqual([]);
      await page.close();
    } finally {
      slow.closeAllConnections();
      await new Promise((done) => slow.close(done));
    }
  }, 60_000);

  it('looks again, while it is shown, for the delivery of an event the live tail showed, which is listed once its first attempt settles', async () => {
    // An endpoint that holds each request until the test answers it: meanwhile the live event's first attempt is under way.
    const holding: ServerResponse[] = [];
    const gate = createServer((req, res) => {
      req.resume();
      holding.push(res);
    });
    await new Promise<void>((done) => gate.listen(0, '127.0.0.1', done));
    onTestFinished(() => {
      gate.closeAllConnections();
      return new Promise<void>((done) => gate.close(() => done()));
    });
    const url = `http://127.0.0.1:${(gate.address() as AddressInfo).port}/gate`;
    const subscribed = await admin('POST', '/v1/subscriptions', { consumer: 'digamma', transport: 'webhook', types: ['order.*'], config: { url } });
    expect(subscribed.status).toBe(201);
    const page = await openPortal('digamma');
    const views = page.getByRole('navigation', { name: 'Portal views' });
    const unlisted = page.getByTestId('portal-deliveries-unlisted');
    const asked: string[] = [];
    page.on('request', (request) => asked.push(new URL(request.url()).pathname));
    /** Publishes an event on the live tail, and returns its seq once the tail shows it and its first attempt is under way. */
    const shownOnTail = async (n: number) => {
      await views.getByRole('button', { name: 'Live tail' }).click();
      await expect.poll(() => page.getByTestId('portal-tail-status').textContent()).toMatch(/^Connected/);
      const { seq } = (await admin('POST', '/v1/events', { type: 'order.created', data: { n }, consumer: 'digamma' })).body;
      await expect.poll(() => page.locator('ol.tail > li > code:first-child').first().textContent()).toBe(`#${seq}`);
      await expect.poll(() => holding.length, { timeout: 10_000 }).toBe(n);
      return seq as number;
    };
    const first = await shownOnTail(1);
    expect((await admin('GET', `/v1/subscriptions/${subscribed.body.id}/deliveries`)).body.data).toEqual([]);
    const loaded = page.waitForResponse((response) => new URL(response.url()).pathname.endsWith('/deliveries'));
    await views.getByRole('button', { name: 'Deliveries' }).click();
    await loaded;
    await unlisted.waitFor();
    expect(await wordsOf(unlisted)).toBe(
      `Event #${first} order.created, shown by the live tail, is not listed yet: a delivery is listed once its first attempt settles. The view looks again every second meanwhile.`,
    );
    expect(await page.getByTestId('portal-deliveries').textContent()).toContain('No deliveries yet.');
    await screenshot(page, 'deliveries-unlisted');
    await expectAccessible(page, 'deliveries, one not listed yet');

    // The attempt settles: the view shows the delivery without a click on Refresh, then stops looking.
    holding[0]?.end('thanks');
    await expect.poll(() => page.locator('[data-testid="delivery-row"][data-status="delivered"]').count(), { timeout: 15_000 }).toBe(1);
    expect(await unlisted.count()).toBe(0);
    await page.waitForTimeout(100);
    asked.length = 0;
    await page.waitForTimeout(1_500);
    expect(asked).toEqual([]);

    // Left while it looks for another, the view stops looking.
    const second = await shownOnTail(2);
    await views.getByRole('button', { name: 'Deliveries' }).click();
    await expect.poll(() => wordsOf(unlisted)).toContain(`Event #${second} order.created`);
    await views.getByRole('button', { name: 'Catalog' }).click();
    await page.waitForTimeout(100);
    asked.length = 0;
    await page.waitForTimeout(1_500);
    expect(asked).toEqual([]);
    holding[1]?.end('thanks');
    await page.close();
  }, 60_000);

  it('says where the live tail asked and what to check when Herald does not answer, and that an empty one is connected and waiting', async () => {
    const page = await openPortal('upsilon');
    const status = page.getByTestId('portal-tail-status');
    const problem = page.getByTestId('portal-tail-problem');
    await page.getByRole('button', { name: 'Live tail' }).click();
    await expect.poll(() => status.textContent()).toBe('Connected: waiting for events.');
    expect(await problem.count()).toBe(0);
    await page.getByRole('button', { name: 'Catalog' }).click();
    try {
      testServer.portalUnreachable = true;
      await page.getByRole('button', { name: 'Live tail' }).click();
      await problem.waitFor({ timeout: 10_000 });
      expect(await status.textContent()).toBe('Reconnecting…');
      expect(await problem.textContent()).toContain(`Herald did not answer at ${baseUrl}. Check that it is running and reachable from this page.`);
      expect(await problem.getAttribute('role')).toBe('alert');
      await screenshot(page, 'tail-unreachable');
      await expectAccessible(page, 'the live tail, Herald unreachable');

      // A proxy in front of it asks to wait a minute: the tail says what it answered, and Try again does not wait.
      testServer.streamAnswer = { status: 429, retryAfter: '60' };
      testServer.portalUnreachable = false;
      await expect.poll(() => problem.textContent(), { timeout: 10_000 }).toContain(`Herald at ${baseUrl} answered HTTP 429`);
      testServer.streamAnswer = undefined;
      await problem.getByRole('button', { name: 'Try again' }).click();
      await expect.poll(() => status.textContent(), { timeout: 5_000 }).toBe('Connected: waiting for events.');
      expect(await problem.count()).toBe(0);
    } finally {
      testServer.portalUnreachable = false;
      testServer.streamAnswer = undefined;
    }
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'upsilon' })).status).toBe(202);
    await expect.poll(() => page.getByTestId('portal-tail').textContent()).toContain('order.created');
    expect(await status.textContent()).toBe('Connected.');
    expect(await page.locator('p.error').count()).toBe(0);
    await page.close();
  }, 60_000);

  it('brings the views back with Try again once Herald, down when the page opened, answers again', async () => {
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'tau', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/tau` } });
    expect(hook.status).toBe(201);
    let page: Page;
    const error = () => page.locator('p.error');
    try {
      testServer.portalUnreachable = true;
      page = await openPortal('tau');
      await error().waitFor();
      expect(await error().textContent()).toBe(`Herald did not answer at ${baseUrl}. Check that it is running and reachable from this page.`);
      expect(await page.getByTestId('subscription-row').count()).toBe(0);
      // Still down: Try again says so again.
      await page.getByRole('button', { name: 'Try again' }).click();
      await error().waitFor();
      expect(await page.getByTestId('portal-create-unavailable').count()).toBe(1);
    } finally {
      testServer.portalUnreachable = false;
    }
    await page.getByRole('button', { name: 'Try again' }).click();
    await expect.poll(() => page.getByTestId('subscription-row').getAttribute('data-id')).toBe(hook.body.id);
    expect(await error().count()).toBe(0);
    expect(await page.getByTestId('portal-create-unavailable').count()).toBe(0);
    expect(await page.getByTestId('portal-create-transport').locator('option').allTextContents()).toEqual(['webhook', 'sse']);
    await page.getByRole('button', { name: 'Catalog' }).click();
    expect(await page.getByTestId('portal-catalog').textContent()).toContain('order.created');
    await page.close();
  }, 60_000);

  it('offers Try again on every view whose load failed, Catalog, Deliveries and Health too, and it brings each back', async () => {
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'omega', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/omega` } });
    expect(hook.status).toBe(201);
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'omega' })).status).toBe(202);
    await expect.poll(() => (received.get('/hook/omega') ?? []).length, { timeout: 15_000 }).toBe(1);
    let page: Page;
    const error = () => page.locator('p.error');
    const tryAgain = () => page.getByRole('button', { name: 'Try again' });
    const views = () => page.getByRole('navigation', { name: 'Portal views' });
    try {
      testServer.portalUnreachable = true;
      page = await openPortal('omega');
      await error().waitFor();
      for (const [label, view] of [
        ['Catalog', 'catalog'],
        ['Deliveries', 'deliveries'],
        ['Health', 'health'],
      ] as const) {
        await views().getByRole('button', { name: label }).click();
        await page.getByTestId(`portal-${view}`).waitFor();
        await expect.poll(() => tryAgain().count(), { message: view }).toBe(1);
        expect(await error().textContent(), view).toBe(`Herald did not answer at ${baseUrl}. Check that it is running and reachable from this page.`);
      }
      // The view does not say that there is nothing to show: it could not look.
      expect(await page.getByTestId('portal-health').textContent()).not.toContain('No push subscriptions');
      await screenshot(page, 'health-try-again');
      await expectAccessible(page, 'health, Herald unreachable');
      await page.setViewportSize({ width: 375, height: 800 });
      await views().getByRole('button', { name: 'Catalog' }).click();
      await expect.poll(() => tryAgain().count()).toBe(1);
      expect(await pageWidth(page)).toBeLessThanOrEqual(375);
      await screenshot(page, 'phone-catalog-try-again');
      await views().getByRole('button', { name: 'Health' }).click();
      await expect.poll(() => tryAgain().count()).toBe(1);
    } finally {
      testServer.portalUnreachable = false;
    }
    // Back: Try again on Health loads what it stands on, then the health itself.
    await tryAgain().click();
    await expect.poll(() => page.getByTestId('health-endpoint').getAttribute('data-id')).toBe(hook.body.id);
    expect(await error().count()).toBe(0);
    expect(await tryAgain().count()).toBe(0);

    // A view's own load that fails (Refresh of the deliveries, Herald down again) has Try again too.
    await page.setViewportSize({ width: 1280, height: 800 });
    await views().getByRole('button', { name: 'Deliveries' }).click();
    await refreshUntil(page, '[data-testid="delivery-row"][data-status="delivered"]');
    try {
      testServer.portalUnreachable = true;
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect.poll(() => tryAgain().count()).toBe(1);
      expect(await page.getByTestId('portal-deliveries').textContent()).not.toContain('No deliveries yet');
    } finally {
      testServer.portalUnreachable = false;
    }
    const reloaded = page.waitForResponse((response) => response.ok() && new URL(response.url()).pathname.endsWith('/deliveries'));
    await tryAgain().click();
    await reloaded;
    await expect.poll(() => page.getByTestId('delivery-row').count()).toBe(1);
    expect(await tryAgain().count()).toBe(0);
    expect(await error().count()).toBe(0);
    await page.close();
  }, 60_000);

  it('says that Herald did not answer in time when it takes connections and never answers, after request-timeout, on every view and in the live tail', async () => {
    // A server that takes every connection and never answers a byte, as a hung Herald (or what stands in front of it) does.
    const sockets = new Set<Socket>();
    const silent = createNetServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    onTestFinished(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => silent.close(() => done()));
    });
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'psi', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/psi` } });
    expect(hook.status).toBe(201);
    const session = await admin('POST', '/v1/portal-sessions', { consumer: 'psi', ttl: 600 });
    const page = await openElementPage();
    await page.evaluate(
      ({ base, token }) => {
        const element = document.createElement('herald-portal');
        element.setAttribute('base-url', base);
        element.setAttribute('token', token);
        element.setAttribute('request-timeout', '500');
        document.querySelector('main')?.append(element);
      },
      { base: silentUrl, token: session.body.token as string },
    );
    const said = `Herald did not answer at ${silentUrl} within 500 ms. Check that it is running and not overloaded, and that nothing in front of it (a proxy, a firewall) holds requests back.`;
    const error = page.locator('p.error');
    const tryAgain = page.getByTestId('portal-try-again');
    await error.waitFor({ timeout: 5_000 });
    expect(await error.textContent()).toBe(said);
    expect(await tryAgain.count()).toBe(1);
    // It took the connections: only the timeout ended the wait.
    expect(sockets.size).toBeGreaterThan(0);
    expect(await page.getByTestId('portal-create-unavailable').textContent()).toContain('could not load');
    await screenshot(page, 'no-answer');
    await expectAccessible(page, 'Herald does not answer');
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await pageWidth(page)).toBeLessThanOrEqual(375);
    await screenshot(page, 'phone-no-answer');
    await page.setViewportSize({ width: 1280, height: 800 });
    // Try again asks again, and says so again once the timeout has passed.
    const started = Date.now();
    await tryAgain.click();
    await expect.poll(() => error.count()).toBe(0);
    await error.waitFor({ timeout: 5_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(await error.textContent()).toBe(said);

    // The live tail: a stream with no answer in time is a failed try; after two it says why, and goes on trying.
    const status = page.getByTestId('portal-tail-status');
    const problem = page.getByTestId('portal-tail-problem');
    await page.getByRole('button', { name: 'Live tail' }).click();
    await problem.waitFor({ timeout: 10_000 });
    expect(await problem.textContent()).toContain(said);
    expect(await status.textContent()).toBe('Reconnecting…');
    await screenshot(page, 'tail-no-answer');
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await pageWidth(page)).toBeLessThanOrEqual(375);
    await screenshot(page, 'phone-tail-no-answer');

    // Pointed at a Herald that answers, the element starts afresh there: its tail connects, its views load.
    await page.evaluate((base) => document.querySelector('herald-portal')?.setAttribute('base-url', base), baseUrl);
    await expect.poll(() => status.textContent(), { timeout: 5_000 }).toBe('Connected: waiting for events.');
    expect(await problem.count()).toBe(0);
    expect(await error.count()).toBe(0);
    await page.getByRole('button', { name: 'Subscriptions' }).click();
    await expect.poll(() => page.getByTestId('subscription-row').getAttribute('data-id')).toBe(hook.body.id);
    expect(await error.count()).toBe(0);
    await page.close();
  }, 60_000);
});

describe('the consumer portal in Chromium (issue 19): live tail and sessions', () => {
  it('shows "session ended" when the admin key that opened it is revoked, or the token expired, as the 401\'s reason says', async () => {
    const minting = await admin('POST', '/v1/keys', { role: 'admin' });
    const session = await admin('POST', '/v1/portal-sessions', { consumer: 'alpha', ttl: 600 }, minting.body.key);
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

    // Opened afresh, so that the token was never taken in the page: only the answer's reason tells that it ended.
    const issuer = await herald.keys.authenticate(adminKey);
    const { key } = await herald.keys.createPortalToken(issuer, 'alpha', 1);
    await new Promise((done) => setTimeout(done, 1_500));
    for (const [token, reason] of [
      [session.body.token, 'revoked'],
      [key, 'token-expired'],
    ]) {
      expect((await admin('GET', '/v1/event-types', undefined, token)).body).toMatchObject({ status: 401, reason });
      const fresh = await browser.newPage();
      await fresh.goto(`${baseUrl}/portal#token=${token}`);
      await fresh.locator('[data-testid="portal-ended"], [data-testid="portal-no-session"]').first().waitFor();
      expect({ reason, heading: await fresh.getByRole('heading', { level: 1 }).textContent() }).toEqual({ reason, heading: 'Session ended' });
      await fresh.close();
    }
  }, 60_000);

  it('ends the session when the live tail ends for the token', async () => {
    const minting = await admin('POST', '/v1/keys', { role: 'admin' });
    const revoked = await openPortal('alpha', minting.body.key);
    const open = revoked.waitForResponse((response) => new URL(response.url()).pathname === '/v1/stream');
    await revoked.getByRole('button', { name: 'Live tail' }).click();
    await open;
    expect((await admin('DELETE', `/v1/keys/${minting.body.id}`)).status).toBe(204);
    await revoked.locator('p.error, [data-testid="portal-ended"]').first().waitFor();
    expect(await revoked.getByRole('heading', { level: 1 }).textContent()).toBe('Session ended');
    await revoked.close();
  }, 60_000);

  it('resumes the live tail by itself when the server restarts, with every event once and in order; a reconnect refused with 401 ends the session', async () => {
    const database = tempDatabase();
    /** A Herald with SSE on the SQLite file, not listening yet. */
    const heraldOn = () => createHerald({ database, logLevel: 'silent', env: {}, adminKey, eventTypes: testEventTypes, transports: [sse()] });
    const listening = async (server: ReturnType<typeof heraldOn>, port = 0) => {
      const app = express();
      app.use('/portal', portal({ directory: appDirectory }));
      app.use(server.app);
      return (await server.listen({ port, host: '127.0.0.1', handler: app, handleSignals: false })).port;
    };
    const first = heraldOn();
    let second: ReturnType<typeof heraldOn> | undefined;
    try {
      const port = await listening(first);
      const server = `http://127.0.0.1:${port}`;
      const minting = await admin('POST', '/v1/keys', { role: 'admin' }, adminKey, server);
      /** A page on the live tail of a session opened with `key`, and the addresses of its requests of /v1/stream. */
      const tailOf = async (key: string) => {
        const session = await admin('POST', '/v1/portal-sessions', { consumer: 'alpha', ttl: 600 }, key, server);
        const page = await browser.newPage({ viewport: { width: 1200, height: 800 }, bypassCSP: true });
        const streams: URL[] = [];
        page.on('request', (request) => {
          const url = new URL(request.url());
          if (url.pathname === '/v1/stream') streams.push(url);
        });
        await page.goto(session.body.url);
        await page.getByTestId('portal-subscriptions').waitFor();
        const open = page.waitForResponse((response) => new URL(response.url()).pathname === '/v1/stream');
        await page.getByRole('button', { name: 'Live tail' }).click();
        await open;
        return { page, streams, status: page.getByTestId('portal-tail-status') };
      };
      const resumed = await tailOf(adminKey);
      const revoked = await tailOf(minting.body.key);
      const shown = () => resumed.page.locator('ol.tail > li > code:first-child').allTextContents();
      const publish = async (n: number) => {
        const answer = await admin('POST', '/v1/events', { type: 'order.created', data: { n }, consumer: 'alpha' }, adminKey, server);
        expect(answer.status).toBe(202);
        return answer.body.seq as number;
      };
      const published = [await publish(1)];
      await expect.poll(shown).toEqual([`#${published[0]}`]);
      expect(await resumed.status.textContent()).toBe('Connected.');
      // One just before the stop: whether it goes out before the end frame or not, it is shown once.
      published.push(await publish(2));
      await first.close();

      // The end frame (`stopping`) ended the stream; nothing is clicked from here on.
      await expect.poll(() => resumed.status.textContent()).toBe('Reconnecting…');
      await expect.poll(() => revoked.status.textContent()).toBe('Reconnecting…');
      expect(await resumed.page.locator('p.error').count()).toBe(0);
      await screenshot(resumed.page, 'tail-reconnecting');
      await expectAccessible(resumed.page, 'the live tail, reconnecting');

      // While the server is down: an event into the log, and the key that opened the second session revoked.
      second = heraldOn();
      published.push((await second.publish({ type: 'order.created', data: { n: 3 }, consumer: 'alpha' })).event.seq);
      expect(await second.keys.revoke(minting.body.id)).toBe(true);
      expect(await listening(second, port)).toBe(port);
      published.push(await publish(4));

      const newestFirst = published.map((seq) => `#${seq}`).reverse();
      await expect.poll(shown, { timeout: 15_000 }).toEqual(newestFirst);
      await expect.poll(() => resumed.status.textContent()).toBe('Connected.');
      expect(await resumed.page.locator('p.error').count()).toBe(0);
      // Every new stream resumed from where the last one got: none starts from "now".
      expect(resumed.streams.length).toBeGreaterThan(1);
      expect(resumed.streams.slice(1).every((url) => Number(url.searchParams.get('lastEventId')) >= published[0]!)).toBe(true);
      await screenshot(resumed.page, 'tail-resumed');

      // The other session's reconnect got a 401: the session ended, and nothing more is asked for.
      await revoked.page.getByTestId('portal-ended').waitFor({ timeout: 15_000 });
      expect(await revoked.page.getByRole('heading', { level: 1 }).textContent()).toBe('Session ended');
      const asked = revoked.streams.length;
      await resumed.page.waitForTimeout(1_000);
      expect(await shown()).toEqual(newestFirst);
      expect(revoked.streams.length).toBe(asked);
      await resumed.page.close();
      await revoked.page.close();
    } finally {
      await first.close();
      await second?.close();
    }
  }, 60_000);

  it('takes a live tail stream that sends nothing, not even a keep-alive, for tail-idle-timeout for dropped: it says so, and resumes after the last event shown', async () => {
    // A Herald whose streams send a keep-alive every 200 ms, with the provider's page, behind a TCP proxy that can stall
    // the streams open now (nothing more of theirs reaches the page: a half-dead connection), or answer new ones with a
    // stream's headers and then nothing, as a proxy that holds the stream does.
    const quiet = createHerald({ database: ':memory:', logLevel: 'silent', env: {}, adminKey, eventTypes: testEventTypes, transports: [sse({ keepAlive: 200 })] });
    const app = express();
    serveElementPage(app);
    app.use(quiet.app);
    const { port } = await quiet.listen({ port: 0, host: '127.0.0.1', handler: app, handleSignals: false });
    const proxy = { holdNew: false, stalled: new Set<Socket>(), streams: new Set<Socket>() };
    const sockets = new Set<Socket>();
    const track = (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    };
    const front = createNetServer((client) => {
      track(client);
      const upstream = connect(port, '127.0.0.1');
      track(upstream);
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('data', (chunk) => {
        if (!proxy.stalled.has(client)) client.write(chunk);
      });
      client.on('data', (chunk) => {
        if (chunk.toString('latin1').startsWith('GET /v1/stream')) {
          proxy.streams.add(client);
          if (proxy.holdNew) {
            proxy.stalled.add(client);
            client.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n');
            return;
          }
        }
        if (!proxy.stalled.has(client)) upstream.write(chunk);
      });
    });
    await new Promise<void>((done) => front.listen(0, '127.0.0.1', done));
    onTestFinished(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => front.close(() => done()));
      await quiet.close();
    });
    const origin = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
    const publish = async (n: number) => {
      const answer = await admin('POST', '/v1/events', { type: 'order.created', data: { n }, consumer: 'mu' }, adminKey, origin);
      expect(answer.status).toBe(202);
      return answer.body.seq as number;
    };
    const session = await admin('POST', '/v1/portal-sessions', { consumer: 'mu', ttl: 600 }, adminKey, origin);
    expect(session.status).toBe(201);

    const page = await browser.newPage({ viewport: { width: 1200, height: 800 }, bypassCSP: true });
    const streams: URL[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname === '/v1/stream') streams.push(url);
    });
    await page.goto(`${origin}/element/`);
    await page.evaluate((token) => {
      const element = document.createElement('herald-portal');
      element.setAttribute('token', token);
      element.setAttribute('tail-idle-timeout', '1500');
      document.querySelector('main')?.append(element);
    }, session.body.token as string);
    const status = page.getByTestId('portal-tail-status');
    const problem = page.getByTestId('portal-tail-problem');
    const shown = () => page.locator('ol.tail > li > code:first-child').allTextContents();
    await page.getByRole('button', { name: 'Live tail' }).click();
    await expect.poll(() => status.textContent()).toBe('Connected: waiting for events.');
    // Every status the line shows from here on, however briefly.
    await page.evaluate(() => {
      const line = document.querySelector('herald-portal')?.shadowRoot?.querySelector('[data-testid="portal-tail-status"]') as Element;
      const said = window as unknown as { statuses: string[] };
      said.statuses = [];
      new MutationObserver(() => said.statuses.push(line.textContent ?? '')).observe(line, { childList: true, characterData: true, subtree: true });
    });
    const statuses = () => page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);

    // Quiet but alive: the keep-alives hold the stream, twice as long as the bound.
    await page.waitForTimeout(3_000);
    expect(streams).toHaveLength(1);
    const first = await publish(1);
    await expect.poll(shown).toEqual([`#${first}`]);

    // The stream stalls: the tail notices within the bound, says so, and a new stream resumes after the last event shown.
    for (const stream of proxy.streams) proxy.stalled.add(stream);
    const second = await publish(2);
    await expect.poll(shown, { timeout: 10_000 }).toEqual([`#${second}`, `#${first}`]);
    expect(streams).toHaveLength(2);
    expect(streams[1]?.searchParams.get('lastEventId')).toBe(String(first));
    expect(await statuses()).toContain('Reconnecting… (the stream sent nothing for 1.5 s)');
    await expect.poll(() => status.textContent()).toBe('Connected.');

    // Streams that open and send nothing at all are tries that got none: after two, the tail says why, and goes on trying.
    proxy.holdNew = true;
    for (const stream of proxy.streams) proxy.stalled.add(stream);
    await problem.waitFor({ timeout: 10_000 });
    expect(await problem.textContent()).toContain(
      `Herald at ${origin} opened the live tail's stream, then sent nothing for 1.5 s, not even a keep-alive. Check that what stands in front of it (a proxy) passes the stream on as it comes, without buffering it.`,
    );
    expect(await status.textContent()).toBe('Reconnecting… (the stream sent nothing for 1.5 s)');
    await expectAccessible(page, 'the live tail, its streams silent');
    // Once the streams pass again, the next try gets one, by itself, and it resumes where the tail was.
    proxy.holdNew = false;
    const third = await publish(3);
    await expect.poll(shown, { timeout: 20_000 }).toEqual([`#${third}`, `#${second}`, `#${first}`]);
    expect(streams.at(-1)?.searchParams.get('lastEventId')).toBe(String(second));
    await expect.poll(() => status.textContent()).toBe('Connected.');
    expect(await problem.count()).toBe(0);
    expect(await page.locator('p.error').count()).toBe(0);
    await page.close();
  }, 60_000);

  it('reconnects the live tail after a 429 no sooner than its Retry-After, and stops trying once the view is left or the element removed', async () => {
    const streams: number[] = [];
    const count = (page: Page) =>
      page.on('request', (request) => {
        if (new URL(request.url()).pathname === '/v1/stream') streams.push(Date.now());
      });
    /** Waits a little for a request under way to be seen, then checks that no other is made for a while. */
    const expectNoMoreStreams = async (page: Page) => {
      await page.waitForTimeout(100);
      const made = streams.length;
      await page.waitForTimeout(2_500);
      expect(streams.length).toBe(made);
    };
    try {
      testServer.streamAnswer = { status: 502 };
      const page = await openPortal('kappa');
      count(page);
      const status = page.getByTestId('portal-tail-status');
      await page.getByRole('button', { name: 'Live tail' }).click();
      await expect.poll(() => status.textContent()).toBe('Reconnecting…');
      await page.getByRole('button', { name: 'Catalog' }).click();
      await expectNoMoreStreams(page);

      await page.getByRole('button', { name: 'Live tail' }).click();
      await expect.poll(() => status.textContent()).toBe('Reconnecting…');
      expect(await page.locator('p.error').count()).toBe(0);
      await page.evaluate(() => document.querySelector('herald-portal')?.remove());
      await expectNoMoreStreams(page);
      await page.close();

      streamAnswerTimes.length = 0;
      testServer.streamAnswer = { status: 429, retryAfter: '2' };
      const waiting = await openPortal('kappa');
      await waiting.getByRole('button', { name: 'Live tail' }).click();
      await expect.poll(() => streamAnswerTimes.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
      // As the server saw them, the second request comes 2 s after the first was answered at least (a browser's timer may
      // round off a few ms); without the Retry-After the first backoff is under 500 ms.
      expect(streamAnswerTimes[1]! - streamAnswerTimes[0]!).toBeGreaterThanOrEqual(1_990);
      testServer.streamAnswer = undefined;
      const tailStatus = waiting.getByTestId('portal-tail-status');
      await expect.poll(() => tailStatus.textContent(), { timeout: 10_000 }).toBe('Connected: waiting for events.');
      expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'kappa' })).status).toBe(202);
      await expect.poll(() => waiting.getByTestId('portal-tail').textContent()).toContain('order.created');
      expect(await waiting.locator('p.error').count()).toBe(0);
      await waiting.close();
    } finally {
      testServer.streamAnswer = undefined;
    }
  }, 30_000);

  it('takes up the live tail and the deliveries view again when the element is taken out of the page and put back', async () => {
    // An endpoint that asks for a retry a second later until the test lets it take the delivery: the delivery stays pending
    // (due within the second) for as long as a loaded machine takes to show the view.
    let taking = false;
    const flaky = createServer((req, res) => {
      req.resume();
      if (taking) res.end('thanks');
      else res.writeHead(503, { 'retry-after': '1' }).end('not yet');
    });
    await new Promise<void>((done) => flaky.listen(0, '127.0.0.1', done));
    onTestFinished(() => new Promise<void>((done) => flaky.close(() => done())));
    const url = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}/flaky`;
    const subscribed = await admin('POST', '/v1/subscriptions', { consumer: 'lambda', transport: 'webhook', types: ['order.*'], config: { url } });
    expect(subscribed.status).toBe(201);
    const page = await openPortal('lambda');
    const streamOpened = () => page.waitForResponse((response) => new URL(response.url()).pathname === '/v1/stream', { timeout: 5_000 });
    const reattach = () =>
      page.evaluate(() => {
        const element = document.querySelector('herald-portal') as Element;
        const parent = element.parentNode as Node;
        element.remove();
        parent.appendChild(element);
      });
    let opened = streamOpened();
    await page.getByRole('button', { name: 'Live tail' }).click();
    await opened;
    opened = streamOpened();
    await reattach();
    await opened;
    expect((await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'lambda' })).status).toBe(202);
    await expect.poll(() => page.getByTestId('portal-tail').textContent()).toContain('order.created');

    // The view looks again and again at a delivery whose retry is due soon, and goes on doing so after a move. The
    // delivery is listed once its first attempt settled (docs/protocol/webhooks.md): on a loaded machine, after the tail shows it.
    const listed = async () => (await admin('GET', `/v1/subscriptions/${subscribed.body.id}/deliveries`)).body.data.length;
    await expect.poll(listed, { timeout: 15_000 }).toBe(1);
    await page.getByRole('button', { name: 'Deliveries', exact: true }).first().click();
    await expect.poll(() => page.locator('[data-testid="delivery-row"][data-status="pending"]').count(), { timeout: 15_000 }).toBe(1);
    await reattach();
    taking = true;
    await expect.poll(() => page.locator('[data-testid="delivery-row"][data-status="delivered"]').count(), { timeout: 20_000 }).toBe(1);
    expect(await page.locator('p.error').count()).toBe(0);
    await page.close();
  }, 60_000);

  it('says that a link without a token, or with one the server never issued, has no session, rather than that it ended', async () => {
    for (const address of [`${baseUrl}/portal/`, `${baseUrl}/portal#token=hp_bogus`, `${baseUrl}/portal#token=hp_${'0'.repeat(20)}_${'a'.repeat(64)}`]) {
      // Not bypassing the CSP: the page is seen as it is served.
      const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
      const problems: string[] = [];
      // The API's 401s aside, every answer the page gets is a success: no 404 for an icon, say.
      const failed: string[] = [];
      const asked: string[] = [];
      page.on('request', (request) => {
        const path = new URL(request.url()).pathname;
        if (path.startsWith('/v1/')) asked.push(path);
      });
      page.on('pageerror', (error) => problems.push(error.message));
      page.on('console', (message) => {
        // Lit's development build warns of itself: the app is built as it ships, whatever NODE_ENV the test runs under.
        if (/Content Security Policy|favicon|dev mode/i.test(message.text())) problems.push(message.text());
      });
      page.on('response', (response) => {
        const path = new URL(response.url()).pathname;
        if (response.status() >= 400 && !path.startsWith('/v1/')) failed.push(`${response.status()} ${path}`);
      });
      await page.goto(address);
      const shown = page.getByTestId('portal-no-session');
      await shown.waitFor();
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('No portal session');
      expect(await shown.textContent()).toContain('This page has no valid portal session token');
      expect(await shown.textContent()).not.toMatch(/expired|revoked/);
      expect(await page.getByTestId('portal-ended').count()).toBe(0);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
      await page.waitForTimeout(250);
      expect({ address, problems, failed }).toEqual({ address, problems: [], failed: [] });
      // One request tells that the server never issued the token; without one, nothing is asked.
      expect({ address, asked: asked.length }).toEqual({ address, asked: address.includes('#token=') ? 1 : 0 });
      // Its own icon, from its origin, which the CSP allows: so the browser does not ask for /favicon.ico.
      const icon = await page.evaluate(() => document.querySelector<HTMLLinkElement>('link[rel~="icon"]')?.href);
      expect(icon).toBe(`${baseUrl}/portal/favicon.svg`);
      const iconAnswer = await page.request.get(icon ?? '');
      expect([iconAnswer.status(), iconAnswer.headers()['content-type']]).toEqual([200, 'image/svg+xml']);
      await screenshot(page, 'no-session');
      await page.close();
    }
  }, 60_000);

  it('starts afresh when its token is set after it is on the page, or set again: that consumer\'s subscriptions only, and the old live tail closed', async () => {
    const mine = await admin('POST', '/v1/subscriptions', { consumer: 'phi', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/phi` } });
    const theirs = await admin('POST', '/v1/subscriptions', { consumer: 'chi', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/chi` } });
    expect([mine.status, theirs.status]).toEqual([201, 201]);
    const tokenOf = async (consumer: string) => (await admin('POST', '/v1/portal-sessions', { consumer, ttl: 600 })).body.token as string;
    const publish = async (consumer: string) => (await admin('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer })).body.seq as number;
    const page = await openElementPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const asked: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/v1/')) asked.push(request.url());
    });
    const rowIds = () => page.getByTestId('subscription-row').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-id')));
    const shownTail = () => page.locator('ol.tail > li > code:first-child').allTextContents();
    const views = page.getByRole('navigation', { name: 'Portal views' });
    const setToken = (token: string) =>
      page.evaluate((value) => {
        const element = document.querySelector('herald-portal');
        if (element) element.token = value;
      }, token);

    // Added by the provider's script before it has a token: it waits for one, and asks nothing. It never says "No portal
    // session" meanwhile, which it says at once of a token given empty, as the /portal app gives a link without one.
    await page.evaluate((base) => {
      const element = document.createElement('herald-portal');
      element.baseUrl = base;
      document.querySelector('main')?.append(element);
      const seen = window as unknown as { noSessionShown: boolean };
      seen.noSessionShown = false;
      new MutationObserver(() => {
        seen.noSessionShown ||= element.shadowRoot?.querySelector('[data-testid="portal-no-session"]') !== null;
      }).observe(element.shadowRoot as ShadowRoot, { childList: true, subtree: true });
    }, baseUrl);
    const waiting = page.getByTestId('portal-waiting');
    await waiting.waitFor();
    expect(await wordsOf(waiting)).toBe('Event portal Waiting for a session…');
    expect(await waiting.getByRole('status').count()).toBe(1);
    await expectAccessible(page, 'waiting for a session');
    await page.waitForTimeout(500);
    expect(await page.getByTestId('portal-no-session').count()).toBe(0);
    expect(asked).toEqual([]);
    await page.evaluate((base) => {
      const empty = document.createElement('herald-portal');
      empty.id = 'given-empty';
      empty.setAttribute('base-url', base);
      empty.setAttribute('token', '');
      document.querySelector('main')?.append(empty);
    }, baseUrl);
    await page.locator('#given-empty').getByTestId('portal-no-session').waitFor();
    await page.evaluate(() => document.getElementById('given-empty')?.remove());
    expect(asked).toEqual([]);

    // The token it fetched after the page rendered: the session of phi.
    await setToken(await tokenOf('phi'));
    await expect.poll(rowIds).toEqual([mine.body.id]);
    expect(await page.getByTestId('portal-no-session').count()).toBe(0);
    expect(await waiting.count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { noSessionShown: boolean }).noSessionShown)).toBe(false);
    // What phi's session shows by now: a secret, a question, a live tail with an event, a stream open on the server.
    await page.getByTestId('portal-create-types').fill('order.*');
    await page.getByTestId('portal-create-url').fill(`${hookUrl}/phi-second`);
    await page.getByTestId('portal-create-submit').click();
    await expect.poll(rowIds).toHaveLength(2);
    await page.getByTestId('portal-secret-card').waitFor();
    await page.getByTestId('subscription-row').filter({ hasText: mine.body.id }).getByRole('button', { name: 'Delete' }).click();
    await page.getByTestId('portal-confirm').waitFor();
    await expect.poll(() => sseTransport.connections, { timeout: 5_000 }).toBe(0);
    await views.getByRole('button', { name: 'Live tail' }).click();
    await expect.poll(() => page.getByTestId('portal-tail-status').textContent()).toBe('Connected: waiting for events.');
    await expect.poll(() => sseTransport.connections).toBe(1);
    const phiSeq = await publish('phi');
    await expect.poll(shownTail).toEqual([`#${phiSeq}`]);

    // Another consumer's token: chi's tail, on the view shown, and phi's stream closed on the server.
    await setToken(await tokenOf('chi'));
    await expect.poll(() => page.getByTestId('portal-tail-status').textContent()).toBe('Connected: waiting for events.');
    expect(await shownTail()).toEqual([]);
    const chiSeq = await publish('chi');
    await publish('phi');
    await expect.poll(shownTail).toEqual([`#${chiSeq}`]);
    await expect.poll(() => sseTransport.connections, { timeout: 5_000 }).toBe(1);
    // chi's subscriptions alone: nothing of phi's session (its rows, secret, question) is left.
    await views.getByRole('button', { name: 'Subscriptions' }).click();
    await expect.poll(rowIds).toEqual([theirs.body.id]);
    expect(await page.getByTestId('portal-secret-card').count()).toBe(0);
    expect(await page.getByTestId('portal-confirm').count()).toBe(0);
    await views.getByRole('button', { name: 'Deliveries' }).click();
    const options = page.getByTestId('portal-deliveries').getByRole('combobox', { name: 'Subscription' }).locator('option');
    await expect.poll(() => options.allTextContents()).toEqual([`${theirs.body.id} (webhook)`]);
    await refreshUntil(page, '[data-testid="delivery-row"]');
    expect(await page.getByTestId('delivery-row').locator('strong').allTextContents()).toEqual([`Event #${chiSeq}`]);
    expect(await page.locator('p.error').count()).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);
});
