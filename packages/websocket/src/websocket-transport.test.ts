import type { HeraldEvent } from '@herald/core';
import {
  type ClientConnection,
  type ConnectRequest,
  ConnectionRefusedError,
  memoryTransport,
  type Receiver,
  type Refusal,
  runTransportSuite,
  linger,
  type TestApp,
  waitFor,
} from '@herald/testkit';
import { describe, expect, it } from 'vitest';
import { closedAfterEach, ProtocolClient, refusedUpgrade, type WsApp } from './testing/protocol-client.js';
import { CloseCode } from './websocket-protocol.js';
import { websocket } from './websocket-transport.js';

const wsUrl = (app: TestApp) => `${app.baseUrl.replace(/^http/, 'ws')}/v1/ws`;

const closeRefusals: Record<number, Refusal> = { [CloseCode.Unauthorized]: 'unauthorized', [CloseCode.TryAgainLater]: 'too-many-connections' };
const errorRefusals: Record<string, Refusal> = { forbidden: 'forbidden', 'subscription-not-found': 'not-found' };

/** A browser-like client: `auth` with the credential, then one subscription; refused by a close code or an `error` message. */
async function connectClient(app: TestApp, { credential, types, subscription }: ConnectRequest): Promise<ClientConnection> {
  const client = await ProtocolClient.connect(wsUrl(app), { token: credential, waitReady: false });
  const refuse = async (reason: Refusal | undefined, detail: string): Promise<never> => {
    await client.close();
    throw reason ? new ConnectionRefusedError(reason, detail) : new Error(`the connection failed: ${detail}`);
  };
  // Read through a function: the client sets it when the socket closes.
  const closed = () => client.closedWith;
  await waitFor(() => closed() !== undefined || client.messages.some((message) => message.type === 'ready'), 'ready or a close');
  const refusedBy = closed();
  if (refusedBy) return refuse(closeRefusals[refusedBy.code], `close ${refusedBy.code} ${refusedBy.reason}`);
  client.send({ type: 'subscribe', id: 's', ...(types !== undefined ? { types } : { subscription }) });
  const answered = () => client.messages.find((message) => message.id === 's' && (message.type === 'subscribed' || message.type === 'error'));
  await waitFor(() => closed() !== undefined || answered() !== undefined, 'an answer to subscribe');
  const answer = answered();
  if (answer?.type === 'error') return refuse(errorRefusals[answer.code], `error ${answer.code}: ${answer.message}`);
  if (!answer) return refuse(undefined, `close ${closed()?.code} before an answer to subscribe`);
  return {
    get events() {
      return client.events('s');
    },
    ended: client.closed.then(() => undefined),
    close: async () => void (await client.close()),
  };
}

runTransportSuite('websocket', {
  transport: () => websocket(),
  connect: connectClient,
  async receive(app, { consumer, types }): Promise<Receiver> {
    const key = await app.consumerKey(consumer);
    const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'websocket', types }, key);
    if (status !== 201) throw new Error(`creating a subscription answered ${status}`);
    const client = await ProtocolClient.connect(wsUrl(app), { bearer: key });
    await client.subscribe({ id: 'durable', subscription: body.id });
    return {
      subscriptionId: body.id,
      get events() {
        return client.events('durable');
      },
      close: async () => void (await client.close()),
    };
  },
});

const opened = closedAfterEach();
const { start, connect } = opened;

const publish = (ws: WsApp, type: string, n: number, consumer?: string) =>
  ws.app.herald.publish({ type, data: { n }, ...(consumer !== undefined ? { consumer } : {}) } as never).then(({ event }) => event);

const seqs = (events: readonly HeraldEvent[]) => events.map((event) => event.seq);

function expectExactlyOnceInOrder(received: readonly HeraldEvent[], expected: readonly HeraldEvent[]): void {
  expect(new Set(seqs(received)).size, 'an event arrived twice').toBe(received.length);
  expect(seqs(received)).toEqual(seqs(expected));
}

