import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHerald } from '@herald/server';
import { sse } from '@herald/sse';
import { testEventTypes } from '@herald/testkit';
import express from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import {
  addPortal,
  admin,
  adminKey,
  browser,
  expectAccessible,
  herald,
  hookUrl,
  openPortal,
  received,
  refreshUntil,
  screenshot,
  serveElementPage,
  testServer,
  usePortalBrowser,
  wordsOf,
} from './portal-browser.test-support.js';

usePortalBrowser();

describe('the consumer portal in Chromium (issue 19): subscriptions and deliveries', () => {
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
    await addPortal(page, { token: session.body.token });
    const rows = page.getByTestId('subscription-row');
    await expect.poll(() => rows.count()).toBe(5);
    expect(await rows.evaluateAll((shown) => shown.map((row) => row.getAttribute('data-id')))).toEqual(made);
    await page.close();
  }, 30_000);

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
});
