import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventFilter as CoreEventFilter, FilterCondition as CoreFilterCondition, EventMapOf, HeraldEvent } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import { linger, startTestApp, testEventTypes, waitFor } from '@herald/testkit';
import { type WebSocketOptions, websocket } from '@herald/websocket';
import { describe, expect, expectTypeOf, it, onTestFinished } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startTcpRelay, type TcpRelay, type TcpRelayOptions } from '../../testkit/src/tcp-relay.test-support.js';
import type { EventFilter, FilterCondition } from './event-filter.js';
import { HeraldSocket, type HeraldSocketEvents, type MatchingEvent, type SocketEvent } from './herald-socket.js';

type Events = EventMapOf<typeof testEventTypes>;
const adminKey = 'admin-herald-socket-test-0123456789abcdef';

interface Server {
  herald: Herald<Events>;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** A Herald with the WebSocket transport (and its `options`) on `database`, on `port` (0: any free one). */
async function startServer(database: string, port = 0, options: WebSocketOptions = {}): Promise<Server> {
  const herald = createHerald({ database, logLevel: 'silent', env: {}, adminKey, eventTypes: testEventTypes, transports: [websocket(options)] });
  const listening = await herald.listen({ port, host: '127.0.0.1', handleSignals: false });
  return { herald, port: listening.port, url: `ws://127.0.0.1:${listening.port}/v1/ws`, close: () => herald.close() };
}

async function api(server: Server, method: string, path: string, body?: unknown, key = adminKey): Promise<any> {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return response.json();
}

/**
 * A server of the test's own that speaks the protocol's first steps (it answers `auth` with `ready`, which does not
 * say its `maxPayload`, as servers before it did not), and hands each `subscribe` to `onSubscribe`; it keeps the
 * connections and the subscribes it got.
 */
async function startProtocolServer(onSubscribe: (connection: WebSocket, message: any) => void, { maxPayload }: { maxPayload?: number } = {}) {
  const connections: WebSocket[] = [];
  const subscribes: any[] = [];
  const server = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    ...(maxPayload !== undefined ? { maxPayload } : {}),
    handleProtocols: (protocols) => (protocols.has('herald.v1') ? 'herald.v1' : false),
  });
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  onTestFinished(() => {
    for (const connection of connections) connection.terminate();
  });
  server.on('connection', (connection) => {
    connections.push(connection);
    // A message over maxPayload is an error of the connection (ws closes it with 1009).
    connection.on('error', () => {});
    connection.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'auth') connection.send(JSON.stringify({ type: 'ready', consumer: 'acme' }));
      if (message.type !== 'subscribe') return;
      subscribes.push(message);
      onSubscribe(connection, message);
    });
  });
  await new Promise((resolve) => server.once('listening', resolve));
  return { port: (server.address() as { port: number }).port, connections, subscribes };
}

/** Bytes `relay` holds on their way to the server, on the connections open now. */
function heldForServer(relay: TcpRelay): number {
  return relay.open().reduce((bytes, connection) => bytes + connection.held('client-to-server'), 0);
}

/** A TCP relay to `server`, closed after the test, and the URL of its WebSocket endpoint through it. */
async function relayTo(server: string, options: TcpRelayOptions = {}): Promise<{ relay: TcpRelay; url: string }> {
  const relay = await startTcpRelay(server, options);
  onTestFinished(() => relay.close());
  return { relay, url: `ws://${relay.address}/v1/ws` };
}

async function tempDatabase(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'herald-socket-'));
  onTestFinished(() => rm(directory, { recursive: true, force: true }));
  return join(directory, 'herald.db');
}

function socketFor<TMap = Events>(options: ConstructorParameters<typeof HeraldSocket>[0]): HeraldSocket<TMap> {
  const socket = new HeraldSocket<TMap>({ WebSocket, initialDelay: 50, maxDelay: 400, ...options });
  onTestFinished(() => socket.close());
  return socket;
}

/** A token function that hands out `token`, and how many connections asked it. */
function countingToken(token: string): { token: () => string; connects: number } {
  const counting = {
    connects: 0,
    token: () => {
      counting.connects += 1;
      return token;
    },
  };
  return counting;
}

function record<K extends keyof HeraldSocketEvents>(socket: HeraldSocket<any>, type: K): HeraldSocketEvents[K][] {
  const seen: HeraldSocketEvents[K][] = [];
  socket.on(type, (event) => seen.push(event));
  return seen;
}

const ids = (events: readonly { id: string }[]) => events.map((event) => event.id);

/**
 * A socket of `server` with `options`, its token counted and its closes, errors and subscriptions recorded, once its
 * first subscription (to `order.*`, into `received`) is confirmed.
 */
async function subscribedSocket(server: Server, options: Partial<ConstructorParameters<typeof HeraldSocket>[0]> = {}) {
  const tokens = countingToken(adminKey);
  const socket = socketFor({ url: server.url, token: tokens.token, ...options });
  const closes = record(socket, 'close');
  const errors = record(socket, 'error');
  const subscribed = record(socket, 'subscribed');
  const received: SocketEvent[] = [];
  socket.subscribe(['order.*'], (event) => void received.push(event));
  await waitFor(() => subscribed.length === 1, 'the subscription');
  return { socket, tokens, closes, errors, subscribed, received };
}

/** Publishes an event and checks that its one subscription got it, on the socket's first connection, with no error and no close. */
async function expectWentOn(
  server: Server,
  socket: HeraldSocket<any>,
  seen: { received: SocketEvent[]; errors: unknown[]; closes: unknown[]; tokens: { connects: number } },
): Promise<void> {
  const published = await server.herald.publish({ type: 'order.created', data: { n: 1 } });
  await waitFor(() => seen.received.length === 1, 'the event');
  await linger(200);
  expect(ids(seen.received)).toEqual([published.event.id]);
  expect(seen.errors).toEqual([]);
  expect(seen.closes).toEqual([]);
  expect(socket.ready).toBe(true);
  expect(seen.tokens.connects).toBe(1);
}

/** The size HeraldSocket counts for the `subscribe` of `id` to `order.*`: UTF-8 bytes, with the longest `after` it may carry. */
function subscribeBytes(id: string, filter: EventFilter): number {
  return Buffer.byteLength(JSON.stringify({ type: 'subscribe', id, types: ['order.*'], after: Number.MAX_SAFE_INTEGER, filter }));
}