describe('subscribe', () => {
  it('delivers the matching events it may see, from now, in order', async () => {
    const ws = await start();
    await publish(ws, 'order.created', 0);
    const client = await connect(ws.url, { token: await ws.app.consumerKey('acme') });
    expect(client.messages[0]).toEqual({ type: 'ready', consumer: 'acme', maxPayload: 65_536 });
    const { after } = await client.subscribe({ id: 'orders', types: ['order.*'] });
    expect(after).toBe(ws.app.herald.bus.latest);

    const published = [
      await publish(ws, 'order.created', 1),
      await publish(ws, 'invoice.paid', 2),
      await publish(ws, 'order.shipped', 3, 'acme'),
      await publish(ws, 'order.shipped', 4, 'other'),
      await publish(ws, 'order.line.added', 5),
      await publish(ws, 'order.created', 6),
    ];
    const expected = published.filter((event) => event.type.startsWith('order.') && event.type.split('.').length === 2 && event.consumer !== 'other');
    await waitFor(() => client.events('orders').length >= expected.length, 'the matching events');
    await linger();
    expect(client.events('orders')).toEqual(expected);
  });

  it('replays the log after `after`, then goes live', async () => {
    const ws = await start();
    const first = await publish(ws, 'order.created', 1);
    const earlier = [await publish(ws, 'order.created', 2), await publish(ws, 'order.shipped', 3)];
    const client = await connect(ws.url, { bearer: ws.app.adminKey });
    expect(client.messages[0]).toEqual({ type: 'ready', consumer: null, maxPayload: 65_536 });
    const { after } = await client.subscribe({ id: 'a', types: ['order.**'], after: first.seq });
    expect(after).toBe(earlier[1]?.seq);
    const later = await publish(ws, 'order.line.added', 4);
    await waitFor(() => client.events('a').length === 3, 'the replay and the live event');
    expectExactlyOnceInOrder(client.events('a'), [...earlier, later]);
  });

  it('sends reset when `after` is ahead of the log, then goes on live', async () => {
    const ws = await start();
    const event = await publish(ws, 'order.created', 1);
    const client = await connect(ws.url, { bearer: ws.app.adminKey });
    const { after } = await client.subscribe({ id: 'a', types: ['**'], after: event.seq + 1000 });
    expect(await client.next('reset')).toEqual({ type: 'reset', id: 'a', reason: 'ahead', after: event.seq });
    expect(after).toBe(event.seq);
    const next = await publish(ws, 'order.created', 2);
    await waitFor(() => client.events('a').length === 1, 'the live event');
    expect(client.events('a')[0]?.id).toBe(next.id);
  });

  it('says its maxPayload in ready: a message of that many bytes is taken, one byte more closes with 1009', async () => {
    const ws = await start({ maxPayload: 4096 });
    const client = await connect(ws.url, { token: await ws.app.consumerKey('acme') });
    expect(client.messages[0]).toEqual({ type: 'ready', consumer: 'acme', maxPayload: 4096 });
    /** A `subscribe` of `id` that is `bytes` long. */
    const subscribe = (id: string, bytes: number) => {
      const text = (padding: string) => JSON.stringify({ type: 'subscribe', id, types: ['order.*'], filter: { subject: { $in: [padding] } } });
      return text('x'.repeat(bytes - text('').length));
    };
    expect(Buffer.byteLength(subscribe('a', 4096))).toBe(4096);
    client.ws.send(subscribe('a', 4096));
    await client.next('subscribed', (message) => message.id === 'a');
    client.ws.send(subscribe('b', 4097));
    expect((await client.closed).code).toBe(CloseCode.MessageTooBig);
  });

  it('stops delivering on unsubscribe and answers ping with pong', async () => {
    const ws = await start();
    const client = await connect(ws.url, { bearer: ws.app.adminKey });
    await client.subscribe({ id: 'a', types: ['**'] });
    await client.subscribe({ id: 'b', types: ['**'] });
    client.send({ type: 'unsubscribe', id: 'a' });
    client.send({ type: 'ping' });
    await client.next('pong');
    await publish(ws, 'order.created', 1);
    await waitFor(() => client.events('b').length === 1, 'the event on b');
    await linger();
    expect(client.events('a')).toEqual([]);
    expect(ws.transport.stats().subscriptions).toBe(1);
  });

  it('limits subscriptions per connection and connections per key', async () => {
    const ws = await start({ maxSubscriptions: 2 }, [], { maxConnectionsPerKey: 2 });
    const key = await ws.app.consumerKey('acme');
    const client = await connect(ws.url, { bearer: key });
    await client.subscribe({ id: 'a', types: ['order.*'] });
    await client.subscribe({ id: 'b', types: ['invoice.*'] });
    client.send({ type: 'subscribe', id: 'c', types: ['user.*'] });
    expect(await client.next('error')).toMatchObject({ id: 'c', code: 'too-many-subscriptions' });

    await connect(ws.url, { token: key });
    expect(await refusedUpgrade(ws.url, { bearer: key })).toMatchObject({ status: 429 });
    const third = await connect(ws.url, { token: key, waitReady: false });
    expect(await third.closed).toEqual({ code: 1013, reason: 'this key has too many open connections' });
    await client.close();
    await waitFor(() => ws.transport.stats().connections === 1, 'the closed connection to be released');
    await connect(ws.url, { bearer: key });
  });

  it('counts a refreshed connection against its new token, and refuses a refresh to a token at its limit', async () => {
    const ws = await start({}, [], { maxConnectionsPerKey: 1 });
    const key = await ws.app.consumerKey('acme');
    const token = async () => (await ws.app.api('POST', '/v1/stream-tokens', {}, key)).body.token as string;
    const [a, b, c] = [await token(), await token(), await token()];
    const onA = await connect(ws.url, { token: a });
    const onB = await connect(ws.url, { token: b });
    onA.send({ type: 'auth', token: b });
    expect(await onA.closed).toEqual({ code: 1013, reason: 'this key has too many open connections' });
    // Its slot on a came back when it closed.
    await connect(ws.url, { token: a });
    onB.send({ type: 'auth', token: c });
    await waitFor(() => onB.messages.filter((message) => message.type === 'ready').length === 2, 'the ready after the refresh');
    // The refresh moved it from b to c.
    await connect(ws.url, { token: b });
    expect(await refusedUpgrade(ws.url, { bearer: c })).toMatchObject({ status: 429, body: { type: 'urn:herald:problem:too-many-connections' } });
  });

  it('points maxConnectionsPerKey to createHerald, where one limit covers every transport', () => {
    expect(() => websocket({ maxConnectionsPerKey: 5 } as never)).toThrow(/createHerald/);
  });
});

