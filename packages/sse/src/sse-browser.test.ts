import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HeraldEvent } from '@herald/core';
import { linger, waitFor } from '@herald/testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium } from '../../testkit/src/chromium.test-support.js';
import { type StreamApp, startStreamApp } from './stream-app.test-support.js';

/** The page the browser runs: it only collects what its EventSource receives. */
const page = `<!doctype html><meta charset="utf-8"><title>herald sse</title>
<script>
  window.received = [];
  window.opens = 0;
  window.errors = 0;
  window.listen = (url, types) => {
    const source = new EventSource(url);
    for (const type of types) source.addEventListener(type, (message) => window.received.push(JSON.parse(message.data)));
    source.onopen = () => window.opens++;
    source.onerror = () => window.errors++;
    window.source = source;
  };
</script>`;

let browser: Browser;
let pageServer: Server;
let pageOrigin: string;
let app: StreamApp;

beforeAll(async () => {
  // The page comes from another loopback origin, so the stream is a real cross-origin EventSource.
  pageServer = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(page);
  });
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
  app = await startStreamApp({ retry: 100, cors: { origins: [pageOrigin] } });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await new Promise((resolve) => pageServer?.close(resolve));
});

const received = (tab: Page) => tab.evaluate(() => (window as unknown as { received: HeraldEvent[] }).received);
const count = (tab: Page, name: 'opens' | 'errors') => tab.evaluate((key) => (window as unknown as Record<string, number>)[key] as number, name);

it('Chromium\'s own EventSource receives, reconnects by itself with Last-Event-ID after a drop, and misses and repeats nothing', async () => {
  const tab = await browser.newPage();
  await tab.goto(`${pageOrigin}/`);
  const key = await app.consumerKey('acme');
  const token = await app.streamToken(key, { types: ['order.*'] });
  const types = ['order.created', 'order.shipped'];
  await tab.evaluate(([url, names]) => (window as unknown as { listen(u: string, t: string[]): void }).listen(url, names), [
    `${app.baseUrl}/v1/stream?types=order.*&access_token=${token}`,
    types,
  ] as [string, string[]]);
  await waitFor(async () => (await count(tab, 'opens')) === 1, 'the browser stream to open', 20_000);

  const published: HeraldEvent[] = [];
  for (let n = 0; n < 220; n++) {
    const { event } = await app.herald.publish({ type: types[n % 2] as 'order.created', data: { n } });
    published.push(event);
    if (n === 70) app.dropConnections();
    if (n === 150) {
      await waitFor(async () => (await count(tab, 'opens')) === 2, 'the first reconnection', 20_000);
      app.dropConnections();
    }
    if (n % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await waitFor(async () => (await received(tab)).length >= published.length, `${published.length} events in the browser`, 30_000);
  await linger();
  expect((await received(tab)).map((event) => event.id)).toEqual(published.map((event) => event.id));
  expect(await count(tab, 'opens')).toBeGreaterThanOrEqual(3);
  expect(await count(tab, 'errors')).toBeGreaterThanOrEqual(2);
  const resumedFrom = app.lastEventIds.slice(1).map(Number);
  expect(resumedFrom.length).toBeGreaterThanOrEqual(2);
  for (const seq of resumedFrom) expect(published.map((event) => event.seq)).toContain(seq);
  await tab.close();
}, 60_000);