/** A filter on `subject` that makes the `subscribe` of `id` to `order.*` `bytes` long, mostly of `ü`s (2 bytes of UTF-8 each). */
function filterMaking(bytes: number, id: string): EventFilter {
  const padding = bytes - subscribeBytes(id, { subject: { $in: [''] } });
  return { subject: { $in: [`${padding % 2 ? 'x' : ''}${'ü'.repeat(Math.floor(padding / 2))}`] } };
}

/**
 * A consumer's durable WebSocket subscription on a test app that writes cursors every 50 ms, and a socket attached to
 * it through a TCP relay, which acknowledges only when told to (its `ackInterval` is a minute), and has handled one
 * event: its ack waits in the socket.
 */
async function handledOneBehindRelay() {
  const app = await startTestApp([websocket({ cursorFlushInterval: 50 })]);
  onTestFinished(() => app.close());
  const key = await app.consumerKey('acme');
  const durable = (await app.api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'] }, key)).body;
  const cursor = async () => (await app.api('GET', `/v1/subscriptions/${durable.id}`, undefined, key)).body.cursor as number;
  const { relay, url } = await relayTo(new URL(app.baseUrl).host);
  const socket = socketFor({ url, token: key, ackInterval: 60_000 });
  const seen = { opens: record(socket, 'open'), closes: record(socket, 'close'), subscribed: record(socket, 'subscribed'), errors: record(socket, 'error') };
  const handled: SocketEvent[] = [];
  const subscription = socket.subscribe({ subscription: durable.id }, (event) => void handled.push(event));
  await waitFor(() => seen.subscribed.length === 1, 'the subscription');
  const first = (await app.herald.publish({ type: 'order.created', data: { n: 1 } })).event;
  await waitFor(() => handled.length === 1, 'the first event handled');
  expect(await cursor()).toBe(0);
  return { app, cursor, relay, socket, subscription, handled, first, ...seen };
}

describe('HeraldSocket', () => {
  it('reconnects with a fresh token when its token function gave an empty one (a session not yet there, say)', async () => {
    const server = await startServer(':memory:');
    onTestFinished(() => server.close());
    const key = (await api(server, 'POST', '/v1/keys', { role: 'consumer', consumer: 'acme' })).key as string;
    const given: string[] = [];
    const socket = socketFor({
      url: server.url.replace(/^ws/, 'http'),
      token: () => {
        given.push(given.length === 0 ? '' : key);
        return given.at(-1) as string;
      },
    });
    const closes = record(socket, 'close');
    const received: SocketEvent[] = [];
    socket.subscribe(['order.created'], (event) => void received.push(event));
    await waitFor(() => socket.ready, 'the second connection');
    expect(closes).toMatchObject([{ code: 4401, reason: 'The API key is not valid', reconnecting: true }]);
    const { event } = await server.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => received.length === 1, 'the event');
    expect(ids(received)).toEqual([event.id]);
    expect(given).toEqual(['', key]);
  });

  it('authenticates with a token function, subscribes, and receives typed events once each', async () => {
    const server = await startServer(':memory:');
    onTestFinished(() => server.close());
    const key = (await api(server, 'POST', '/v1/keys', { role: 'consumer', consumer: 'acme' })).key as string;
    let tokens = 0;
    const socket = socketFor({
      url: server.url.replace(/^ws/, 'http'),
      token: async () => {
        tokens += 1;
        return (await api(server, 'POST', '/v1/stream-tokens', { types: ['order.**'] }, key)).token;
      },
    });
    const opened = record(socket, 'open');
    const received: SocketEvent[] = [];
    const orders = socket.subscribe(['order.created', 'order.shipped'], (event) => {
      expectTypeOf(event.type).toEqualTypeOf<'order.created' | 'order.shipped'>();
      expectTypeOf(event.data).toEqualTypeOf<{ n: number }>();
      received.push(event);
    });
    const errors = record(socket, 'error');
    const forbidden = socket.subscribe(['invoice.paid'], () => {});
    await waitFor(() => errors.length === 1, 'the refusal of invoice.paid');
    expect(errors[0]).toMatchObject({ code: 'forbidden', subscription: forbidden });
    expect(forbidden.active).toBe(false);
    expect(opened).toEqual([{ consumer: 'acme' }]);
    expect(socket.ready).toBe(true);

    const published: HeraldEvent[] = [];
    for (const [n, type] of ['order.created', 'invoice.paid', 'order.shipped', 'order.line.added', 'order.created'].entries()) {
      published.push((await server.herald.publish({ type, data: { n } } as never)).event);
    }
    const expected = published.filter((event) => event.type === 'order.created' || event.type === 'order.shipped');
    await waitFor(() => received.length === expected.length, 'the order events');
    await linger();
    expect(ids(received)).toEqual(ids(expected));
    expect(orders.lastSeq).toBe(expected.at(-1)?.seq);
    expect(tokens).toBe(1);

    orders.unsubscribe();
    await server.herald.publish({ type: 'order.created', data: { n: 99 } });
    await linger();
    expect(received.length).toBe(expected.length);
  });

  it('survives a server restart on the same database and port with nothing missed, and acks its durable subscription', async () => {
    const database = await tempDatabase();
    let server = await startServer(database);
    const port = server.port;
    onTestFinished(() => server.close());
    const key = (await api(server, 'POST', '/v1/keys', { role: 'consumer', consumer: 'acme' })).key as string;
    const durable = await api(server, 'POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'] }, key);
    const tokens = countingToken(key);
    const socket = socketFor({
      url: server.url,
      token: tokens.token,
      ackInterval: 50,
    });
    const closes = record(socket, 'close');
    const adHoc: SocketEvent[] = [];
    const attached: SocketEvent[] = [];
    socket.subscribe(['order.*', 'invoice.paid'], (event) => void adHoc.push(event));
    socket.subscribe({ subscription: durable.id }, async (event) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      attached.push(event);
    });
    await waitFor(() => socket.ready, 'the socket to be ready');
    expect(tokens.connects).toBe(1);

    const published: HeraldEvent[] = [];
    const publishSome = async (from: number, count: number) => {
      for (let n = from; n < from + count; n++) {
        published.push((await server.herald.publish({ type: n % 4 === 3 ? 'invoice.paid' : 'order.created', data: { n } })).event);
      }
    };
    await publishSome(0, 40);
    await waitFor(() => adHoc.length === 40, 'the events before the restart');

    await server.close();
    // The close frame reaches the client after the server has finished closing.
    await waitFor(() => closes.length > 0, 'the socket to see the close');
    expect(closes[0]).toMatchObject({ code: 1001, reconnecting: true });
    server = await startServer(database, port);
    await publishSome(40, 40);
    await waitFor(() => adHoc.length >= 80 && attached.length >= 60, 'the events after the restart', 20_000);
    await linger(200);
    expect(tokens.connects).toBeGreaterThanOrEqual(2);
    expect(ids(adHoc)).toEqual(ids(published));
    expect(ids(attached)).toEqual(ids(published.filter((event) => event.type === 'order.created')));

    // The log ends with an invoice, which the subscription passes over: acknowledging the last order moves the cursor past it too.
    const last = published.at(-1) as HeraldEvent;
    expect(last.type).toBe('invoice.paid');
    await waitFor(async () => (await api(server, 'GET', `/v1/subscriptions/${durable.id}`, undefined, key)).cursor === last.seq, 'the cursor to reach the end of the log');
  });

  it('runs handlers one at a time in seq order, reports one that throws and goes on, and passes resets on', async () => {
    const server = await startServer(':memory:');
    onTestFinished(() => server.close());
    const socket = socketFor({ url: server.url, token: adminKey });
    const errors = record(socket, 'error');
    const resets = record(socket, 'reset');
    const handled: number[] = [];
    let running = 0;
    const ahead = socket.subscribe(['order.*'], () => {}, { after: 1_000_000 });
    socket.subscribe(['order.*'], async (event) => {
      running += 1;
      expect(running).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, event.data.n % 3));
      running -= 1;
      handled.push(event.seq);
      if (event.data.n === 2) throw new Error('boom');
    });
    await waitFor(() => resets.length === 1, 'the reset');
    expect(resets[0]).toMatchObject({ subscription: ahead, reason: 'ahead', after: 0 });
    const published: HeraldEvent[] = [];
    for (let n = 0; n < 20; n++) published.push((await server.herald.publish({ type: 'order.created', data: { n } })).event);
    await waitFor(() => handled.length === 20, 'every event handled');
    expect(handled).toEqual(published.map((event) => event.seq));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'handler-failed', message: `the handler of s2 threw on seq ${published[2]?.seq}` });
    expect(errors[0]?.cause).toMatchObject({ message: 'boom' });
  });

  it('stops reconnecting after a close that retrying cannot fix', async () => {
    const server = await startServer(':memory:');
    onTestFinished(() => server.close());
    const socket = socketFor({ url: server.url, token: `hk_00000000000000000000_${'0'.repeat(64)}` });
    const closes = record(socket, 'close');
    await waitFor(() => closes.length === 1, 'the close');
    await linger(300);
    expect(closes).toEqual([{ code: 4401, reason: 'The API key is not valid', reconnecting: false }]);
    expect(socket.ready).toBe(false);
    expect(() => socket.subscribe(['order.*'], () => {})).toThrow('HeraldSocket: subscribe() after the server closed the connection for good: 4401 "The API key is not valid"');
    socket.close();
    expect(() => socket.subscribe(['order.*'], () => {})).toThrow('HeraldSocket: subscribe() after the server closed the connection for good: 4401');
    const closedByUser = socketFor({ url: server.url, token: adminKey });
    closedByUser.close();
    expect(() => closedByUser.subscribe(['order.*'], () => {})).toThrow('HeraldSocket: subscribe() after close()');
  });

  it('throws at the call for a subscribe whose form the server would refuse, sending nothing; the socket and its subscriptions go on', async () => {
    const server = await startServer(':memory:');
    onTestFinished(() => server.close());
    const { socket, tokens, closes, errors, subscribed, received } = await subscribedSocket(server);
    const tooMany = Array.from({ length: 101 }, (_, n) => `order.t${n}`);
    const subscribe = socket.subscribe.bind(socket) as (target: unknown, handler: () => void, options?: unknown) => unknown;
    for (const [target, options, message] of [
      [tooMany, undefined, 'takes 1 to 100 event types and patterns, not 101'],
      [[], undefined, 'takes 1 to 100 event types and patterns, not 0'],
      [[5], undefined, 'takes event types and patterns as strings'],
      [['order.*'], { after: 1.5 }, 'takes an `after` that is a seq, a whole number from 0, not 1.5'],
      [['order.*'], { after: -1 }, 'takes an `after` that is a seq, a whole number from 0, not -1'],
      [{ subscription: 's'.repeat(129) }, undefined, 'takes the id of a durable subscription, 1 to 128 characters'],
      [{ subscription: 'sub_1', after: 2 ** 53 }, undefined, `takes an \`after\` that is a seq, a whole number from 0, not ${2 ** 53}`],
      [['order.*'], { filter: [{ 'data.n': 1 }] }, 'takes a `filter` that is an object of paths and conditions'],
    ] as const) {
      expect(() => subscribe(target, () => {}, options), message).toThrow(new TypeError(`HeraldSocket: subscribe() ${message}`));
    }
    const later = socket.subscribe(['order.created'], () => {});
    await waitFor(() => subscribed.length === 2, 'a subscription after them');
    expect(subscribed[1]?.subscription).toBe(later);
    await expectWentOn(server, socket, { received, errors, closes, tokens });
  });

  it('throws at the call for a subscribe over maxMessageBytes, counted in UTF-8 bytes, sending nothing; the socket and its subscriptions go on', async () => {
    const server = await startServer(':memory:', 0, { maxPayload: 4096 });
    onTestFinished(() => server.close());
    expect(() => socketFor({ url: server.url, token: adminKey, maxMessageBytes: 0 })).toThrow(
      new TypeError('HeraldSocket: maxMessageBytes must be a positive number of bytes, not 0'),
    );
    const { socket, tokens, closes, errors, subscribed, received } = await subscribedSocket(server, { maxMessageBytes: 4096 });

    // s2 is refused: 4097 bytes, in 2,000-odd characters. s3, 4096 bytes, is taken, by the server too.
    const over = filterMaking(4097, 's2');
    expect(subscribeBytes('s2', over)).toBe(4097);
    expect(JSON.stringify(over).length).toBeLessThan(2100);
    expect(() => socket.subscribe(['order.*'], () => {}, { filter: over })).toThrow(
      new RangeError(
        'HeraldSocket: subscribe() makes a message of 4097 bytes, over the limit of 4096 bytes (maxMessageBytes): the server would close the connection (1009); make its filter or types smaller, or split it',
      ),
    );
    const atLimit = filterMaking(4096, 's3');
    expect(subscribeBytes('s3', atLimit)).toBe(4096);
    const taken = socket.subscribe(['order.*'], () => {}, { filter: atLimit });
    await waitFor(() => subscribed.length === 2, 'the subscription at the limit');
    expect(subscribed[1]?.subscription).toBe(taken);

    await expectWentOn(server, socket, { received, errors, closes, tokens });
  });

  it("takes the server's maxPayload, which ready says, as its limit when it is below maxMessageBytes: a subscribe over it throws at the call", async () => {
    const server = await startServer(':memory:', 0, { maxPayload: 4096 });
    onTestFinished(() => server.close());
    const { socket, tokens, closes, errors, subscribed, received } = await subscribedSocket(server);

    expect(() => socket.subscribe(['order.*'], () => {}, { filter: filterMaking(4097, 's2') })).toThrow(
      new RangeError(
        "HeraldSocket: subscribe() makes a message of 4097 bytes, over the limit of 4096 bytes (the server's maxPayload): the server would close the connection (1009); make its filter or types smaller, or split it",
      ),
    );
    const taken = socket.subscribe(['order.*'], () => {}, { filter: filterMaking(4096, 's3') });
    await waitFor(() => subscribed.length === 2, 'the subscription at the limit');
    expect(subscribed[1]?.subscription).toBe(taken);
    const published = await server.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => received.length === 1, 'the event');
    expect(ids(received)).toEqual([published.event.id]);
    expect(errors).toEqual([]);
    expect(closes).toEqual([]);
    expect(tokens.connects).toBe(1);

    // A smaller maxMessageBytes stays the limit.
    const stricter = socketFor({ url: server.url, token: adminKey, maxMessageBytes: 2048 });
    await waitFor(() => stricter.ready, 'the stricter socket');
    expect(() => stricter.subscribe(['order.*'], () => {}, { filter: filterMaking(2049, 's1') })).toThrow(/^HeraldSocket: subscribe\(\) makes a message of 2049 bytes, over the limit of 2048 bytes \(maxMessageBytes\)/);
  });

  it('ends a subscription it had made whose subscribe is over the limit the server it reconnects to says, and goes on with the others without a 1009', async () => {
    const database = await tempDatabase();
    let server = await startServer(database);
    const port = server.port;
    onTestFinished(() => server.close());
    const tokens = countingToken(adminKey);
    const socket = socketFor({ url: server.url, token: tokens.token });
    const closes = record(socket, 'close');
    const errors = record(socket, 'error');
    const subscribed = record(socket, 'subscribed');
    const received: SocketEvent[] = [];
    const small = socket.subscribe(['order.*'], (event) => void received.push(event));
    const filter = filterMaking(5000, 's2');
    const big = socket.subscribe(['order.*'], () => {}, { filter });
    await waitFor(() => subscribed.length === 2, 'both subscriptions on the first server');

    await server.close();
    await waitFor(() => closes.length === 1, 'the socket to see the close');
    server = await startServer(database, port, { maxPayload: 4096 });
    await waitFor(() => errors.length === 1 && subscribed.length === 3, 'the big subscription ended and the small one made again');
    const bytes = Buffer.byteLength(JSON.stringify({ type: 'subscribe', id: 's2', types: ['order.*'], after: big.lastSeq, filter }));
    expect(errors).toEqual([
      {
        code: 'message-too-big',
        message: `the subscribe message of s2 is ${bytes} bytes, over the limit of 4096 bytes (the server's maxPayload); the subscription ended`,
        subscription: big,
      },
    ]);
    expect(subscribed[2]?.subscription).toBe(small);
    expect([small.active, big.active]).toEqual([true, false]);
    const published = await server.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => received.length === 1, 'the event on the small subscription');
    await linger(200);
    expect(ids(received)).toEqual([published.event.id]);
    expect(closes).toMatchObject([{ code: 1001, reconnecting: true }]);
    expect(tokens.connects).toBe(2);
  });

  it("takes a higher maxPayload again from the server it reconnects to: a subscribe the last one's limit refused is made", async () => {
    const database = await tempDatabase();
    let server = await startServer(database, 0, { maxPayload: 4096 });
    const port = server.port;
    onTestFinished(() => server.close());
    const socket = socketFor({ url: server.url, token: adminKey });
    const closes = record(socket, 'close');
    const subscribed = record(socket, 'subscribed');
    socket.subscribe(['order.*'], () => {});
    await waitFor(() => subscribed.length === 1, 'a subscription on the server that takes 4096 bytes');
    const filter = filterMaking(5000, 's2');
    expect(() => socket.subscribe(['order.*'], () => {}, { filter })).toThrow(RangeError);

    await server.close();
    await waitFor(() => closes.length === 1, 'the socket to see the close');
    server = await startServer(database, port);
    await waitFor(() => subscribed.length === 2, 'the subscription made again on the server with the default limit');
    const big = socket.subscribe(['order.*'], () => {}, { filter });
    await waitFor(() => subscribed.length === 3, 'the big subscription made');
    expect(subscribed[2]?.subscription).toBe(big);
  });

  it('when a server that does not say its limit closes with 1009, ends the subscribe it was for and reconnects with the others, without sending it again', async () => {
    const { port, connections } = await startProtocolServer((connection, message) => connection.send(JSON.stringify({ type: 'subscribed', id: message.id, after: 0 })), {
      maxPayload: 4096,
    });
    const tokens = countingToken('hk_x');
    const socket = socketFor({ url: `ws://127.0.0.1:${port}/v1/ws`, token: tokens.token });
    const closes = record(socket, 'close');
    const errors = record(socket, 'error');
    const subscribed = record(socket, 'subscribed');
    const received: SocketEvent[] = [];
    const other = socket.subscribe(['order.*'], (event) => void received.push(event));
    await waitFor(() => subscribed.length === 1, 'the subscription');

    // All three go out on this connection, which the server closes at s2. The client blames the largest message sent,
    // which has to be over the server's limit: s2, the first of the two largest.
    const big = socket.subscribe(['order.*'], () => {}, { filter: { subject: { $in: ['x'.repeat(6000)] } } });
    const asBig = socket.subscribe(['order.*'], () => {}, { filter: { subject: { $in: ['y'.repeat(6000)] } } });
    const lessBig = socket.subscribe(['order.*'], () => {}, { filter: { subject: { $in: ['z'.repeat(5000)] } } });
    // The second connection does not send s3, over the limit now known; the server closes it at s4; the third one goes on.
    await waitFor(() => errors.length === 3 && closes.length === 2 && socket.ready, 'the three ended and a third connection');
    const sent = (id: string, length: number) => JSON.stringify({ type: 'subscribe', id, types: ['order.*'], filter: { subject: { $in: ['x'.repeat(length)] } } }).length;
    expect(errors).toEqual([
      {
        code: 'message-too-big',
        message: `the server closed the connection with 1009 (message too big) after the subscribe of s2, ${sent('s2', 6000)} bytes: over its limit, which is lower than maxMessageBytes; the subscription ended, the others are sent again`,
        subscription: big,
      },
      {
        code: 'message-too-big',
        message: `the subscribe message of s3 is ${sent('s3', 6000)} bytes, over the limit of ${sent('s2', 6000) - 1} bytes (the server closed a connection with 1009 after a subscribe of ${sent('s2', 6000)} bytes); the subscription ended`,
        subscription: asBig,
      },
      {
        code: 'message-too-big',
        message: `the server closed the connection with 1009 (message too big) after the subscribe of s4, ${sent('s4', 5000)} bytes: over its limit, which is lower than maxMessageBytes; the subscription ended, the others are sent again`,
        subscription: lessBig,
      },
    ]);
    expect(closes).toMatchObject([
      { code: 1009, reason: '', reconnecting: true },
      { code: 1009, reason: '', reconnecting: true },
    ]);
    expect([big.active, asBig.active, lessBig.active, other.active]).toEqual([false, false, false, true]);
    expect(new Set(subscribed.map(({ subscription }) => subscription))).toEqual(new Set([other]));

    const event = { specversion: '1.0', id: 'evt_1', seq: 1, type: 'order.created', source: '/herald', time: new Date().toISOString(), datacontenttype: 'application/json', data: { n: 1 } };
    connections.at(-1)?.send(JSON.stringify({ type: 'event', id: other.id, event }));
    await waitFor(() => received.length === 1, 'the event on the other subscription');
    await linger(300);
    expect(ids(received)).toEqual([event.id]);
    expect(closes).toHaveLength(2);
    expect(tokens.connects).toBe(3);
    // What the server refused is refused at the call from now on; smaller ones are sent.
    expect(() => socket.subscribe(['order.*'], () => {}, { filter: { subject: { $in: ['z'.repeat(5000)] } } })).toThrow(
      /^HeraldSocket: subscribe\(\) makes a message of \d+ bytes, over the limit of \d+ bytes \(the server closed a connection with 1009 after a subscribe of \d+ bytes\)/,
    );
    const smaller = socket.subscribe(['order.*'], () => {}, { filter: { subject: { $in: ['w'.repeat(3000)] } } });
    await waitFor(() => subscribed.some(({ subscription }) => subscription === smaller), 'the smaller subscription');
    expect(closes).toHaveLength(2);
    expect(tokens.connects).toBe(3);
  });

  it('ends when its auth message is over the limit: unsent over maxMessageBytes, or closed with 1009 by the server', async () => {
    const server = await startServer(':memory:', 0, { maxPayload: 512 });
    onTestFinished(() => server.close());
    const token = `hk_${'x'.repeat(600)}`;
    const auth = JSON.stringify({ type: 'auth', token }).length;

    const unsent = socketFor({ url: server.url, token, maxMessageBytes: 512 });
    const unsentCloses = record(unsent, 'close');
    const unsentErrors = record(unsent, 'error');
    await waitFor(() => unsentCloses.length === 1, 'the end of the first socket');
    const notSent = `the auth message is ${auth} bytes, over the limit of 512 bytes (maxMessageBytes)`;
    expect(unsentErrors).toEqual([{ code: 'message-too-big', message: notSent }]);
    expect(unsentCloses).toEqual([{ code: 1000, reason: 'auth message too big', reconnecting: false }]);
    expect(() => unsent.subscribe(['order.*'], () => {})).toThrow(`HeraldSocket: subscribe() after ${notSent}, so it was not sent`);

    const refused = socketFor({ url: server.url, token });
    const refusedCloses = record(refused, 'close');
    await waitFor(() => refusedCloses.length === 1, 'the end of the second socket');
    await linger(200);
    expect(refusedCloses).toEqual([{ code: 1009, reason: '', reconnecting: false }]);
    expect(() => refused.subscribe(['order.*'], () => {})).toThrow(
      `HeraldSocket: subscribe() after the server closed the connection for good: 1009 (message too big) after its auth message of ${auth} bytes`,
    );
  });

  it('receives only the events its filter lets through, replayed and live, also after the server dropped the connection', async () => {
    const database = await tempDatabase();
    let server = await startServer(database);
    const port = server.port;
    onTestFinished(() => server.close());
    const key = (await api(server, 'POST', '/v1/keys', { role: 'consumer', consumer: 'acme' })).key as string;
    const tokens = countingToken(key);
    const socket = socketFor({
      url: server.url,
      token: tokens.token,
    });
    const closes = record(socket, 'close');
    const subscribed = record(socket, 'subscribed');
    const filtered: SocketEvent[] = [];
    const everything: SocketEvent[] = [];
    const filter = { $or: [{ 'data.n': { $gte: 100 } }, { subject: 'eu west+1&x=ü' }] };
    socket.subscribe(['order.*'], (event) => void filtered.push(event), { filter });
    socket.subscribe(['order.*'], (event) => void everything.push(event));
    await waitFor(() => subscribed.length === 2, 'both subscriptions');

    const published: HeraldEvent[] = [];
    // Of each five, three pass: n 150, n 100, and n 7 for its subject.
    const publishSome = async (herald: Herald<Events>) => {
      for (const [i, n] of [1, 150, 7, 100, 99].entries()) {
        const subject = i === 2 ? 'eu west+1&x=ü' : i === 4 ? 'eu west 1' : undefined;
        published.push((await herald.publish({ type: i % 2 ? 'order.shipped' : 'order.created', data: { n }, ...(subject ? { subject } : {}) })).event);
      }
    };
    const passes = (event: HeraldEvent) => (event.data as { n: number }).n >= 100 || event.subject === 'eu west+1&x=ü';
    await publishSome(server.herald);
    await waitFor(() => everything.length === published.length, 'the events before the drop');

    // The server goes away; the events published meanwhile are replayed on the resubscription, then live ones follow.
    await server.close();
    await waitFor(() => closes.length > 0, 'the socket to see the close');
    expect(closes[0]).toMatchObject({ code: 1001, reconnecting: true });
    const restarted = createHerald({ database, logLevel: 'silent', env: {}, adminKey, eventTypes: testEventTypes, transports: [websocket()] });
    server = { ...server, herald: restarted, close: () => restarted.close() };
    await publishSome(restarted);
    await restarted.listen({ port, host: '127.0.0.1', handleSignals: false });
    await waitFor(() => subscribed.length === 4, 'both subscriptions again');
    await publishSome(restarted);
    await waitFor(() => everything.length === published.length, 'every event');
    await linger();
    expect(tokens.connects).toBe(2);
    expect(ids(everything)).toEqual(ids(published));
    expect(ids(filtered)).toEqual(ids(published.filter(passes)));
    expect(filtered).toHaveLength(9);
  });

  it('acknowledges again, on the next connection, what it acknowledged on one that dropped: the ack may have been lost with it', async () => {
    const server = await startServer(':memory:', 0, { cursorFlushInterval: 50 });
    onTestFinished(() => server.close());
    const key = (await api(server, 'POST', '/v1/keys', { role: 'consumer', consumer: 'acme' })).key as string;
    const durable = await api(server, 'POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'] }, key);
    const cursor = async () => (await api(server, 'GET', `/v1/subscriptions/${durable.id}`, undefined, key)).cursor as number;
    // A network that loses what the client sends while `losing`.
    let losing = false;
    let lost = 0;
    const { relay, url } = await relayTo(`127.0.0.1:${server.port}`, {
      onConnection: () => ({
        fromClient(chunk) {
          if (!losing) return undefined;
          lost += chunk.length;
          return 'drop';
        },
      }),
    });
    const socket = socketFor({ url, token: key, ackInterval: 20 });
    const subscribed = record(socket, 'subscribed');
    const errors = record(socket, 'error');
    const handled: SocketEvent[] = [];
    socket.subscribe({ subscription: durable.id }, (event) => void handled.push(event));
    await waitFor(() => subscribed.length === 1, 'the subscription');
    const first = (await server.herald.publish({ type: 'order.created', data: { n: 1 } })).event;
    await waitFor(async () => (await cursor()) === first.seq, 'the cursor at the first event');

    // The ack of the second event is sent, and lost on the way; then the connection drops.
    losing = true;
    const second = (await server.herald.publish({ type: 'order.created', data: { n: 2 } })).event;
    await waitFor(() => handled.length === 2 && lost > 0, 'the second event handled, and its ack lost');
    losing = false;
    relay.drop();
    await waitFor(() => subscribed.length === 2, 'the subscription on a new connection');
    await waitFor(async () => (await cursor()) === second.seq, 'the cursor at the second event');
    expect(ids(handled)).toEqual([first.id, second.id]);
    expect(errors).toEqual([]);
  });

  it('acknowledges what it handled before an unsubscribe() made after a reconnect, before the server answered the subscribe', async () => {
    const { app, cursor, relay, socket, subscription, handled, first, opens, subscribed, errors } = await handledOneBehindRelay();
    // The network stalls once the next connection is ready, before the subscribe goes out on it.
    socket.on('open', () => relay.hold());
    relay.drop();
    await waitFor(() => opens.length === 2, 'the second connection');
    // Its subscribe is out, and the server's subscribed has not come. The server gets the subscribe and what
    // unsubscribe() sent in one read: it is still looking the subscription up when the messages after it come.
    await waitFor(() => heldForServer(relay) > 0, 'the subscribe');
    const subscribe = heldForServer(relay);
    subscription.unsubscribe();
    expect(subscription.active).toBe(false);
    await waitFor(() => heldForServer(relay) > subscribe, 'what unsubscribe() sent');
    relay.release();
    await waitFor(async () => (await cursor()) === first.seq, 'the cursor at the event handled');
    await app.herald.publish({ type: 'order.created', data: { n: 2 } });
    await linger();
    expect(ids(handled)).toEqual([first.id]);
    expect(subscribed).toHaveLength(1);
    expect(errors).toEqual([]);
    expect(socket.ready).toBe(true);
  });

  it('acknowledges, on the next connection, what it handled before an unsubscribe() made while it was reconnecting', async () => {
    const { app, cursor, relay, socket, subscription, handled, first, closes, subscribed, errors } = await handledOneBehindRelay();
    socket.on('close', () => subscription.unsubscribe());
    relay.drop();
    await waitFor(() => closes.length === 1, 'the socket to see the drop');
    expect(subscription.active).toBe(false);
    await app.herald.publish({ type: 'order.created', data: { n: 2 } });
    await waitFor(async () => (await cursor()) === first.seq, 'the cursor at the event handled');
    await app.herald.publish({ type: 'order.created', data: { n: 3 } });
    await linger();
    expect(await cursor()).toBe(first.seq);
    expect(ids(handled)).toEqual([first.id]);
    expect(subscribed).toHaveLength(1);
    expect(errors).toEqual([]);
    expect(socket.ready).toBe(true);
  });

  it('acknowledges what it handled on close() after a reconnect, before the server answered the subscribe, then closes the connection', async () => {
    const { cursor, relay, socket, handled, first, opens, closes, errors } = await handledOneBehindRelay();
    socket.on('open', () => relay.hold());
    relay.drop();
    await waitFor(() => opens.length === 2, 'the second connection');
    await waitFor(() => heldForServer(relay) > 0, 'the subscribe');
    const subscribe = heldForServer(relay);
    socket.close();
    expect(socket.ready).toBe(false);
    expect(closes.at(-1)).toEqual({ code: 1000, reason: 'client closed', reconnecting: false });
    await waitFor(() => heldForServer(relay) > subscribe, 'what close() sent');
    // The connection waits for the server's answer.
    expect(relay.open()).toHaveLength(1);
    relay.release();
    await waitFor(async () => (await cursor()) === first.seq, 'the cursor at the event handled');
    await waitFor(() => relay.open().length === 0, 'the connection to close');
    expect(closes.filter(({ reconnecting }) => !reconnecting)).toHaveLength(1);
    expect(ids(handled)).toEqual([first.id]);
    expect(errors).toEqual([]);
    expect(() => socket.subscribe(['order.*'], () => {})).toThrow('HeraldSocket: subscribe() after close()');
  });

  it('attaches to a durable subscription with a filter on top of its own', async () => {
    const server = await startServer(':memory:');
    onTestFinished(() => server.close());
    const key = (await api(server, 'POST', '/v1/keys', { role: 'consumer', consumer: 'acme' })).key as string;
    const durable = await api(server, 'POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'], filter: { 'data.n': { $lt: 100 } } }, key);
    const published: HeraldEvent[] = [];
    for (const n of [1, 150, 7, 50, 99, 10]) published.push((await server.herald.publish({ type: 'order.created', data: { n } })).event);
    const socket = socketFor({ url: server.url, token: key, ackInterval: 50 });
    const received: SocketEvent[] = [];
    socket.subscribe({ subscription: durable.id, filter: { 'data.n': { $gte: 10 } } }, (event) => void received.push(event));
    await waitFor(() => received.length >= 3, 'the events both filters let through');
    await linger();
    expect(ids(received)).toEqual(ids(published.filter(({ data }) => (data as { n: number }).n >= 10 && (data as { n: number }).n < 100)));
    await waitFor(async () => (await api(server, 'GET', `/v1/subscriptions/${durable.id}`, undefined, key)).cursor === published.at(-1)?.seq, 'the cursor to move');
  });

  it('reports a filter or a pattern the server refuses as an error of its subscription, which ends; the socket and its other subscriptions go on', async () => {
    const server = await startServer(':memory:');
    onTestFinished(() => server.close());
    for (const [types, filter, code, path] of [
      [['order.*'], { 'data.n': { $regex: 'x' } }, 'invalid-filter', 'filter.data.n.$regex'],
      [['order.*'], { 'data.nope': 1 }, 'invalid-filter', 'filter.data.nope'],
      [['order..created'], undefined, 'invalid-pattern', 'types.0 "order..created"'],
    ] as const) {
      const tokens = countingToken(adminKey);
      const socket = socketFor({
        url: server.url,
        token: tokens.token,
      });
      const errors = record(socket, 'error');
      const closes = record(socket, 'close');
      const received: SocketEvent[] = [];
      const others: SocketEvent[] = [];
      const other = socket.subscribe(['order.*'], (event) => void others.push(event));
      const refused = socket.subscribe(types, (event) => void received.push(event), filter ? { filter } : {});
      await waitFor(() => errors.length === 1, 'the refusal');
      const published = await server.herald.publish({ type: 'order.created', data: { n: 1 } });
      await waitFor(() => others.length === 1, 'the event on the other subscription');
      await linger(300);
      expect(errors[0]).toMatchObject({ code, subscription: refused });
      expect(errors[0]?.message).toContain(path);
      expect(refused.active).toBe(false);
      expect(other.active).toBe(true);
      expect(ids(others)).toEqual([published.event.id]);
      expect(received).toEqual([]);
      expect(closes).toEqual([]);
      expect(socket.ready).toBe(true);
      expect(tokens.connects).toBe(1);
      socket.close();
    }
  });

  it('ends a subscription the server refuses as invalid-subscribe (its limits may be stricter than the client knows), and does not send it again', async () => {
    const { port, connections, subscribes } = await startProtocolServer((connection, message) => {
      if (message.types.length > 2) {
        connection.send(JSON.stringify({ type: 'error', id: message.id, code: 'invalid-subscribe', message: 'invalid subscribe message: types must list 1 to 2 event types and patterns' }));
      } else connection.send(JSON.stringify({ type: 'subscribed', id: message.id, after: 0 }));
    });
    const socket = socketFor({ url: `ws://127.0.0.1:${port}/v1/ws`, token: 'hk_x' });
    const errors = record(socket, 'error');
    const subscribed = record(socket, 'subscribed');
    const refused = socket.subscribe(['a.b', 'a.c', 'a.d'], () => {});
    const other = socket.subscribe(['a.b'], () => {});
    await waitFor(() => errors.length === 1 && subscribed.length === 1, 'the refusal and the other subscription');
    expect(errors[0]).toMatchObject({ code: 'invalid-subscribe', subscription: refused });
    expect(refused.active).toBe(false);
    expect(other.active).toBe(true);
    // A dropped connection: only the other subscription is sent again.
    connections[0]?.terminate();
    await waitFor(() => subscribed.length === 2, 'the other subscription again');
    expect(subscribes.map((message) => message.id)).toEqual([refused.id, other.id, other.id]);
  });

  it('subscribes again, initialDelay later on the same connection, a subscribe the server answered unavailable', async () => {
    const answers: number[] = [];
    const { port, connections, subscribes } = await startProtocolServer((connection, message) => {
      answers.push(Date.now());
      const unavailable = { type: 'error', id: message.id, code: 'unavailable', message: 'the subscription could not be looked up; subscribe again' };
      connection.send(JSON.stringify(subscribes.length === 1 ? unavailable : { type: 'subscribed', id: message.id, after: 0 }));
    });
    const socket = socketFor({ url: `ws://127.0.0.1:${port}/v1/ws`, token: 'hk_x' });
    const errors = record(socket, 'error');
    const subscribed = record(socket, 'subscribed');
    const subscription = socket.subscribe(['order.*'], () => {});
    await waitFor(() => subscribed.length === 1, 'the subscription, the second time');
    expect(errors).toMatchObject([{ code: 'unavailable', subscription }]);
    expect(subscription.active).toBe(true);
    expect(subscribes.map((message) => message.id)).toEqual([subscription.id, subscription.id]);
    expect(connections).toHaveLength(1);
    expect(answers[1]! - answers[0]!).toBeGreaterThanOrEqual(45);
  });

  it('acknowledges again, with its next subscribe, what unsubscribe() acknowledged after a subscribe the server answered unavailable', async () => {
    // The server took no ack then; when the ack came after its answer, it answers the ack too: unknown-subscription.
    for (const ackAnswered of [false, true]) {
      const secondConnection: any[] = [];
      const { port, connections } = await startProtocolServer((connection, message) => {
        if (connections.length === 1) {
          connection.send(JSON.stringify({ type: 'subscribed', id: message.id, after: 0 }));
          return void connection.send(JSON.stringify({ type: 'event', id: message.id, event: { seq: 1, id: 'evt_1', type: 'order.created', data: { n: 1 } } }));
        }
        secondConnection.push(message);
        if (secondConnection.length > 1) return void connection.send(JSON.stringify({ type: 'subscribed', id: message.id, after: 1 }));
        // The first subscribe is answered once the ack after it came.
        connection.on('message', (data) => {
          const next = JSON.parse(data.toString());
          if (next.type === 'subscribe') return;
          secondConnection.push(next);
          if (secondConnection.length !== 2) return;
          connection.send(JSON.stringify({ type: 'error', id: message.id, code: 'unavailable', message: 'the subscription could not be looked up; subscribe again' }));
          if (ackAnswered) connection.send(JSON.stringify({ type: 'error', id: message.id, code: 'unknown-subscription', message: `no subscription "${message.id}" on this connection` }));
        });
      });
      const socket = socketFor({ url: `ws://127.0.0.1:${port}/v1/ws`, token: 'hk_x', ackInterval: 60_000 });
      const errors = record(socket, 'error');
      const handled: SocketEvent[] = [];
      const subscription = socket.subscribe({ subscription: 'sub_1' }, (event) => void handled.push(event));
      await waitFor(() => handled.length === 1, 'the event handled');
      connections[0]?.terminate();
      await waitFor(() => secondConnection.length === 1, 'the subscribe on the next connection');
      subscription.unsubscribe();
      await waitFor(() => secondConnection.some((message) => message.type === 'unsubscribe'), 'the unsubscribe', 3_000);
      const subscribe = { type: 'subscribe', id: subscription.id, subscription: 'sub_1', after: 1 };
      const ack = { type: 'ack', id: subscription.id, seq: 1 };
      expect(secondConnection).toEqual([subscribe, ack, subscribe, ack, { type: 'unsubscribe', id: subscription.id }]);
      expect(errors.map(({ code }) => code)).toEqual(ackAnswered ? ['unavailable', 'unknown-subscription'] : ['unavailable']);
      socket.close();
    }
  });

  it('acknowledges what it handled on close() on an open connection its subscribe is not out on: sent now, the ack after it', async () => {
    // Right after the server answered it unavailable (as it was, or unsubscribed first), before the subscribe goes
    // again initialDelay later; or in an open listener, before the subscribes of the new connection go.
    for (const [closeOn, unsubscribeFirst] of [['error', false], ['error', true], ['open', false]] as const) {
      const secondConnection: any[] = [];
      const closedWith: number[] = [];
      const { port, connections } = await startProtocolServer((connection, message) => {
        if (connections.length === 1) {
          connection.send(JSON.stringify({ type: 'subscribed', id: message.id, after: 0 }));
          return void connection.send(JSON.stringify({ type: 'event', id: message.id, event: { seq: 1, id: 'evt_1', type: 'order.created', data: { n: 1 } } }));
        }
        if (secondConnection.length > 0) return void connection.send(JSON.stringify({ type: 'subscribed', id: message.id, after: 1 }));
        secondConnection.push(message);
        connection.on('message', (data) => void secondConnection.push(JSON.parse(data.toString())));
        connection.on('close', (code) => void closedWith.push(code));
        const unavailable = { type: 'error', id: message.id, code: 'unavailable', message: 'the subscription could not be looked up; subscribe again' };
        connection.send(JSON.stringify(closeOn === 'error' ? unavailable : { type: 'subscribed', id: message.id, after: 1 }));
      });
      const socket = socketFor({ url: `ws://127.0.0.1:${port}/v1/ws`, token: 'hk_x', ackInterval: 60_000 });
      const errors = record(socket, 'error');
      const handled: SocketEvent[] = [];
      const subscription = socket.subscribe({ subscription: 'sub_1' }, (event) => void handled.push(event));
      await waitFor(() => handled.length === 1, 'the event handled');
      socket.on(closeOn, () => {
        if (unsubscribeFirst) subscription.unsubscribe();
        socket.close();
      });
      connections[0]?.terminate();
      await waitFor(() => closedWith.length === 1, 'the second connection to close');
      const subscribe = { type: 'subscribe', id: subscription.id, subscription: 'sub_1', after: 1 };
      const acked = [subscribe, { type: 'ack', id: subscription.id, seq: 1 }, { type: 'unsubscribe', id: subscription.id }];
      expect(secondConnection).toEqual(closeOn === 'error' ? [subscribe, ...acked] : acked);
      expect(closedWith).toEqual([1000]);
      expect(connections).toHaveLength(2);
      expect(errors.map(({ code }) => code)).toEqual(closeOn === 'error' ? ['unavailable'] : []);
    }
  });

  it('sends once the subscribe of a subscription made in an open listener, which the server would close the connection for (4409)', async () => {
    const server = await startServer(':memory:');
    onTestFinished(() => server.close());
    const tokens = countingToken(adminKey);
    const socket = socketFor({ url: server.url, token: tokens.token });
    const seen = { closes: record(socket, 'close'), errors: record(socket, 'error'), received: [] as SocketEvent[], tokens };
    socket.on('open', () => void socket.subscribe(['order.*'], (event) => void seen.received.push(event)));
    const subscribed = record(socket, 'subscribed');
    await waitFor(() => subscribed.length === 1 || seen.closes.length > 0, 'the subscription');
    expect(seen.closes).toEqual([]);
    await expectWentOn(server, socket, seen);
  });

  it('replaces a connection whose server stopped answering, and resubscribes from where it was', async () => {
    const { port, connections, subscribes } = await startProtocolServer((connection, message) => {
      if (connections.length > 1) return;
      connection.send(JSON.stringify({ type: 'subscribed', id: message.id, after: 10 }));
      connection.send(JSON.stringify({ type: 'event', id: message.id, event: { seq: 11, id: 'evt_11', type: 'order.created', data: { n: 1 } } }));
      connection.send(JSON.stringify({ type: 'event', id: message.id, event: { seq: 11, id: 'evt_11', type: 'order.created', data: { n: 1 } } }));
    });
    const socket = socketFor({ url: `ws://127.0.0.1:${port}/v1/ws`, token: 'hk_x', pingInterval: 100, pongTimeout: 100 });
    const received: SocketEvent[] = [];
    socket.subscribe(['order.*'], (event) => void received.push(event));
    await waitFor(() => connections.length >= 2 && subscribes.length >= 2, 'a second connection and subscribe');
    expect(received.map((event) => event.seq)).toEqual([11]);
    expect(subscribes[1]).toEqual({ type: 'subscribe', id: subscribes[0].id, types: ['order.*'], after: 11 });
  });
});

