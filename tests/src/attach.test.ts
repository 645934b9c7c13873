import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Parser } from '@asyncapi/parser';
import type { HeraldEvent } from '@herald/core';
import { createHerald, errorHandler, type Herald } from '@herald/server';
import { sse } from '@herald/sse';
import { testEventTypes, waitFor } from '@herald/testkit';
import { websocket } from '@herald/websocket';
import { Validator } from '@seriousme/openapi-schema-validator';
import { EventSource } from 'eventsource';
import express, { type Express } from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';

const adminKey = 'admin-key-of-the-attach-tests-0123456789abcdef';

function startHerald(): Herald<any> {
  const herald = createHerald({
    database: ':memory:',
    logLevel: 'silent',
    env: {},
    adminKey,
    eventTypes: testEventTypes,
    transports: [websocket(), sse()],
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
async function existingAppWithHerald(ownSocketsMade: 'before Herald' | 'after Herald' = 'before Herald') {
  const app: Express = express();
  app.get('/before', (_req, res) => {
    res.json({ route: 'before' });
  });
  const server = createServer(app);
  if (ownSocketsMade === 'before Herald') echoSockets(server, '/app-ws');
  const herald = startHerald();
  await herald.attach(server, { basePath: '/events' });

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

  it('stops answering when closed, and leaves the server to the app', async () => {
    const { herald, baseUrl } = await existingAppWithHerald();
    await herald.close();
    expect(await (await fetch(`${baseUrl}/events/healthz`)).json()).toEqual({ answeredBy: 'the app' });
    expect(await (await fetch(`${baseUrl}/before`)).json()).toEqual({ route: 'before' });
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