describe('resume', () => {
  it('drops the connection while 1,000 events are published; reconnecting with `after` gets each once, in order', async () => {
    const ws = await start();
    const key = await ws.app.consumerKey('acme');
    const first = await connect(ws.url, { bearer: key });
    await first.subscribe({ id: 's', types: ['order.*', 'invoice.paid'] });
    const types = ['order.created', 'invoice.paid', 'order.shipped'];
    const published: HeraldEvent[] = [];
    const publishing = (async () => {
      for (let n = 0; n < 1000; n++) {
        published.push(await publish(ws, types[n % 3] as string, n));
        if (n === 300) {
          await waitFor(() => first.events('s').length > 0, 'the first events');
          first.ws.terminate();
        }
      }
    })();
    await first.closed;
    const before = first.events('s');
    expect(before.length).toBeGreaterThan(0);
    const last = before.at(-1) as HeraldEvent;
    const second = await connect(ws.url, { bearer: key });
    await second.subscribe({ id: 's', types: ['order.*', 'invoice.paid'], after: last.seq });
    await publishing;
    await waitFor(() => before.length + second.events('s').length >= 1000, 'all 1,000 events', 20_000);
    await linger();
    expectExactlyOnceInOrder([...before, ...second.events('s')], published);
  });

  it('hands over from replay to live under concurrent publishing: nothing lost, nothing repeated', async () => {
    const ws = await start();
    const types = ['order.created', 'order.shipped', 'invoice.paid'];
    for (let n = 0; n < 1500; n++) await publish(ws, types[n % 3] as string, n);
    let publishing = true;
    const loops = Array.from({ length: 4 }, async (_, loop) => {
      for (let n = 0; publishing; n++) await publish(ws, types[(n + loop) % 3] as string, n);
    });
    const subscribers: { client: ProtocolClient; after: number }[] = [];
    for (const after of [0, 200, 700, 1200, 1490]) {
      const client = await connect(ws.url, { bearer: ws.app.adminKey });
      client.send({ type: 'subscribe', id: 'orders', types: ['order.*'], after });
      subscribers.push({ client, after });
      await linger(30);
    }
    await Promise.all(subscribers.map(({ client }) => client.next('subscribed', () => true, 20_000)));
    await linger(200);
    publishing = false;
    await Promise.all(loops);
    const log = await ws.app.herald.store.read({ after: 0, limit: 100_000, types: ['order.*'] });
    for (const { client, after } of subscribers) {
      const expected = log.filter((event) => event.seq > after);
      await waitFor(() => client.events('orders').length >= expected.length, `the events after ${after}`, 20_000);
      await linger();
      expectExactlyOnceInOrder(client.events('orders'), expected);
    }
  });
});

