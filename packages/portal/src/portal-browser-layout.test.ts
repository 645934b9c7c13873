import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  admin,
  baseUrl,
  browser,
  expectAccessible,
  expectTarget,
  hookUrl,
  openEmbedded,
  openPortal,
  pageWidth,
  received,
  refreshUntil,
  screenshot,
  testServer,
  usePortalBrowser,
} from './portal-browser.test-support.js';

usePortalBrowser();

describe('the consumer portal in Chromium (issue 19): phones and embedding', () => {
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
});
