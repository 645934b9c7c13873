import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { EventMapOf } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import { type SseTransport, sse } from '@herald/sse';
import { testEventTypes } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import express, { type Express } from 'express';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { launchChromium } from '../../testkit/src/chromium.test-support.js';
import { portal } from './portal-app.js';

/*
 * What the portal's browser tests (portal-browser-*.test.ts) run on: a Herald with the webhook and SSE transports
 * behind the portal app, a webhook receiver, Chromium, and the helpers that drive them, started by
 * usePortalBrowser() for each file: one Chromium serves every test of a file, and the files, each with its own, run
 * side by side, on the app and the element that the global setup (built-portal.test-support.ts) built once.
 */

const packageDirectory = resolve(import.meta.dirname, '..');
// The docs' screenshots are refreshed on request, so that a test run leaves the checkout as it found it.
const imagesDirectory = process.env.HERALD_DOCS_SCREENSHOTS === '1' ? resolve(packageDirectory, '../../docs/images') : resolve(packageDirectory, 'test-results');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
export const adminKey = 'admin-portal-browser-test-0123456789abcdef';
const embeddedPage = resolve(packageDirectory, '../../docs/portal-embedded.html');

export let herald: Herald<EventMapOf<typeof testEventTypes>>;
/** The SSE transport of `herald`: its `connections` are the streams open on the server. */
export let sseTransport: SseTransport;
export let baseUrl: string;
let receiver: Server;
export let hookUrl: string;
/** How the test servers answer, as a test sets it (and puts back). */
export const testServer = {
  /** What the receiver answers: 200 "thanks", or 500 "receiver down". */
  receiverFails: false,
  /** What the test server answers new requests of `/v1/stream` with, as a proxy in front of a server that is down would; none: Herald's stream. */
  streamAnswer: undefined as { status: number; retryAfter?: string } | undefined,
  /** Whether the test server drops every request of the API made with a portal token, unanswered, as when Herald is down or out of reach. */
  portalUnreachable: false,
  /**
   * The paths of the API (`/./`: every one) whose requests made with a portal token the test server takes and never
   * answers, as a Herald that hangs does (see heldRequests); none: it answers them.
   */
  portalHangs: undefined as RegExp | undefined,
};
/** The requests the test server holds unanswered while `testServer.portalHangs`, until the browser ends them. */
export const heldRequests = new Set<ServerResponse>();
/** When the test server took each request of `/v1/stream` it answered with `testServer.streamAnswer` (`performance.now()`). */
export const streamAnswerTimes: number[] = [];
/** The bodies the receiver was sent, by path. */
export const received = new Map<string, string[]>();
export let browser: Browser;
/** The element built from src/herald-portal.ts as one ES module, for the embedded page (by built-portal.test-support.ts). */
export const elementBundle = inject('portalElementBundle');
/** The app built from the sources under test, apart from app/dist (by built-portal.test-support.ts). */
export const appDirectory = inject('portalAppDirectory');

export async function admin(method: string, path: string, body?: unknown, key = adminKey, server = baseUrl) {
  const response = await fetch(`${server}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export async function openPortal(consumer: string, key = adminKey, timezoneId?: string): Promise<Page> {
  const session = await admin('POST', '/v1/portal-sessions', { consumer, ttl: 600 }, key);
  expect(session.status).toBe(201);
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 }, bypassCSP: true, ...(timezoneId ? { timezoneId } : {}) });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(session.body.url);
  await page.getByTestId('portal-subscriptions').waitFor();
  expect(problems).toEqual([]);
  return page;
}

/** docs/portal-embedded.html with a session of `consumer`, in a window `width` px wide, once its subscriptions are shown. */
export async function openEmbedded(consumer: string, width: number): Promise<Page> {
  const session = await admin('POST', '/v1/portal-sessions', { consumer, ttl: 600 });
  expect(session.status).toBe(201);
  const page = await browser.newPage({ viewport: { width, height: 800 }, bypassCSP: true });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${baseUrl}/embedded/?token=${session.body.token}`);
  await page.getByTestId('portal-subscriptions').waitFor();
  expect(problems).toEqual([]);
  return page;
}

/** How wide the page is laid out: wider than the window, it scrolls sideways. */
export const pageWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth);

/** The text of `locator`, each run of white space one space. */
export const wordsOf = async (locator: Locator) => (await locator.textContent())?.replace(/\s+/g, ' ').trim();

