import { waitFor } from '@herald/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ConnectOptions, ProtocolClient, refusedUpgrade, startWsApp, type WsApp } from './testing/protocol-client.js';
import { CloseCode } from './websocket-protocol.js';

let ws: WsApp;
let witness: ProtocolClient;
let consumerKey: string;
let published = 0;
const opened: ProtocolClient[] = [];

async function connect(options: ConnectOptions = { bearer: consumerKey }): Promise<ProtocolClient> {
  const client = await ProtocolClient.connect(ws.url, options);
  opened.push(client);
  return client;
}

beforeAll(async () => {
  ws = await startWsApp({ authTimeout: 500 });
  consumerKey = await ws.app.consumerKey('acme');
  witness = await ProtocolClient.connect(ws.url, { bearer: consumerKey });
  await witness.subscribe({ id: 'w', types: ['**'] });
});

afterAll(async () => {
  await witness.close();
  await ws.close();
});

/** After every case: the witness connection still receives, and a new connection is served. */
afterEach(async () => {
  await Promise.all(opened.splice(0).map((client) => client.close()));
  const { event } = await ws.app.herald.publish({ type: 'order.created', data: { n: ++published } });
  await waitFor(() => witness.events('w').some((received) => received.id === event.id), 'the witness to receive');
  expect(witness.closedWith).toBeUndefined();
  const fresh = await ProtocolClient.connect(ws.url, { token: consumerKey });
  fresh.send({ type: 'ping' });
  await fresh.next('pong');
  await fresh.close();
});

describe('closed with a code', () => {
  const frames: [string, string | RegExp, string | Buffer, boolean][] = [
    ['not JSON', 'the message is not JSON', '{"type":"ping"', false],
    ['JSON that is not an object', 'the message must be a JSON object', '[{"type":"ping"}]', false],
    ['an unknown message type', 'unknown message type "subscribe-all"', '{"type":"subscribe-all"}', false],
    ['a message without a type', 'a message needs a "type": one of auth, subscribe, unsubscribe, ack, ping, pong', '{"id":"a"}', false],
    ['a field the message does not have', /^invalid ping message/, '{"type":"ping","extra":1}', false],
    ['a subscribe without an id', 'invalid subscribe message: id required', '{"type":"subscribe","types":["order.*"],"after":-1}', false],
    ['a subscribe whose id is not a string', /^invalid subscribe message: id /, '{"type":"subscribe","id":5,"types":["order.*"]}', false],
    ['a subscribe whose id is over 128 characters', 'invalid subscribe message: id must be 1 to 128 characters', `{"type":"subscribe","id":"${'i'.repeat(129)}","types":["order.*"]}`, false],
    ['an ack whose seq is not one', /^invalid ack message: seq must be a seq/, '{"type":"ack","id":"a","seq":1.5}', false],
    ['a binary frame', /^binary frames are not part of herald\.v1/, Buffer.from('{"type":"ping"}'), true],
  ];
  for (const [name, reason, frame, binary] of frames) {
    it(`4400 for ${name}`, async () => {
      const client = await connect();
      client.ws.send(frame, { binary });
      const closed = await client.closed;
      expect(closed.code).toBe(CloseCode.BadMessage);
      if (typeof reason === 'string') expect(closed.reason).toBe(reason);
      else expect(closed.reason).toMatch(reason);
    });
  }

  it('1009 (from ws) for a frame over maxPayload', async () => {
    const client = await connect();
    client.send({ type: 'auth', token: 'x'.repeat(70 * 1024) });
    expect((await client.closed).code).toBe(CloseCode.MessageTooBig);
  });

  it('1007 (from ws) for a text frame that is not UTF-8', async () => {
    const client = await connect();
    client.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await client.closed).code).toBe(CloseCode.InvalidPayload);
  });

  it('4401 for subscribe before auth', async () => {
    const client = await connect({});
    client.send({ type: 'subscribe', id: 'a', types: ['order.*'] });
    expect(await client.closed).toEqual({ code: 4401, reason: 'subscribe before auth: send auth {token} first' });
  });

  it('4401 for a bad token in the auth message, an empty one too (a token function may give one: a client retries with a fresh token)', async () => {
    for (const token of [`hk_00000000000000000000_${'0'.repeat(64)}`, '']) {
      const client = await connect({});
      client.send({ type: 'auth', token });
      expect(await client.closed, JSON.stringify(token)).toEqual({ code: 4401, reason: 'The API key is not valid' });
    }
  });

  it('4408 when no auth message comes in time', async () => {
    const client = await connect({});
    client.send({ type: 'ping' });
    await client.next('pong');
    expect(await client.closed).toEqual({ code: 4408, reason: 'no auth message in time' });
  });

  it('4409 for a subscription id already in use, also by a subscribe that would be refused', async () => {
    for (const subscribe of [{ types: ['invoice.*'] }, { types: ['invoice.*'], after: -1 }, { types: ['order..x'] }]) {
      const client = await connect();
      await client.subscribe({ id: 'a', types: ['order.*'] });
      client.send({ type: 'subscribe', id: 'a', ...subscribe });
      expect(await client.closed).toEqual({ code: 4409, reason: 'subscription id "a" is already in use' });
    }
  });

  it('4401 for a subscribe before auth, also one that would be refused', async () => {
    const client = await connect({});
    client.send({ type: 'subscribe', id: 'a', types: ['order.*'], after: 1.5 });
    expect(await client.closed).toEqual({ code: 4401, reason: 'subscribe before auth: send auth {token} first' });
  });
});

