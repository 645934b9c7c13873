import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineEventType, type EventMapOf, type HeraldEvent } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import { sse } from '@herald/sse';
import { restClient, waitFor } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';

// Issue 20: one payload filter, the same on every transport.

const eventTypes = [
  defineEventType('order.created', z.object({ total: z.number(), customer: z.object({ country: z.string() }).optional() })),
  defineEventType('invoice.paid', z.object({ amount: z.number() })),
] as const;

const filter = { 'data.total': { $gte: 100 } };
const encoded = encodeURIComponent(JSON.stringify(filter));

interface Inbox {
  url: string;
  events: HeraldEvent[];
  close(): Promise<void>;
}

async function startInbox(): Promise<Inbox> {
  const events: HeraldEvent[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      events.push(JSON.parse(body) as HeraldEvent);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    events,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A herald.v1 client: every server message it got, in order, and how the connection closed. */
interface Socket {
  ws: WebSocket;
  messages: any[];
  closed?: { code: number; reason: string };
  send(message: unknown): void;
  events(id: string): HeraldEvent[];
}

async function connect(baseUrl: string, key: string): Promise<Socket> {
  const ws = new WebSocket(`${baseUrl.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
  const socket: Socket = {
    ws,
    messages: [],
    send: (message) => ws.send(JSON.stringify(message)),
    events: (id) => socket.messages.filter((message) => message.type === 'event' && message.id === id).map((message) => message.event),
  };
  ws.on('message', (data) => socket.messages.push(JSON.parse(String(data))));
  ws.on('close', (code, reason) => (socket.closed = { code, reason: String(reason) }));
  await waitFor(() => socket.messages.some((message) => message.type === 'ready'), 'ready');
  return socket;
}

function eventSource(url: string, key: string): { source: EventSource; events: HeraldEvent[] } {
  const source = new EventSource(url, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${key}` } }),
  });
  const events: HeraldEvent[] = [];
  source.addEventListener('order.created', (message) => events.push(JSON.parse(message.data) as HeraldEvent));
  return { source, events };
}

const totals = (events: readonly HeraldEvent[]) => events.map((event) => (event.data as { total: number }).total);
const upTo200 = Array.from({ length: 100 }, (_, i) => 100 + i);

let herald: Herald<EventMapOf<typeof eventTypes>>;
let baseUrl: string;
let inbox: Inbox;
let api: ReturnType<typeof restClient>['api'];
let key: string;
const sockets: Socket[] = [];
const sources: EventSource[] = [];

beforeAll(async () => {
  inbox = await startInbox();
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  herald = createHerald({
    database: ':memory:',
    logLevel: 'silent',
    env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' },
    adminKey,
    eventTypes,
    transports: [webhook({ pollInterval: 50 }), websocket(), sse()],
  });
  const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  baseUrl = `http://127.0.0.1:${port}`;
  const client = restClient(baseUrl, adminKey);
  api = client.api;
  key = await client.consumerKey('acme');
});

afterAll(async () => {
  for (const socket of sockets) socket.ws.close();
  for (const source of sources) source.close();
  await herald?.close();
  await inbox?.close();
});

