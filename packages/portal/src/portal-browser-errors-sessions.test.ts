import { createServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import express from 'express';
import type { Locator, Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  addPortal,
  admin,
  adminKey,
  baseUrl,
  browser,
  elementBundle,
  expectAccessible,
  heldRequests,
  herald,
  hookUrl,
  openElementPage,
  openPortal,
  pageWidth,
  received,
  refreshUntil,
  screenshot,
  sseTransport,
  testServer,
  usePortalBrowser,
  wordsOf,
} from './portal-browser.test-support.js';

usePortalBrowser();

describe('the consumer portal in Chromium (issue 19): a Herald that does not answer, and sessions', () => {
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
    await addPortal(page, { 'base-url': silentUrl, token: session.body.token, 'request-timeout': '500' });
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

  it('drops a view load that hangs when Try again is pressed, and makes a fresh one: once Herald answers again, the view is back at once, not after request-timeout', async () => {
    const hook = await admin('POST', '/v1/subscriptions', { consumer: 'sampi', transport: 'webhook', types: ['order.*'], config: { url: `${hookUrl}/sampi` } });
    expect(hook.status).toBe(201);
    const session = await admin('POST', '/v1/portal-sessions', { consumer: 'sampi', ttl: 600 });
    const page = await openElementPage();
    const error = page.locator('p.error');
    const tryAgain = page.getByTestId('portal-try-again');
    const trying = page.getByTestId('portal-trying-again');
    const focused = () => page.evaluate(() => document.querySelector('herald-portal')?.shadowRoot?.activeElement?.getAttribute('data-testid'));
    /**
     * Try again, pressed (from the keyboard: it kept the focus) while the load it made hangs: that load is dropped, its
     * requests ended, and a fresh one hangs in its place.
     */
    const tryAgainWhileItHangs = async () => {
      const hanging = [...heldRequests];
      expect(hanging.length).toBeGreaterThan(0);
      expect(await focused()).toBe('portal-try-again');
      await page.keyboard.press('Enter');
      await expect.poll(() => hanging.filter((request) => heldRequests.has(request)).length, { timeout: 5_000 }).toBe(0);
      await expect.poll(() => heldRequests.size, { timeout: 5_000 }).toBeGreaterThan(0);
      expect(await trying.textContent()).toBe('Trying again…');
      expect(await error.count()).toBe(0);
    };
    /** Herald answers again: Try again drops the load that hangs, and the fresh one shows `shown` at once, with nothing said of the one dropped. */
    const backAtOnce = async (shown: Locator) => {
      testServer.portalHangs = undefined;
      await tryAgain.click();
      // Far within request-timeout (a minute), which a Try again that waited on the load that hangs would wait out first.
      await shown.waitFor({ timeout: 10_000 });
      await expect.poll(() => heldRequests.size, { timeout: 5_000 }).toBe(0);
      expect(await error.count()).toBe(0);
      expect(await trying.count()).toBe(0);
      expect(await tryAgain.count()).toBe(0);
    };
    try {
      testServer.portalUnreachable = true;
      await addPortal(page, { token: session.body.token, 'request-timeout': '60000' });
      await error.waitFor();
      // Herald takes the connections now, and never answers: the load Try again made hangs, and the view says so, with Try again.
      testServer.portalUnreachable = false;
      testServer.portalHangs = /./;
      await tryAgain.click();
      await trying.waitFor();
      await expect.poll(() => heldRequests.size, { timeout: 5_000 }).toBeGreaterThan(0);
      expect(await trying.getAttribute('role')).toBe('status');
      expect(await tryAgain.count()).toBe(1);
      expect(await error.count()).toBe(0);
      await screenshot(page, 'trying-again');
      await expectAccessible(page, 'trying again');
      await tryAgainWhileItHangs();
      await backAtOnce(page.locator(`[data-testid="subscription-row"][data-id="${hook.body.id}"]`));

      // Health, whose own load hangs (the lists are answered): the same.
      testServer.portalUnreachable = true;
      await page.getByRole('navigation', { name: 'Portal views' }).getByRole('button', { name: 'Health' }).click();
      await error.waitFor();
      testServer.portalUnreachable = false;
      testServer.portalHangs = /\/deliveries$/;
      await tryAgain.click();
      await trying.waitFor();
      await expect.poll(() => heldRequests.size, { timeout: 5_000 }).toBe(1);
      await tryAgainWhileItHangs();
      await backAtOnce(page.locator(`[data-testid="health-endpoint"][data-id="${hook.body.id}"]`));
    } finally {
      testServer.portalUnreachable = false;
      testServer.portalHangs = undefined;
    }
    await page.close();
  }, 60_000);

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
    await expect.poll(async () => (await admin('GET', '/v1/event-types', undefined, key)).body?.reason, { timeout: 5_000 }).toBe('token-expired');
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