describe('durable subscriptions', () => {
  it('resume from the stored cursor, which ack advances', async () => {
    const ws = await start({ cursorFlushInterval: 50 });
    const key = await ws.app.consumerKey('acme');
    const durable = await ws.durable('acme', ['order.*']);
    const missed = [await publish(ws, 'order.created', 1), await publish(ws, 'invoice.paid', 2), await publish(ws, 'order.shipped', 3)];

    const client = await connect(ws.url, { bearer: key });
    const { after } = await client.subscribe({ id: 'd', subscription: durable.id });
    expect(after).toBe(missed[2]?.seq);
    expect(client.events('d').map((event) => event.id)).toEqual([missed[0]?.id, missed[2]?.id]);

    client.send({ type: 'ack', id: 'd', seq: missed[0]?.seq });
    await waitFor(async () => (await ws.app.api('GET', `/v1/subscriptions/${durable.id}`, undefined, key)).body.cursor === missed[0]?.seq, 'the cursor');
    client.send({ type: 'ack', id: 'd', seq: (missed[2]?.seq as number) + 5 });
    expect(await client.next('error', (message) => message.code === 'ack-ahead')).toMatchObject({ id: 'd' });
    await client.close();

    const again = await connect(ws.url, { bearer: key });
    await again.subscribe({ id: 'd', subscription: durable.id });
    expect(again.events('d').map((event) => event.id)).toEqual([missed[2]?.id]);
  });

  it('take an ack sent before subscribed at or below the stored cursor as done, and one the resume position covers; one past both is ack-ahead', async () => {
    const ws = await start({ cursorFlushInterval: 50 });
    const key = await ws.app.consumerKey('acme');
    const durable = await ws.durable('acme', ['order.*']);
    const cursor = async () => (await ws.app.api('GET', `/v1/subscriptions/${durable.id}`, undefined, key)).body.cursor as number;
    const events = [await publish(ws, 'order.created', 1), await publish(ws, 'order.created', 2), await publish(ws, 'order.created', 3), await publish(ws, 'order.created', 4)];
    const [first, second, third, fourth] = seqs(events) as [number, number, number, number];
    const handled = await connect(ws.url, { bearer: key });
    await handled.subscribe({ id: 'd', subscription: durable.id });
    handled.send({ type: 'ack', id: 'd', seq: second });
    await waitFor(async () => (await cursor()) === second, 'the cursor at the second event');
    await handled.close();

    // Acks of what an earlier connection handled, sent right after a subscribe that resumes behind the cursor:
    // at or below the cursor, there is nothing to do, and the cursor does not go back.
    const again = await connect(ws.url, { bearer: key });
    again.send({ type: 'subscribe', id: 'd', subscription: durable.id, after: first });
    again.send({ type: 'ack', id: 'd', seq: second });
    again.send({ type: 'ack', id: 'd', seq: first });
    await again.next('subscribed', (message) => message.id === 'd');
    expect(again.messages.filter((message) => message.type === 'error')).toEqual([]);
    expect(seqs(again.events('d'))).toEqual([second, third, fourth]);
    await linger(200);
    expect(await cursor()).toBe(second);
    await again.close();

    // Past the cursor: taken up to where the subscribe resumes (what the client says it has), refused past that.
    const resumed = await connect(ws.url, { bearer: key });
    resumed.send({ type: 'subscribe', id: 'd', subscription: durable.id, after: third });
    resumed.send({ type: 'ack', id: 'd', seq: third });
    resumed.send({ type: 'ack', id: 'd', seq: fourth });
    await resumed.next('subscribed', (message) => message.id === 'd');
    expect(resumed.messages.filter((message) => message.type === 'error')).toEqual([
      { type: 'error', id: 'd', code: 'ack-ahead', message: `seq ${fourth} is past the cursor and has not been delivered on "d"` },
    ]);
    await waitFor(async () => (await cursor()) === third, 'the cursor at the third event');
    expect(seqs(resumed.events('d'))).toEqual([fourth]);
    resumed.send({ type: 'ack', id: 'd', seq: fourth });
    await waitFor(async () => (await cursor()) === fourth, 'the cursor at the fourth event');
  });

  it('pass over what is published while paused, and a later attach does not replay it (the same rule as SSE)', async () => {
    const ws = await start({ cursorFlushInterval: 50 });
    const key = await ws.app.consumerKey('acme');
    const durable = await ws.durable('acme', ['order.*']);
    const path = `/v1/subscriptions/${durable.id}`;
    const cursor = async () => (await ws.app.api('GET', path, undefined, key)).body.cursor as number;
    const client = await connect(ws.url, { bearer: key });
    await client.subscribe({ id: 'd', subscription: durable.id });
    const before = await publish(ws, 'order.created', 1);
    await waitFor(() => client.events('d').length === 1, 'the event before the pause');
    client.send({ type: 'ack', id: 'd', seq: before.seq });
    expect((await ws.app.api('PATCH', path, { status: 'paused' }, key)).status).toBe(200);
    const whilePaused = [await publish(ws, 'order.created', 2), await publish(ws, 'order.shipped', 3)];
    // Everything delivered is acknowledged, so passing them over moves the cursor past them.
    await waitFor(async () => (await cursor()) === whilePaused[1]?.seq, 'the cursor to pass over the events published while paused');
    await client.close();

    expect((await ws.app.api('PATCH', path, { status: 'active' }, key)).status).toBe(200);
    const after = await publish(ws, 'order.created', 4);
    const again = await connect(ws.url, { bearer: key });
    await again.subscribe({ id: 'd', subscription: durable.id });
    expect(again.events('d').map((event) => event.id)).toEqual([after.id]);
    expect(client.events('d').map((event) => event.id)).toEqual([before.id]);
  });

  it('tell an attached client when the subscription is deleted, and send it nothing more; the connection goes on', async () => {
    const ws = await start();
    const key = await ws.app.consumerKey('acme');
    const durable = await ws.durable('acme', ['order.*']);
    const client = await connect(ws.url, { bearer: key });
    await client.subscribe({ id: 'd', subscription: durable.id });
    await client.subscribe({ id: 'adhoc', types: ['order.*'] });
    const before = await publish(ws, 'order.created', 1);
    await waitFor(() => client.events('d').length === 1, 'the event before the deletion');

    expect((await ws.app.api('DELETE', `/v1/subscriptions/${durable.id}`, undefined, key)).status).toBe(204);
    expect(await client.next('error', (message) => message.id === 'd')).toMatchObject({ code: 'subscription-not-found', message: expect.stringMatching(/deleted/) });
    const after = await publish(ws, 'order.created', 2);
    await waitFor(() => client.events('adhoc').length === 2, 'the event after the deletion, on the other subscription');
    expect(client.events('d').map((event) => event.id)).toEqual([before.id]);
    // Its id is free again on the connection.
    client.send({ type: 'subscribe', id: 'd', types: ['order.*'], after: before.seq });
    await waitFor(() => client.messages.filter((message) => message.type === 'subscribed' && message.id === 'd').length === 2, 'the second subscribe of d');
    expect(client.events('d').map((event) => event.id)).toEqual([before.id, after.id]);
  });

  it('cannot be attached by another consumer, nor over another transport; acks need a durable subscription', async () => {
    const ws = await start({}, [memoryTransport()]);
    const durable = await ws.durable('acme', ['order.*']);
    const memory = await ws.app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'] }, await ws.app.consumerKey('acme'));
    const other = await connect(ws.url, { bearer: await ws.app.consumerKey('other') });
    other.send({ type: 'subscribe', id: 'x', subscription: durable.id });
    const refused = await other.next('error', (message) => message.id === 'x');
    other.send({ type: 'subscribe', id: 'y', subscription: 'sub_does_not_exist' });
    const missing = await other.next('error', (message) => message.id === 'y');
    expect(refused.code).toBe('subscription-not-found');
    expect({ ...refused, id: 'y', message: '' }).toEqual({ ...missing, message: '' });

    const owner = await connect(ws.url, { bearer: await ws.app.consumerKey('acme') });
    owner.send({ type: 'subscribe', id: 'm', subscription: memory.body.id });
    expect(await owner.next('error', (message) => message.id === 'm')).toMatchObject({ code: 'wrong-transport' });
    await owner.subscribe({ id: 'adhoc', types: ['order.*'] });
    owner.send({ type: 'ack', id: 'adhoc', seq: 0 });
    expect(await owner.next('error', (message) => message.id === 'adhoc')).toMatchObject({ code: 'not-durable' });
    owner.send({ type: 'ack', id: 'nope', seq: 0 });
    expect(await owner.next('error', (message) => message.id === 'nope')).toMatchObject({ code: 'unknown-subscription' });
  });
});

