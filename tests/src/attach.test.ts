import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Parser } from '@asyncapi/parser';
import { openEventStream, pollEvents, type StreamError, type StreamedEvent } from '@herald/client';
import type { HeraldEvent } from '@herald/core';
import { poll } from '@herald/poll';
import { createHerald, errorHandler, type Herald, type HeraldOptions } from '@herald/server';
import { sse } from '@herald/sse';
import { testEventTypes, waitFor } from '@herald/testkit';
import { websocket } from '@herald/websocket';
import { Validator } from '@seriousme/openapi-schema-validator';
import { EventSource } from 'eventsource';
import express, { type Express } from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
// By path: core's test support is not part of the package.
import { tempDatabase } from '../../packages/core/src/temp-folder.test-support.js';

const adminKey = 'admin-key-of-the-attach-tests-0123456789abcdef';

function startHerald(options: HeraldOptions = {}): Herald<any> {
  const herald = createHerald({
    database: ':memory:',
    logLevel: 'silent',
    env: {},
    adminKey,
    eventTypes: testEventTypes,
    transports: [websocket(), sse()],
    ...options,
  });
  onTestFinished(() => herald.close());
  return herald;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An app's own WebSocket server, on the app's HTTP server as the ws docs show it: `{ server, path }`. */
function echoSockets(server: Server, path: string): WebSocketServer {
  const sockets = new WebSocketServer({ server, path });
  sockets.on('connection', (socket) => socket.on('message', (data) => socket.send(`${path} echoes ${data}`)));
  onTestFinished(() => new Promise<void>((resolve) => sockets.close(() => resolve())));
  return sockets;
}

function echoOver(url: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('open', () => socket.send(text));
    socket.once('message', (data) => {
      resolve(String(data));
      socket.close();
    });
    socket.once('error', reject);
  });
}

/** The HTTP status an upgrade request is answered with (101 when it became a WebSocket). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, 'herald.v1', { headers });
    socket.once('upgrade', (response) => {
      resolve(response.statusCode ?? 0);
      socket.close();
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      response.resume();
    });
    socket.once('error', reject);
  });
}

/**
 * An existing express app with its own routes and WebSocket server, and Herald attached to its server under
 * `/events`. One `{ server, path }` ws server per HTTP server: two would answer each other's upgrades 400.
 */
async function existingAppWithHerald(ownSocketsMade: 'before Herald' | 'after Herald' = 'before Herald', basePath = '/events') {
  const app: Express = express();
  app.get('/before', (_req, res) => {
    res.json({ route: 'before' });
  });
  const server = createServer(app);
  if (ownSocketsMade === 'before Herald') echoSockets(server, '/app-ws');
  const herald = startHerald();
  await herald.attach(server, { basePath });

  app.get('/after', (_req, res) => {
    res.json({ route: 'after' });
  });
  app.post('/events/notes', express.json(), (req, res) => {
    res.status(201).json({ note: req.body });
  });
  app.post('/events/upload', express.text(), (req, res) => {
    res.json({ text: req.body });
  });
  app.use((_req, res) => {
    res.status(404).json({ answeredBy: 'the app' });
  });
  if (ownSocketsMade === 'after Herald') echoSockets(server, '/app-ws');
  const baseUrl = await listen(server);
  return { app, server, herald, baseUrl, wsUrl: baseUrl.replace('http', 'ws') };
}

function receiveOverWebSocket(url: string): Promise<{ events: HeraldEvent[]; socket: WebSocket }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, 'herald.v1', { headers: { authorization: `Bearer ${adminKey}` } });
    const events: HeraldEvent[] = [];
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'ready') socket.send(JSON.stringify({ type: 'subscribe', id: 's1', types: ['order.*'] }));
      if (message.type === 'subscribed') resolve({ events, socket });
      if (message.type === 'event') events.push(message.event);
    });
    socket.once('error', reject);
    onTestFinished(() => socket.close());
  });
}