describe('the same filter on a webhook, a WebSocket and an SSE subscription (issue 20)', () => {
  it('of 200 events with totals 0 to 199, each receives exactly the 100 matching, in order, live and on replay or resume', async () => {
    // `ordered`: one delivery at a time, in seq order (by default a webhook delivers up to 10 at once).
    const hook = await api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.created'], config: { url: inbox.url, ordered: true }, filter }, key);
    expect(hook.status).toBe(201);
    expect(hook.body.filter).toEqual(filter);

    const socket = await connect(baseUrl, key);
    sockets.push(socket);
    socket.send({ type: 'subscribe', id: 'big', types: ['order.created'], filter });
    await waitFor(() => socket.messages.some((message) => message.type === 'subscribed'), 'subscribed');

    const stream = eventSource(`${baseUrl}/v1/stream?types=order.created&filter=${encoded}`, key);
    sources.push(stream.source);
    await new Promise((resolve) => stream.source.addEventListener('open', resolve, { once: true }));

    for (let total = 0; total < 200; total++) await herald.publish({ type: 'order.created', data: { total } });

    await waitFor(() => inbox.events.length >= 100 && socket.events('big').length >= 100 && stream.events.length >= 100, '100 events on each transport', 30_000);
    // Nothing more comes: a marker published after them arrives alone.
    await herald.publish({ type: 'order.created', data: { total: 1000 } });
    await waitFor(() => inbox.events.length > 100 && socket.events('big').length > 100 && stream.events.length > 100, 'the marker', 30_000);
    expect(totals(socket.events('big'))).toEqual([...upTo200, 1000]);
    expect(totals(stream.events)).toEqual([...upTo200, 1000]);
    expect(totals(inbox.events)).toEqual([...upTo200, 1000]);

    // Replay and resume apply the filter too.
    socket.send({ type: 'subscribe', id: 'replayed', types: ['order.created'], after: 0, filter });
    const resumed = eventSource(`${baseUrl}/v1/stream?types=order.created&filter=${encoded}&lastEventId=0`, key);
    sources.push(resumed.source);
    const replay = await api('POST', `/v1/subscriptions/${hook.body.id}/replay`, { after: 0 }, key);
    expect(replay.status).toBeLessThan(300);
    await waitFor(
      () => socket.events('replayed').length >= 101 && resumed.events.length >= 101 && inbox.events.length >= 202,
      'the replays',
      30_000,
    );
    expect(totals(socket.events('replayed'))).toEqual([...upTo200, 1000]);
    expect(totals(resumed.events)).toEqual([...upTo200, 1000]);
    expect(totals(inbox.events.slice(101))).toEqual([...upTo200, 1000]);
  });

  it('reads the log through a filter: GET /v1/events?filter= answers the matching events and goes on past the others', async () => {
    const page = await api('GET', `/v1/events?types=order.created&filter=${encoded}&limit=50`, undefined, key);
    expect(page.status).toBe(200);
    expect(totals(page.body.data)).toEqual(upTo200.slice(0, 50));
    expect(page.body.hasMore).toBe(true);
    const rest = await api('GET', `/v1/events?types=order.created&filter=${encoded}&limit=1000&after=${page.body.next}`, undefined, key);
    expect(totals(rest.body.data)).toEqual([...upTo200.slice(50), 1000]);
    const none = await api('GET', `/v1/events?filter=${encodeURIComponent(JSON.stringify({ 'data.total': { $gt: 5000 } }))}`, undefined, key);
    expect(none.body.data).toEqual([]);
    expect(none.body.next).toBe(herald.bus.latest);
  });
});

describe('a durable subscription with a filter', () => {
  it('moves its cursor past the events the filter refuses', async () => {
    const durable = await api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.created'], filter }, key);
    expect(durable.status).toBe(201);
    const socket = await connect(baseUrl, key);
    sockets.push(socket);
    socket.send({ type: 'subscribe', id: 'd', subscription: durable.body.id });
    await waitFor(() => socket.messages.some((message) => message.type === 'subscribed' && message.id === 'd'), 'subscribed');

    const { event: taken } = await herald.publish({ type: 'order.created', data: { total: 500 } });
    await waitFor(() => socket.events('d').length === 1, 'the matching event');
    socket.send({ type: 'ack', id: 'd', seq: taken.seq });
    let refused = 0;
    for (let total = 0; total < 5; total++) refused = (await herald.publish({ type: 'order.created', data: { total } })).event.seq;
    const cursor = async () => (await api('GET', `/v1/subscriptions/${durable.body.id}`, undefined, key)).body.cursor as number;
    await waitFor(async () => (await cursor()) === refused, 'the cursor past the refused events', 15_000);
    expect(socket.events('d').map((event) => event.seq)).toEqual([taken.seq]);
  });
});

const deep = (levels: number): Record<string, unknown> => (levels === 1 ? { 'data.total': 1 } : { $not: deep(levels - 1) });