describe('stream tokens', () => {
  it('limit patterns to their types, and a refresh keeps the connection for the same consumer', async () => {
    const ws = await start();
    const key = await ws.app.consumerKey('acme');
    const token = async (body: Record<string, unknown>, issuer = key) => {
      const { status, body: answer } = await ws.app.api('POST', '/v1/stream-tokens', body, issuer);
      expect(status).toBe(201);
      return answer as { token: string; expiresAt: string };
    };
    const scoped = await token({ types: ['order.*'] });
    const client = await connect(ws.url, { token: scoped.token });
    expect(client.messages[0]).toEqual({ type: 'ready', consumer: 'acme', expiresAt: scoped.expiresAt, maxPayload: 65_536 });
    client.send({ type: 'subscribe', id: 'wide', types: ['order.**'] });
    expect(await client.next('error', (message) => message.id === 'wide')).toMatchObject({ code: 'forbidden' });
    await client.subscribe({ id: 'narrow', types: ['order.created'] });

    const refreshed = await token({ types: ['order.*'], ttl: 600 });
    client.send({ type: 'auth', token: refreshed.token });
    await client.next('ready', (message) => message.expiresAt === refreshed.expiresAt);
    const event = await publish(ws, 'order.created', 1);
    await waitFor(() => client.events('narrow').length === 1, 'the event after the refresh');
    expect(client.events('narrow')[0]?.id).toBe(event.id);

    const narrower = await token({ types: ['invoice.*'] });
    client.send({ type: 'auth', token: narrower.token });
    expect(await client.closed).toMatchObject({ code: 4403 });

    const another = await connect(ws.url, { token: (await token({})).token });
    another.send({ type: 'auth', token: (await token({}, await ws.app.consumerKey('other'))).token });
    expect(await another.closed).toMatchObject({ code: 4403 });
  });
});