function receiveOverSse(url: string): { events: HeraldEvent[]; opened: Promise<void> } {
  const source = new EventSource(url, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${adminKey}` } }),
  });
  onTestFinished(() => source.close());
  const events: HeraldEvent[] = [];
  source.addEventListener('order.created', (message) => events.push(JSON.parse(message.data)));
  const opened = new Promise<void>((resolve, reject) => {
    source.onopen = () => resolve();
    source.onerror = (error) => reject(error);
  });
  return { events, opened };
}

describe('herald.attach(server, { basePath }) on an existing express app (issue 17)', () => {
  it('serves REST, WebSocket and SSE under the base path, and delivers a publish over both streams', async () => {
    const { herald, baseUrl, wsUrl } = await existingAppWithHerald('after Herald');
    const authorised = { headers: { authorization: `Bearer ${adminKey}` } };

    const catalog = await fetch(`${baseUrl}/events/v1/event-types`, authorised);
    expect(catalog.status).toBe(200);
    expect(((await catalog.json()) as { data: unknown[] }).data).toHaveLength(testEventTypes.length);
    // Not at the root: that is the app's.
    expect(await (await fetch(`${baseUrl}/v1/event-types`, authorised)).json()).toEqual({ answeredBy: 'the app' });
    expect(await upgradeStatus(`${wsUrl}/v1/ws`, authorised.headers)).not.toBe(101);

    const overWebSocket = await receiveOverWebSocket(`${wsUrl}/events/v1/ws`);
    const overSse = receiveOverSse(`${baseUrl}/events/v1/stream?types=order.*`);
    await overSse.opened;
    const { event } = await herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => overWebSocket.events.length === 1 && overSse.events.length === 1, 'the event over WebSocket and SSE');
    expect(overWebSocket.events[0]).toMatchObject({ id: event.id, seq: event.seq, data: { n: 1 } });
    expect(overSse.events[0]).toMatchObject({ id: event.id, seq: event.seq, data: { n: 1 } });
  });

  it.each(['before Herald', 'after Herald'] as const)("leaves the app's own routes, added before and after it, and its own WebSocket server, made %s, working", async (made) => {
    const { baseUrl, wsUrl } = await existingAppWithHerald(made);
    expect(await (await fetch(`${baseUrl}/before`)).json()).toEqual({ route: 'before' });
    expect(await (await fetch(`${baseUrl}/after`)).json()).toEqual({ route: 'after' });
    expect(await echoOver(`${wsUrl}/app-ws`, 'hello')).toBe('/app-ws echoes hello');
    expect(await upgradeStatus(`${wsUrl}/events/v1/ws`, { authorization: `Bearer ${adminKey}` })).toBe(101);

    // Under the base path too: Herald takes only its own routes, and reads no body that is not theirs.
    const note = await fetch(`${baseUrl}/events/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"mine"}' });
    expect(note.status).toBe(201);
    expect(await note.json()).toEqual({ note: { text: 'mine' } });
    const upload = await fetch(`${baseUrl}/events/upload`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'plain text' });
    expect(await upload.json()).toEqual({ text: 'plain text' });
    const unknown = await fetch(`${baseUrl}/events/v1/nothing-here`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ answeredBy: 'the app' });
  });

  it('leaves upgrade requests that are not its own to the other listeners and never ends them; alone, it answers them 404', async () => {
    const server = createServer((_req, res) => res.end());
    const herald = startHerald();
    await herald.attach(server, { basePath: '/events' });
    const upgrades: string[] = [];
    // An upgrade listener of the app's that takes its time and answers with a status of its own.
    const teapot = (request: IncomingMessage, socket: Duplex) => {
      upgrades.push(request.url ?? '');
      setTimeout(() => socket.end("HTTP/1.1 418 I'm a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), 100);
    };
    server.on('upgrade', teapot);
    const wsUrl = (await listen(server)).replace('http', 'ws');

    expect(await upgradeStatus(`${wsUrl}/elsewhere`)).toBe(418);
    expect(await upgradeStatus(`${wsUrl}/events/v1/not-a-socket`)).toBe(418);
    expect(await upgradeStatus(`${wsUrl}/events/v1/ws`, { authorization: `Bearer ${adminKey}` })).toBe(101);
    expect(upgrades).toEqual(['/elsewhere', '/events/v1/not-a-socket']);

    server.off('upgrade', teapot);
    expect(await upgradeStatus(`${wsUrl}/elsewhere`)).toBe(404);
  });

  it('moves the OpenAPI and AsyncAPI servers with the base path, and the documents stay valid', async () => {
    const { baseUrl } = await existingAppWithHerald();
    // Everything read before the validation, which keeps this process busy for seconds.
    const openApi = (await (await fetch(`${baseUrl}/events/openapi.json`)).json()) as any;
    const asyncApi = (await (await fetch(`${baseUrl}/events/asyncapi.json`)).json()) as any;
    const page = await (await fetch(`${baseUrl}/events/docs`)).text();

    expect(openApi.servers).toEqual([{ url: '/events' }]);
    expect(Object.keys(openApi.paths)).toEqual(expect.arrayContaining(['/v1/events', '/v1/ws', '/v1/stream']));
    expect(asyncApi.servers.websocket).toMatchObject({ pathname: '/events', protocol: 'ws' });
    expect(asyncApi.servers.sse).toMatchObject({ pathname: '/events', protocol: 'http' });
    expect(asyncApi.channels.websocket.address).toBe('/v1/ws');
    // The page loads the documents next to it, wherever it is mounted.
    expect(page).toContain('href="openapi.json"');
    expect(page).not.toMatch(/["']\/(openapi|asyncapi)\.json/);

    const validator = new Validator();
    expect((await validator.validate(openApi)).errors ?? []).toEqual([]);
    const { diagnostics } = await new Parser().parse(JSON.stringify(asyncApi));
    expect(diagnostics.filter((diagnostic) => diagnostic.severity <= 1)).toEqual([]);
  });

  it.each([
    ['/events', '/events'],
    ['the root', ''],
  ])('once closed, answers its own routes and upgrades under %s 503 with Retry-After, not the app (healthz 200, readyz 503), and leaves every other request to the app', async (_under, basePath) => {
    const { herald, baseUrl, wsUrl } = await existingAppWithHerald('before Herald', basePath);
    await herald.close();
    const authorised = { headers: { authorization: `Bearer ${adminKey}` } };

    for (const path of ['/v1/event-types', '/v1/events?after=0', '/v1/stream?types=order.*', '/openapi.json', '/metrics']) {
      const refused = await fetch(`${baseUrl}${basePath}${path}`, authorised);
      expect({ path, status: refused.status, type: refused.headers.get('content-type'), retryAfter: refused.headers.get('retry-after') }).toEqual({
        path,
        status: 503,
        type: expect.stringMatching(/^application\/problem\+json/),
        retryAfter: '1',
      });
      expect(await refused.json()).toMatchObject({ type: 'urn:herald:problem:unavailable', status: 503 });
      // The app's server goes on: its keep-alive connection is not closed for Herald's refusal.
      expect(refused.headers.get('connection')).not.toBe('close');
    }
    const publish = await fetch(`${baseUrl}${basePath}/v1/events`, {
      method: 'POST',
      headers: { ...authorised.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'order.created', data: { n: 1 } }),
    });
    expect(publish.status).toBe(503);
    // The app's own WebSocket server, on the same HTTP server, never sees Herald's upgrades.
    expect(await upgradeStatus(`${wsUrl}${basePath}/v1/ws`, authorised.headers)).toBe(503);
    expect(await (await fetch(`${baseUrl}${basePath}/healthz`)).json()).toEqual({ status: 'ok' });
    const readyz = await fetch(`${baseUrl}${basePath}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toMatchObject({ type: 'urn:herald:problem:not-ready' });

    // Everything else is the app's, as it was.
    expect(await (await fetch(`${baseUrl}/before`)).json()).toEqual({ route: 'before' });
    expect(await (await fetch(`${baseUrl}/after`)).json()).toEqual({ route: 'after' });
    const note = await fetch(`${baseUrl}/events/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"mine"}' });
    expect(await note.json()).toEqual({ note: { text: 'mine' } });
    expect(await (await fetch(`${baseUrl}${basePath}/v1/nothing-here`)).json()).toEqual({ answeredBy: 'the app' });
    expect(await echoOver(`${wsUrl}/app-ws`, 'hello')).toBe('/app-ws echoes hello');
  });

  it('while it stops, refuses new requests to its routes with 503 and lets one under way finish before it closes the store', async () => {
    const { herald, baseUrl } = await existingAppWithHerald();
    // A publish under way when close() begins: its body is still coming.
    const publish = request(`${baseUrl}/events/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' } });
    const published = new Promise<IncomingMessage>((resolve, reject) => publish.on('response', resolve).on('error', reject));
    publish.write('{"type": "order.created", ');
    await new Promise((resolve) => setTimeout(resolve, 100));
    let closed = false;
    const closing = herald.close().then(() => (closed = true));

    const refused = await fetch(`${baseUrl}/events/v1/event-types`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ type: 'urn:herald:problem:unavailable' });
    expect((await fetch(`${baseUrl}/events/readyz`)).status).toBe(503);
    expect(await (await fetch(`${baseUrl}/before`)).json()).toEqual({ route: 'before' });
    expect(closed).toBe(false);

    publish.end('"data": {"n": 1}}');
    const answer = await published;
    answer.resume();
    expect(answer.statusCode).toBe(202);
    await closing;
  });

  it('keeps pollEvents and openEventStream going while Herald is closed and a new one on the same database takes its place: every event once, in order', async () => {
    const database = tempDatabase();
    const heraldOn = () => startHerald({ database, transports: [sse({ retry: 100 }), poll()] });
    const app = express();
    app.get('/own', (_req, res) => {
      res.json({ route: 'own' });
    });
    const server = createServer(app);
    const first = heraldOn();
    await first.attach(server, { basePath: '/events' });
    const baseUrl = await listen(server);

    const stop = new AbortController();
    onTestFinished(() => stop.abort());
    const polled: StreamedEvent[] = [];
    const pollStatuses: number[] = [];
    const recordingFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      pollStatuses.push(response.status);
      return response;
    };
    let pollFailure: unknown;
    const polling = (async () => {
      const options = { url: baseUrl, path: '/events/v1/poll', token: adminKey, types: ['order.*'], after: 0, wait: 5, retryDelay: 100, signal: stop.signal, fetch: recordingFetch };
      for await (const event of pollEvents(options)) polled.push(event);
    })().catch((error: unknown) => (pollFailure = error));

    const streamed: StreamedEvent[] = [];
    const streamErrors: StreamError[] = [];
    const authorisedFetch: typeof fetch = (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${adminKey}` } });
    const stream = openEventStream(
      { url: baseUrl, path: '/events/v1/stream', types: ['order.*'], after: 0, EventSource, init: { fetch: authorisedFetch }, initialDelay: 100, maxDelay: 400 },
      { event: (event) => streamed.push(event), error: (error) => streamErrors.push(error) },
    );
    onTestFinished(() => stream.close());

    const published: string[] = [];
    for (const n of [1, 2]) published.push((await first.publish({ type: 'order.created', data: { n } })).event.id);
    await waitFor(() => polled.length === 2 && streamed.length === 2, 'the first two events polled and streamed');

    const pollsBefore = pollStatuses.length;
    await first.close();
    // Both clients are refused while no Herald is there, with a status they retry, and keep trying.
    const refusals = () => [...pollStatuses.slice(pollsBefore).filter((status) => status !== 200), ...streamErrors.flatMap((error) => error.status ?? [])];
    await waitFor(() => pollStatuses.slice(pollsBefore).some((status) => status !== 200) && streamErrors.some((error) => error.status !== undefined), 'both clients refused');
    expect(new Set(refusals())).toEqual(new Set([503]));
    expect(pollFailure).toBeUndefined();
    expect(streamErrors.filter((error) => error.closed)).toEqual([]);
    expect(await (await fetch(`${baseUrl}/own`)).json()).toEqual({ route: 'own' });

    const second = heraldOn();
    await second.attach(server, { basePath: '/events' });
    // It took the closed one's place: only its own listener is left on the server.
    expect(server.listenerCount('upgrade')).toBe(1);
    for (const n of [3, 4]) published.push((await second.publish({ type: 'order.created', data: { n } })).event.id);
    await waitFor(() => polled.length >= 4 && streamed.length >= 4, 'the events published after, polled and streamed', 20_000);

    expect(pollFailure).toBeUndefined();
    expect(streamErrors.filter((error) => error.closed)).toEqual([]);
    expect(polled.map((event) => event.id)).toEqual(published);
    expect(streamed.map((event) => event.id)).toEqual(published);
    stop.abort();
    await polling;
  }, 30_000);

  it('lets go of the server when closed after another Herald was attached under the same base path', async () => {
    const server = createServer((_req, res) => res.end('the app'));
    const first = startHerald();
    await first.attach(server, { basePath: '/events' });
    const second = startHerald();
    await second.attach(server, { basePath: '/events' });
    await first.close();
    expect(server.listenerCount('upgrade')).toBe(1);
    const baseUrl = await listen(server);
    expect((await fetch(`${baseUrl}/events/v1/event-types`, { headers: { authorization: `Bearer ${adminKey}` } })).status).toBe(200);
  });

  it('answers 404 to an upgrade nobody takes when two Heralds are attached under different base paths, and nothing else listens', async () => {
    const server = createServer();
    await startHerald().attach(server, { basePath: '/a' });
    await startHerald().attach(server, { basePath: '/b' });
    const wsUrl = (await listen(server)).replace('http', 'ws');
    expect(await upgradeStatus(`${wsUrl}/elsewhere`)).toBe(404);
    expect(await upgradeStatus(`${wsUrl}/b/v1/ws`, { authorization: `Bearer ${adminKey}` })).toBe(101);
  });

  it('refuses a base path that is not a path', async () => {
    const herald = startHerald();
    const server = createServer();
    for (const basePath of ['events', '/events/', '/events?x=1', '/ev ents']) {
      await expect(herald.attach(server, { basePath }), basePath).rejects.toThrow(/basePath/);
    }
  });
});