const badFilters: { name: string; filter: Record<string, unknown>; path: (string | number)[] }[] = [
  { name: 'an unknown operator', filter: { 'data.total': { $regex: '^1' } }, path: ['filter', 'data.total', '$regex'] },
  { name: 'a wrong operand type', filter: { 'data.total': { $in: 100 } }, path: ['filter', 'data.total', '$in'] },
  { name: 'nesting too deep', filter: deep(6), path: ['filter', '$not', '$not', '$not', '$not', '$not'] },
  { name: 'a path the type does not have', filter: { 'data.totl': { $gte: 1 } }, path: ['filter', 'data.totl'] },
];

describe.each(badFilters)('a filter with $name is refused on every entry point, with the path of the mistake', ({ filter: bad, path }) => {
  const expectProblem = (answer: { status: number; body: any }) => {
    expect(answer.status).toBe(422);
    expect(answer.body.errors[0].path).toEqual(path);
  };

  it('POST /v1/subscriptions', async () => {
    expectProblem(await api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.created'], filter: bad }, key));
  });

  it('PATCH /v1/subscriptions/:id, which keeps the subscription as it was', async () => {
    const created = await api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.created'], filter }, key);
    expectProblem(await api('PATCH', `/v1/subscriptions/${created.body.id}`, { filter: bad }, key));
    expect((await api('GET', `/v1/subscriptions/${created.body.id}`, undefined, key)).body.filter).toEqual(filter);
    await api('DELETE', `/v1/subscriptions/${created.body.id}`, undefined, key);
  });

  it('GET /v1/stream (SSE)', async () => {
    const response = await fetch(`${baseUrl}/v1/stream?types=order.created&filter=${encodeURIComponent(JSON.stringify(bad))}`, {
      headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
    });
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expectProblem({ status: response.status, body: await response.json() });
  });

  it('GET /v1/events', async () => {
    expectProblem(await api('GET', `/v1/events?types=order.created&filter=${encodeURIComponent(JSON.stringify(bad))}`, undefined, key));
  });

  it("the WebSocket subscribe message: an invalid-filter error for that subscription; the connection and its others go on", async () => {
    const socket = await connect(baseUrl, key);
    sockets.push(socket);
    socket.send({ type: 'subscribe', id: 'good', types: ['order.created'] });
    await waitFor(() => socket.messages.some((message) => message.type === 'subscribed' && message.id === 'good'), 'the first subscription');
    socket.send({ type: 'subscribe', id: 'bad', types: ['order.created'], filter: bad });
    await waitFor(() => socket.messages.some((message) => message.type === 'error'), 'the refusal');
    const error = socket.messages.find((message) => message.type === 'error');
    expect(error).toMatchObject({ id: 'bad', code: 'invalid-filter' });
    expect(error.message).toContain(path.join('.'));
    // The id is free again: the refused subscription was never made.
    socket.send({ type: 'subscribe', id: 'bad', types: ['order.created'], filter });
    await waitFor(() => socket.messages.some((message) => message.type === 'subscribed' && message.id === 'bad'), 'the subscription with a filter that fits');
    await herald.publish({ type: 'order.created', data: { total: 150 } });
    await waitFor(() => socket.events('good').length === 1 && socket.events('bad').length === 1, 'the event on both subscriptions');
    expect(socket.closed).toBeUndefined();
  });
});

describe('PATCH checks a kept filter against new types', () => {
  it('refuses types whose schemas lack a path of the filter, and removes a filter with null', async () => {
    const created = await api('POST', '/v1/subscriptions', { transport: 'sse', types: ['order.created'], filter }, key);
    expect(created.status).toBe(201);
    const retyped = await api('PATCH', `/v1/subscriptions/${created.body.id}`, { types: ['invoice.paid'] }, key);
    expect(retyped.status).toBe(422);
    expect(retyped.body.errors[0].path).toEqual(['filter', 'data.total']);
    const cleared = await api('PATCH', `/v1/subscriptions/${created.body.id}`, { filter: null, types: ['invoice.paid'] }, key);
    expect(cleared.status).toBe(200);
    expect(cleared.body).not.toHaveProperty('filter');
    expect(cleared.body.types).toEqual(['invoice.paid']);
  });
});