describe('revocation and shutdown', () => {
  it('closes the connections of a revoked key and of its stream tokens with 4401; others carry on', async () => {
    const ws = await start();
    const created = await ws.app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme' });
    const byKey = await connect(ws.url, { bearer: created.body.key });
    const streamToken = (await ws.app.api('POST', '/v1/stream-tokens', {}, created.body.key)).body.token;
    const byToken = await connect(ws.url, { token: streamToken });
    const bystander = await connect(ws.url, { bearer: await ws.app.consumerKey('acme') });
    await bystander.subscribe({ id: 'b', types: ['**'] });

    expect((await ws.app.api('DELETE', `/v1/keys/${created.body.id}`)).status).toBe(204);
    expect(await byKey.closed).toEqual({ code: 4401, reason: 'the key was revoked' });
    expect(await byToken.closed).toEqual({ code: 4401, reason: 'the key was revoked' });
    const event = await publish(ws, 'order.created', 1);
    await waitFor(() => bystander.events('b').length === 1, 'the bystander to receive');
    expect(bystander.events('b')[0]?.id).toBe(event.id);
  });

  it('closes every connection with 1001 on stop', async () => {
    const ws = await start();
    const a = await connect(ws.url, { bearer: ws.app.adminKey });
    const b = await connect(ws.url, { waitReady: false });
    await ws.close();
    opened.forget();
    expect(await a.closed).toEqual({ code: 1001, reason: 'the server is stopping' });
    expect((await b.closed).code).toBe(1001);
  });

  it('terminates a peer that stops answering protocol pings', async () => {
    const ws = await start({ heartbeatInterval: 150 });
    const alive = await connect(ws.url, { bearer: ws.app.adminKey });
    const dead = await connect(ws.url, { bearer: ws.app.adminKey });
    (dead.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitFor(() => ws.transport.stats().connections === 1, 'the dead peer to be terminated');
    await linger(400);
    expect(alive.closedWith).toBeUndefined();
    expect(ws.transport.stats().connections).toBe(1);
  });
});