describe('herald.app mounted in express with app.use(path, herald.app)', () => {
  it('answers under the prefix, names it in the documents, and lets the routes added after it answer', async () => {
    const herald = startHerald();
    const app = express();
    app.use('/events', herald.app);
    app.get('/events/mine', (_req, res) => {
      res.json({ route: 'mine' });
    });
    const baseUrl = await listen(createServer(app));
    const catalog = await fetch(`${baseUrl}/events/v1/event-types`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(catalog.status).toBe(200);
    expect(await (await fetch(`${baseUrl}/events/mine`)).json()).toEqual({ route: 'mine' });
    expect(((await (await fetch(`${baseUrl}/events/openapi.json`)).json()) as any).servers).toEqual([{ url: '/events' }]);
  });
});

describe('errorHandler() for the routes of the app', () => {
  it("turns Herald's errors and the body parser's into problem+json, and passes any other error on", async () => {
    const herald = startHerald();
    const app = express();
    app.post('/orders', express.json(), async (req, res) => {
      const { event } = await herald.publish({ type: 'order.created', data: req.body });
      res.status(201).json({ seq: event.seq });
    });
    app.get('/broken', () => {
      throw new Error('a bug of the app');
    });
    app.get('/missing', () => {
      throw Object.assign(new Error('no such order'), { status: 404 });
    });
    app.use(errorHandler());
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ appHandled: error.message });
    });
    const baseUrl = await listen(createServer(app));
    const post = (body: unknown) => fetch(`${baseUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    expect((await post({ n: 1 })).status).toBe(201);
    const refused = await post({ n: 'one' });
    expect(refused.status).toBe(422);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await refused.json()) as { type: string; status: number; errors: { path: unknown[] }[] };
    expect(problem).toMatchObject({ type: 'urn:herald:problem:validation-failed', status: 422 });
    expect(problem.errors[0]?.path).toEqual(['data', 'n']);
    expect(JSON.stringify(problem)).not.toMatch(/at .*\.ts/);

    expect(await (await fetch(`${baseUrl}/broken`)).json()).toEqual({ appHandled: 'a bug of the app' });
    // An error of the app's own with a client status is the app's to answer, too.
    expect(await (await fetch(`${baseUrl}/missing`)).json()).toEqual({ appHandled: 'no such order' });

    // express.json()'s refusals, as Herald's own routes answer them: no HTML page, no stack.
    const malformed = await fetch(`${baseUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad' });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await malformed.json()).toEqual({ type: 'urn:herald:problem:malformed-json', title: 'Malformed JSON', status: 400, detail: 'The request body is not valid JSON' });
    const large = await post({ n: 1, pad: 'x'.repeat(200 * 1024) });
    expect(large.status).toBe(413);
    expect(await large.json()).toMatchObject({ type: 'urn:herald:problem:body-too-large', status: 413 });
  });
});
