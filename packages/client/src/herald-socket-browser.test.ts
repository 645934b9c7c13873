import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventMapOf, HeraldEvent } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import { linger, testEventTypes, waitFor } from '@herald/testkit';
import { websocket } from '@herald/websocket';
import type { Browser } from 'playwright-core';
import ts from 'typescript';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium } from '../../testkit/src/chromium.test-support.js';

/**
 * The page: loads the package as the README tells a page without a bundler to, through an import map (so
 * no module of it may import a bare name), each module as the browser sees it (types stripped), and runs
 * HeraldSocket on the browser's own WebSocket.
 */
const page = `<!doctype html><meta charset="utf-8"><title>herald socket</title>
<script type="importmap">{"imports": {"@herald/client": "/client/index.js"}}</script>
<script type="module">
  import { HeraldSocket } from '@herald/client';
  window.received = [];
  window.opens = 0;
  window.closes = [];
  window.start = (url, token) => {
    const socket = new HeraldSocket({ url, token, initialDelay: 50, maxDelay: 300 });
    socket.on('open', () => window.opens++);
    socket.on('close', (event) => window.closes.push(event.code));
    socket.subscribe(['order.*'], (event) => window.received.push(event));
  };
</script>`;

const adminKey = 'admin-browser-socket-test-0123456789abcdef';
let browser: Browser;
let pageServer: Server;
let pageOrigin: string;
let directory: string;

beforeAll(async () => {
  // Every module of the package, each from its source in this folder.
  const scripts = new Map<string, string>();
  for (const file of await readdir(new URL('.', import.meta.url))) {
    if (!file.endsWith('.ts') || /\.test(-support)?\.ts$/.test(file)) continue;
    const source = await readFile(new URL(`./${file}`, import.meta.url), 'utf8');
    const module = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } });
    scripts.set(`/client/${file.replace(/\.ts$/, '.js')}`, module.outputText);
  }
  pageServer = createServer((request, response) => {
    const script = scripts.get(request.url ?? '');
    response.writeHead(200, { 'content-type': script !== undefined ? 'text/javascript' : 'text/html; charset=utf-8' });
    response.end(script ?? page);
  });
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
  directory = await mkdtemp(join(tmpdir(), 'herald-socket-browser-'));
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => pageServer?.close(resolve));
  await rm(directory, { recursive: true, force: true });
});

async function startHerald(port = 0): Promise<{ herald: Herald<EventMapOf<typeof testEventTypes>>; port: number }> {
  const herald = createHerald({ database: join(directory, 'herald.db'), logLevel: 'silent', env: {}, adminKey, eventTypes: testEventTypes, transports: [websocket()] });
  return { herald, port: (await herald.listen({ port, host: '127.0.0.1', handleSignals: false })).port };
}

it("runs in Chromium on the browser's WebSocket: a stream token, a server restart, nothing missed or repeated", async () => {
  let { herald, port } = await startHerald();
  try {
    const call = async (path: string, body: unknown, key = adminKey) => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return response.json();
    };
    const key = (await call('/v1/keys', { role: 'consumer', consumer: 'acme' })).key;
    const { token } = await call('/v1/stream-tokens', { types: ['order.*'], ttl: 600 }, key);

    const tab = await browser.newPage();
    await tab.goto(`${pageOrigin}/`);
    await tab.waitForFunction(() => 'start' in window);
    await tab.evaluate(([url, credential]) => (window as any).start(url, credential), [`ws://127.0.0.1:${port}/v1/ws`, token]);
    await waitFor(async () => (await tab.evaluate(() => (window as any).opens)) === 1, 'the browser socket to open', 20_000);

    const published: HeraldEvent[] = [];
    const publish = async (count: number) => {
      for (let n = 0; n < count; n++) published.push((await herald.publish({ type: n % 2 ? 'order.shipped' : 'order.created', data: { n } })).event);
    };
    await publish(30);
    await herald.close();
    ({ herald, port } = await startHerald(port));
    await publish(30);
    const received = () => tab.evaluate(() => (window as any).received as HeraldEvent[]);
    await waitFor(async () => (await received()).length >= 60, '60 events in the browser', 20_000);
    await linger();
    expect((await received()).map((event) => event.id)).toEqual(published.map((event) => event.id));
    expect(await tab.evaluate(() => (window as any).closes)).toContain(1001);
    expect(await tab.evaluate(() => (window as any).opens)).toBe(2);
  } finally {
    await herald.close();
  }
}, 60_000);