describe('MatchingEvent', () => {
  it('narrows the event map by patterns', () => {
    type Map = { 'order.created': { a: 1 }; 'order.line.added': { b: 2 }; 'invoice.paid': { c: 3 } };
    expectTypeOf<MatchingEvent<Map, 'order.*'>['type']>().toEqualTypeOf<'order.created'>();
    expectTypeOf<MatchingEvent<Map, 'order.**'>['type']>().toEqualTypeOf<'order.created' | 'order.line.added'>();
    expectTypeOf<MatchingEvent<Map, '*.paid' | 'order.created'>['type']>().toEqualTypeOf<'invoice.paid' | 'order.created'>();
    expectTypeOf<MatchingEvent<Map, '**'>['type']>().toEqualTypeOf<keyof Map>();
    expectTypeOf<MatchingEvent<Map, string>['type']>().toEqualTypeOf<keyof Map>();
    expectTypeOf<MatchingEvent<Record<string, unknown>, 'x.*'>['type']>().toEqualTypeOf<string>();
  });
});

describe('EventFilter', () => {
  it("is @herald/core's filter type, which the client copies to depend on nothing at run time", () => {
    expectTypeOf<EventFilter>().toEqualTypeOf<CoreEventFilter>();
    expectTypeOf<FilterCondition>().toEqualTypeOf<CoreFilterCondition>();
  });
});
