import { createServer } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { createHerald } from '@herald/server';
import { sse } from '@herald/sse';
import { testEventTypes } from '@herald/testkit';
import express from 'express';
import type { Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import {
  addPortal,
  admin,
  adminKey,
  appDirectory,
  baseUrl,
  browser,
  expectAccessible,
  openPortal,
  screenshot,
  serveElementPage,
  streamAnswerTimes,
  testServer,
  usePortalBrowser,
} from './portal-browser.test-support.js';
import { portal } from './portal-app.js';

usePortalBrowser();

describe('the consumer portal in Chromium (issue 19): live tail', () => {
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
    // Five keep-alive intervals: short, so that the test waits little, and long enough that a loaded machine's late keep-alive passes.
    await addPortal(page, { token: session.body.token, 'tail-idle-timeout': '1000' });
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
    await page.waitForTimeout(2_000);
    expect(streams).toHaveLength(1);
    const first = await publish(1);
    await expect.poll(shown).toEqual([`#${first}`]);

    // The stream stalls: the tail notices within the bound, says so, and a new stream resumes after the last event shown.
    for (const stream of proxy.streams) proxy.stalled.add(stream);
    const second = await publish(2);
    await expect.poll(shown, { timeout: 10_000 }).toEqual([`#${second}`, `#${first}`]);
    expect(streams).toHaveLength(2);
    expect(streams[1]?.searchParams.get('lastEventId')).toBe(String(first));
    expect(await statuses()).toContain('Reconnecting… (the stream sent nothing for 1 s)');
    await expect.poll(() => status.textContent()).toBe('Connected.');

    // Streams that open and send nothing at all are tries that got none: after two, the tail says why, and goes on trying.
    proxy.holdNew = true;
    for (const stream of proxy.streams) proxy.stalled.add(stream);
    await problem.waitFor({ timeout: 10_000 });
    expect(await problem.textContent()).toContain(
      `Herald at ${origin} opened the live tail's stream, then sent nothing for 1 s, not even a keep-alive. Check that what stands in front of it (a proxy) passes the stream on as it comes, without buffering it.`,
    );
    expect(await status.textContent()).toBe('Reconnecting… (the stream sent nothing for 1 s)');
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
      testServer.streamAnswer = { status: 429, retryAfter: '1' };
      const waiting = await openPortal('kappa');
      await waiting.getByRole('button', { name: 'Live tail' }).click();
      await expect.poll(() => streamAnswerTimes.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
      // As the server saw them, the second request comes 1 s after the first was answered at least (a browser's timer may
      // round off a few ms); without the Retry-After the first backoff is under 500 ms.
      expect(streamAnswerTimes[1]! - streamAnswerTimes[0]!).toBeGreaterThanOrEqual(990);
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
});