describe('refused upgrades', () => {
  it('400 for a wrong subprotocol, or none', async () => {
    for (const protocols of ['graphql-transport-ws', [] as string[]]) {
      const { status, body } = await refusedUpgrade(ws.url, { protocols });
      expect(status).toBe(400);
      expect(body).toMatchObject({ status: 400, detail: 'Sec-WebSocket-Protocol must offer herald.v1' });
    }
  });

  it('401 for a bad or malformed Authorization header', async () => {
    expect(await refusedUpgrade(ws.url, { bearer: 'not-a-key' })).toMatchObject({ status: 401, body: { status: 401, detail: 'The API key is not valid' } });
    const malformed = await refusedUpgrade(ws.url, { bearer: '' });
    expect(malformed.status).toBe(401);
  });
});

describe('answered with an error, the connection stays open', () => {
  it("for another consumer's durable subscription, as for one that does not exist", async () => {
    const durable = await ws.durable('other', ['order.*']);
    const client = await connect();
    client.send({ type: 'subscribe', id: 'theirs', subscription: durable.id });
    client.send({ type: 'subscribe', id: 'none', subscription: 'sub_none' });
    const theirs = await client.next('error', (message) => message.id === 'theirs');
    const none = await client.next('error', (message) => message.id === 'none');
    expect(theirs).toEqual({ type: 'error', id: 'theirs', code: 'subscription-not-found', message: `no subscription "${durable.id}" for this consumer` });
    expect(none.code).toBe(theirs.code);
    await client.subscribe({ id: 'theirs', types: ['order.*'] });
    expect(client.closedWith).toBeUndefined();
  });

  it('for a pattern that matches no event type in the catalog', async () => {
    const client = await connect();
    client.send({ type: 'subscribe', id: 'typo', types: ['order.created', 'ordr.*'] });
    expect(await client.next('error')).toEqual({ type: 'error', id: 'typo', code: 'unknown-event-type', message: 'ordr.* matches no event type in the catalog' });
    await client.subscribe({ id: 'typo', types: ['order.created'] });
  });

  it('for a type or pattern that is not one, naming it; the id is free again', async () => {
    const client = await connect();
    await client.subscribe({ id: 'good', types: ['order.*'] });
    client.send({ type: 'subscribe', id: 'bad', types: ['order.created', '**.created'] });
    expect(await client.next('error')).toEqual({
      type: 'error',
      id: 'bad',
      code: 'invalid-pattern',
      message: 'invalid subscribe message: types.1 "**.created" must be an event type, or a pattern with "*" for one segment and a final "**" for one or more',
    });
    await client.subscribe({ id: 'bad', types: ['order.created'] });
    const { event } = await ws.app.herald.publish({ type: 'order.created', data: { n: ++published } });
    await waitFor(() => client.events('good').some((received) => received.id === event.id) && client.events('bad').some((received) => received.id === event.id), 'both subscriptions to receive');
    expect(client.closedWith).toBeUndefined();
  });

  it('for a subscribe with a usable id that does not fit otherwise, naming the mistake; the id is free again', async () => {
    const client = await connect();
    await client.subscribe({ id: 'good', types: ['order.*'] });
    const tooMany = Array.from({ length: 101 }, (_, n) => `order.t${n}`);
    const refusals: [Record<string, unknown>, string][] = [
      [{ types: tooMany }, 'types must list 1 to 100 event types and patterns'],
      [{ types: [] }, 'types must list 1 to 100 event types and patterns'],
      [{ types: ['order.*'], after: 1.5 }, `after must be a seq: a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`],
      [{ types: ['order.*'], after: -1 }, `after must be a seq: a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`],
      [{ types: ['order.*'], after: '5' }, 'after must be a number, not "5"'],
      [{ subscription: 's'.repeat(129) }, 'subscription must be 1 to 128 characters'],
      [{ types: [5] }, 'types.0 Invalid input: expected string, received number'],
      [{ types: 'order.*' }, 'types Invalid input: expected array, received string'],
      [{ types: ['order.*'], subscription: 'sub_1' }, 'types give either types or subscription'],
      [{}, 'types give either types or subscription'],
      [{ types: ['order.*'], since: 5 }, '(root) Unrecognized key: "since"'],
      [{ types: ['order..x'], after: -1 }, 'types.0 must be an event type, or a pattern with "*" for one segment and a final "**" for one or more'],
    ];
    for (const [fields, mistake] of refusals) {
      client.messages.length = 0;
      client.send({ type: 'subscribe', id: 'bad', ...fields });
      const error = await client.next('error');
      expect(error).toMatchObject({ type: 'error', id: 'bad', code: 'invalid-subscribe' });
      expect(error.message).toBe(`invalid subscribe message: ${mistake}`);
    }
    await client.subscribe({ id: 'bad', types: ['order.created'] });
    const { event } = await ws.app.herald.publish({ type: 'order.created', data: { n: ++published } });
    await waitFor(() => client.events('good').some((received) => received.id === event.id) && client.events('bad').some((received) => received.id === event.id), 'both subscriptions to receive');
    expect(client.closedWith).toBeUndefined();
  });

  it('for unsubscribe of an unknown id', async () => {
    const client = await connect();
    client.send({ type: 'unsubscribe', id: 'nothing' });
    expect(await client.next('error')).toEqual({ type: 'error', id: 'nothing', code: 'unknown-subscription', message: 'no subscription "nothing" on this connection' });
    client.send({ type: 'ping' });
    await client.next('pong');
  });
});