/** The subscription `row` shows the endpoint `url` under its id, wrapped in its cell: none of it sticks out. */
export async function expectTarget(row: Locator, url: string): Promise<void> {
  const target = row.getByTestId('subscription-target');
  expect(await target.textContent()).toBe(url);
  const fits = await target.evaluate((element) => {
    const cell = element.closest('td')?.getBoundingClientRect();
    return element.scrollWidth <= element.clientWidth && cell !== undefined && element.getBoundingClientRect().right <= cell.right;
  });
  expect(fits).toBe(true);
}

/** axe-core on the page as it is now (injected, which is why the pages bypass the CSP): no serious or critical violations. */
export async function expectAccessible(page: Page, view: string): Promise<void> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate(async () => {
    const result = await (window as unknown as { axe: { run: (context: Document) => Promise<{ violations: { id: string; impact: string; help: string }[] }> } }).axe.run(document);
    return result.violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
  });
  expect({ view, violations }).toEqual({ view, violations: [] });
}

export const screenshot = (page: Page, name: string) => page.screenshot({ path: resolve(imagesDirectory, `portal-${name}.png`), fullPage: true });

/** Clicks Refresh until `selector` shows (the deliveries view looks again by itself only at deliveries due within a minute, and at a running replay). */
export async function refreshUntil(page: Page, selector: string, timeout = 30_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while ((await page.locator(selector).count()) === 0) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${selector}`);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForTimeout(250);
  }
}

/** A page of the test server with the element's module loaded and no element yet: a provider's script adds it, as a test does. */
export async function openElementPage(width = 1280): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 800 }, bypassCSP: true });
  await page.goto(`${baseUrl}/element/`);
  await page.evaluate(() => customElements.whenDefined('herald-portal'));
  return page;
}

/** Adds, as a provider's script does, a `<herald-portal>` with `attributes` to `page`, a provider's page of serveElementPage(). */
export async function addPortal(page: Page, attributes: Record<string, string>): Promise<void> {
  await page.evaluate((given) => {
    const element = document.createElement('herald-portal');
    for (const [name, value] of Object.entries(given)) element.setAttribute(name, value);
    document.querySelector('main')?.append(element);
  }, attributes);
}

/** Serves a provider's page with the element's module and no element yet, at `/element/` of `app`: a test's script adds the element. */
export function serveElementPage(app: Express): void {
  app.get('/embedded/herald-portal.js', (_req, res) => res.type('text/javascript').send(elementBundle));
  app.get('/element/', (_req, res) =>
    res
      .type('html')
      .send('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A provider\'s page</title></head><body><main></main><script type="module" src="/embedded/herald-portal.js"></script></body></html>'),
  );
}

/** Starts, before the file's tests, the Herald, the receiver and the Chromium they share, and closes them after (the page is built once, by the global setup). */
export function usePortalBrowser(): void {
  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        received.set(req.url ?? '', [...(received.get(req.url ?? '') ?? []), body]);
        res.statusCode = testServer.receiverFails ? 500 : 200;
        res.end(testServer.receiverFails ? 'receiver down' : 'thanks');
      });
    });
    await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    sseTransport = sse();
    herald = createHerald({
      database: ':memory:',
      logLevel: 'silent',
      env: {},
      adminKey,
      eventTypes: testEventTypes,
      transports: [webhook({ allowPrivate: true, pollInterval: 50 }), sseTransport],
    });
    const app = express();
    app.use('/portal', portal({ directory: appDirectory }));
    // docs/portal-embedded.html as a provider would serve it: with the API's address and a portal token written in.
    app.get('/embedded/', (req, res) => {
      const page = readFileSync(embeddedPage, 'utf8')
        .replace('base-url="https://events.example.com"', `base-url="${baseUrl}"`)
        .replace('token="hp_from_your_backend"', `token="${String(req.query.token)}"`);
      res.type('html').send(page);
    });
    serveElementPage(app);
    app.use('/v1', (req, res, next) => {
      if (!req.headers.authorization?.startsWith('Bearer hp_')) return next();
      if (testServer.portalUnreachable) return req.socket.destroy();
      if (!testServer.portalHangs?.test(new URL(req.originalUrl, 'http://test').pathname)) return next();
      heldRequests.add(res);
      res.on('close', () => heldRequests.delete(res));
    });
    app.use('/v1/stream', (_req, res, next) => {
      const answer = testServer.streamAnswer;
      if (!answer) return next();
      streamAnswerTimes.push(performance.now());
      if (answer.retryAfter) res.setHeader('retry-after', answer.retryAfter);
      res.status(answer.status).type('text/plain').send('the stream is not available');
    });
    app.use(herald.app);
    const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handler: app, handleSignals: false });
    baseUrl = `http://127.0.0.1:${port}`;
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await herald?.close();
    await new Promise((done) => receiver?.close(done));
  });
}
