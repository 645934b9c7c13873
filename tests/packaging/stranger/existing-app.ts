/**
 * A stranger's express app, which has its own routes and its own WebSocket, with Herald added under
 * `/events`. The packaging test copies it into a new npm project that installed the packed tarballs,
 * compiles it there with `skipLibCheck: false`, runs it, and reads the JSON line it prints last.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeraldSocket, openEventStream } from '@herald/client';
import { defineEventType } from '@herald/core';
import { createHerald, errorHandler } from '@herald/server';
import { sse } from '@herald/sse';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { EventSource } from 'eventsource';
import express from 'express';
import { Webhook } from 'standardwebhooks';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';

const orderCreated = defineEventType('order.created', z.object({ orderId: z.string(), total: z.number() }), { description: 'An order was placed' });

// The app as it was: a route, and a WebSocket server of its own on its HTTP server.
const app = express();
app.get('/before', (_req, res) => {
  res.json({ route: 'before' });
});
const server = createServer(app);
const ownSockets = new WebSocketServer({ server, path: '/app-ws' });
ownSockets.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo: ${String(data)}`)));

// Herald, added under /events.
const adminKey = 'the-admin-key-of-an-existing-app-0123456789';
const herald = createHerald({
  database: ':memory:',
  adminKey,
  logLevel: 'warn',
  eventTypes: [orderCreated],
  transports: [webhook({ allowPrivate: true }), websocket(), sse()],
});
await herald.attach(server, { basePath: '/events' });

// Routes added after Herald: a webhook receiver, a route that publishes, and Herald's errors as problem+json.
let webhookSecret = '';
const webhooks: { id: string; seq: number; type: string }[] = [];
app.post('/hooks', express.text({ type: '*/*' }), (req, res) => {
  const event = new Webhook(webhookSecret).verify(req.body as string, req.headers as Record<string, string>) as { id: string; seq: number; type: string };
  webhooks.push(event);
  res.status(204).end();
});
app.post('/orders', express.json(), async (req, res) => {
  const { event } = await herald.publish({ type: 'order.created', data: req.body });
  res.status(201).json({ seq: event.seq });
});
app.get('/after', (_req, res) => {
  res.json({ route: 'after' });
});
app.use(errorHandler());

await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function call(method: string, path: string, body?: unknown, key = adminKey): Promise<{ status: number; type: string | null; body: any }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type'), body: text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function echo(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${base.replace('http', 'ws')}/app-ws`);
    socket.once('open', () => socket.send(text));
    socket.once('message', (data) => {
      resolve(String(data));
      socket.close();
    });
    socket.once('error', reject);
  });
}

// A consumer: a webhook to the app's own receiver, and WebSocket and SSE clients, all under /events.
const subscription = await call('POST', '/events/v1/subscriptions', { transport: 'webhook', consumer: 'shop', types: ['order.*'], config: { url: `${base}/hooks` } });
webhookSecret = subscription.body.config.secret;
const consumerKey = (await call('POST', '/events/v1/keys', { role: 'consumer', consumer: 'shop' })).body.key as string;
const streamToken = (await call('POST', '/events/v1/stream-tokens', { types: ['order.*'] }, consumerKey)).body.token as string;

const overWebSocket: { seq: number; type: string }[] = [];
const socket = new HeraldSocket({ url: `${base}/events/v1/ws`, token: consumerKey, WebSocket });
const subscribed = new Promise((resolve) => socket.on('subscribed', resolve));
socket.subscribe(['order.*'], (event) => {
  overWebSocket.push(event);
});
const overSse: { seq: number; type: string }[] = [];
let sseOpen = false;
const stream = openEventStream(
  { url: base, path: '/events/v1/stream', types: ['order.*'], token: streamToken, EventSource },
  { event: (event) => overSse.push(event), open: () => (sseOpen = true) },
);
await subscribed;
await until('the SSE stream to open', () => sseOpen);

// A publish, from a route of the app.
const published = await call('POST', '/orders', { orderId: 'o-1', total: 42 });
await until('the event over WebSocket, SSE and the webhook', () => overWebSocket.length > 0 && overSse.length > 0 && webhooks.length > 0);
const refused = await call('POST', '/orders', { orderId: 'o-2', total: 'forty-two' });

const report = {
  published: published.body,
  overWebSocket: overWebSocket.map(({ seq, type }) => ({ seq, type })),
  overSse: overSse.map(({ seq, type }) => ({ seq, type })),
  webhooks: webhooks.map(({ seq, type }) => ({ seq, type })),
  refused: { status: refused.status, type: refused.type, problem: refused.body.type },
  heraldAtRoot: (await call('GET', '/v1/event-types')).status,
  heraldUnderBasePath: (await call('GET', '/events/v1/event-types')).status,
  openApiServers: (await call('GET', '/events/openapi.json')).body.servers,
  ownRoutes: [(await call('GET', '/before')).body, (await call('GET', '/after')).body],
  ownWebSocket: await echo('ping'),
};
socket.close();
stream.close();
await herald.close();
ownSockets.close();
server.closeAllConnections();
await new Promise((resolve) => server.close(resolve));
console.log(JSON.stringify(report));
