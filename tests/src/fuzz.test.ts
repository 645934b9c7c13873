import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { sse } from '@herald/sse';
import { type LogEntry, recordingLogger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { CloseCode, websocket } from '@herald/websocket';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
// By path: core's test support, for a PostgreSQL database of the fuzz's own.
import { freshDatabase } from '../../packages/core/src/sql/postgres.test-support.js';
import { storeSnapshot } from './store-snapshot.js';

// A property-based pass over every REST route and the WebSocket protocol (issue 13): whatever arrives,
// no 5xx, no crash, and a refused request stores nothing. A fixed seed and a bounded number of runs keep
// it repeatable and quick; a failure prints the seed and path that replay it.
const seed = 13;
/**
 * Each pass's bound, well above its time alone (4 s on SQLite or PostgreSQL), for a CI machine whose other tests load
 * PostgreSQL's disk as well (over 30 s seen). fast-check stops at the bound and fails, so that a pass cut short does not
 * go on in the background and change the store under the next test.
 */
const passTimeout = 150_000;
const assertOptions = { seed, interruptAfterTimeLimit: passTimeout - 10_000, markInterruptAsFailure: true };

let app: TestApp;
let logged: ReturnType<typeof recordingLogger>;
/** Every REST operation the server documents, e.g. `PATCH /v1/subscriptions/{id}`. */
let operations: { method: string; path: string }[];
const credentials: Record<string, string | undefined> = {};
/** Ids that exist, so that some fuzzed paths reach real resources of the fuzzing consumer and of another. */
const realIds: string[] = [];

const json = (text: string) => (text === '' ? undefined : JSON.parse(text));

/** A server on `kind` with subscriptions, a delivery and keys to fuzz against; stopped (and its database dropped) by the returned function. */
async function start(kind: 'sqlite' | 'postgres'): Promise<() => Promise<void>> {
  logged = recordingLogger();
  realIds.length = 0;
  const database = kind === 'postgres' ? await freshDatabase() : undefined;
  app = await startTestApp([webhook({ pollInterval: 50 }), websocket(), sse()], {
    ...(database ? { database: database.url } : {}),
    logger: logged,
    // The limits would answer most runs 429 before they reach a route: off, so the routes are what is fuzzed.
    rateLimit: false,
    authFailureLimit: false,
  });
  const document = await (await fetch(`${app.baseUrl}/openapi.json`)).json();
  operations = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
    Object.keys(methods)
      .filter((method) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map((method) => ({ method: method.toUpperCase(), path })),
  );
  const fuzzKey = await app.consumerKey('fuzz');
  const otherKey = await app.consumerKey('other');
  for (const [key, transport, config] of [
    [fuzzKey, 'webhook', { url: 'https://hooks.example.com/in' }],
    [otherKey, 'webhook', { url: 'https://hooks.example.com/other' }],
    [fuzzKey, 'sse', {}],
    [otherKey, 'websocket', {}],
  ] as const) {
    const created = await app.api('POST', '/v1/subscriptions', { transport, types: ['order.*'], config }, key);
    expect(created.status).toBe(201);
    realIds.push(created.body.id);
  }
  await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 } });
  await waitFor(async () => (await app.api('GET', `/v1/subscriptions/${realIds[0]}/deliveries`)).body?.data?.length > 0, 'a delivery');
  realIds.push((await app.api('GET', `/v1/subscriptions/${realIds[0]}/deliveries`)).body.data[0].id);
  Object.assign(credentials, {
    admin: app.adminKey,
    fuzz: fuzzKey,
    other: otherKey,
    token: (await app.api('POST', '/v1/stream-tokens', { types: ['order.*'] }, fuzzKey)).body.token,
    none: undefined,
    wrong: `hk_${randomBytes(10).toString('hex')}_${randomBytes(32).toString('hex')}`,
    garbage: 'not a key',
  });
  return async () => {
    await app.close();
    await database?.drop();
  };
}

/** Sends a request as given, and reads at most the head of a streaming answer. */
function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; type: string; text: string }> {
  const { port } = new URL(app.baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const type = res.headers['content-type'] ?? '';
      if (type.startsWith('text/event-stream')) {
        resolve({ status: res.statusCode ?? 0, type, text: '' });
        req.destroy();
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// What the requests are made of: plausible names and values mixed with anything at all.

const plausibleStrings = fc.constantFrom(
  'order.created',
  'order.*',
  '**',
  'order..x',
  'webhook',
  'websocket',
  'sse',
  'memory',
  'active',
  'paused',
  'pending',
  'disabled',
  'admin',
  'consumer',
  'fuzz',
  'other',
  'https://hooks.example.com/x',
  'http://127.0.0.1:1/x',
  'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  '',
  ' ',
  '\u0000',
  '%',
  '../..',
);
const anyValue = fc.oneof(
  { weight: 3, arbitrary: plausibleStrings },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 ** 53 }) },
  { weight: 1, arbitrary: fc.array(plausibleStrings, { maxLength: 3 }) },
);
const bodyFields = [
  'type',
  'data',
  'id',
  'subject',
  'consumer',
  'transport',
  'types',
  'config',
  'status',
  'filter',
  'name',
  'description',
  'schema',
  'role',
  'ttl',
  'after',
  'secret',
  'gracePeriod',
];
const shapedBody = fc
  .dictionary(fc.constantFrom(...bodyFields), anyValue, { maxKeys: 5 })
  .chain((fields) =>
    fc.constantFrom(
      fields,
      { ...fields, config: { url: 'https://hooks.example.com/fuzz', ...(typeof fields.config === 'object' ? fields.config : {}) } },
      { type: 'order.created', data: { n: 1 }, ...fields },
    ),
  );
const types = fc.array(fc.constantFrom('order.*', 'order.created', '**', 'invoice.paid', 'user.*'), { minLength: 1, maxLength: 3 });
const consumer = fc.constantFrom('fuzz', 'other');
/** Bodies that each route takes, or nearly: so that the fuzz gets past validation and into the handlers. */
const validBodies: Record<string, fc.Arbitrary<unknown>> = {
  'POST /v1/events': fc.record({ type: fc.constantFrom('order.created', 'invoice.paid'), data: fc.record({ n: fc.integer() }), consumer, id: fc.constantFrom('e1', 'e2') }, { requiredKeys: ['type', 'data'] }),
  'POST /v1/subscriptions': fc.record(
    {
      transport: fc.constantFrom('webhook', 'sse', 'websocket'),
      types,
      consumer,
      config: fc.constantFrom({}, { url: 'https://hooks.example.com/fuzz' }, { url: 'https://hooks.example.com/fuzz', ordered: true }),
    },
    { requiredKeys: ['transport', 'types'] },
  ),
  'PATCH /v1/subscriptions/{id}': fc.record(
    { status: fc.constantFrom('active', 'paused', 'disabled'), types, config: fc.constantFrom({ url: 'https://hooks.example.com/moved' }, { ordered: false }) },
    { requiredKeys: [] },
  ),
  'POST /v1/keys': fc.record({ role: fc.constantFrom('admin', 'consumer'), consumer }, { requiredKeys: ['role'] }),
  'POST /v1/event-types': fc.record({ name: fc.constantFrom('fuzz.thing', 'fuzz.other'), schema: fc.constantFrom({ type: 'object' }, { type: 'string' }) }, { requiredKeys: ['name'] }),
  'POST /v1/stream-tokens': fc.record({ types, ttl: fc.integer({ min: 10, max: 600 }), consumer }, { requiredKeys: [] }),
  'POST /v1/subscriptions/{id}/replay': fc.record({ after: fc.nat({ max: 10 }) }),
  'POST /v1/subscriptions/{id}/secret/rotate': fc.record({ gracePeriod: fc.nat({ max: 100 }) }, { requiredKeys: [] }),
};
const bodyFor = (operation: { method: string; path: string }) =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: (validBodies[`${operation.method} ${operation.path}`] ?? shapedBody).map((value) => JSON.stringify(value)) },
    { weight: 3, arbitrary: shapedBody.map((value) => JSON.stringify(value)) },
    { weight: 2, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 50 }) },
  );
const queryKeys = ['after', 'types', 'limit', 'consumer', 'transport', 'status', 'before', 'access_token', 'lastEventId', 'filter', 'subscription', 'named'];
const queryValue = fc.oneof(
  { weight: 3, arbitrary: fc.oneof(plausibleStrings, fc.string({ maxLength: 20 }), fc.integer({ min: -5, max: 10_000 }).map(String)).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%E0%A4%A', '%zz', '1e309', 'NaN', '%7B%22data.n%22%3A%7B%22%24gt%22%3A1%7D%7D', '') },
);
const query = fc
  .array(fc.tuple(fc.constantFrom(...queryKeys), queryValue), { maxLength: 4 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([key, value]) => `${key}=${value}`).join('&')}`));
/** A path parameter: an id that exists (of `ids`), anything percent-encoded, or a malformed encoding. */
const pathParameter = (ids: readonly string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...ids) },
    { weight: 2, arbitrary: fc.string({ maxLength: 30 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom('%E0%A4%A', '%C0', '%2F..', 'sub_x', '%00') },
  );
const contentType = fc.oneof(
  { weight: 10, arbitrary: fc.constant('application/json') },
  { weight: 1, arbitrary: fc.constantFrom('application/merge-patch+json', 'text/plain', 'application/json; charset=latin1') },
);

const unexpectedErrors = (entries: readonly LogEntry[]) => entries.filter((entry) => entry.level === 'error');

// PostgreSQL as well: it takes no U+0000 in any text, where SQLite stores or compares one like any other character.
describe.each(['sqlite', 'postgres'] as const)('fuzzing on %s (issue 13)', (kind) => {
  let stop: () => Promise<void>;
  beforeAll(async () => {
    stop = await start(kind);
  });
  afterAll(() => stop());

  it('answers every REST route with no 5xx, and stores nothing from a refused request', async () => {
    let answered = 0;
    const who = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('admin', 'fuzz', 'other') },
      { weight: 1, arbitrary: fc.constantFrom('token', 'none', 'wrong', 'garbage') },
    );
    const runs = fc.asyncProperty(
      fc.constantFrom(...operations).chain((operation) => fc.tuple(fc.constant(operation), bodyFor(operation))),
      fc.array(pathParameter(realIds), { minLength: 3, maxLength: 3 }),
      query,
      contentType,
      who,
      async ([operation, payload], parameters, search, type, who) => {
        let next = 0;
        const path = operation.path.replace(/\{[^}]+\}/g, () => parameters[next++] as string);
        const credential = credentials[who];
        const headers = {
          ...(credential !== undefined ? { authorization: `Bearer ${credential}` } : {}),
          ...(payload !== undefined ? { 'content-type': type, 'content-length': String(Buffer.byteLength(payload)) } : {}),
        };
        const before = await storeSnapshot(app.herald.store);
        const answer = await send(operation.method, `${path}${search}`, headers, payload);
        if (answer.status < 300) answered += 1;
        expect(answer.status, `${operation.method} ${path}${search} ${payload ?? ''}`).toBeLessThan(500);
        if (answer.status >= 400) {
          expect(answer.type).toMatch(/^application\/problem\+json/);
          expect(json(answer.text)).toMatchObject({ type: expect.stringMatching(/^urn:herald:problem:/), status: answer.status });
          expect(await storeSnapshot(app.herald.store), `${operation.method} ${path} was refused but changed the store`).toEqual(before);
        }
      },
    );
    await fc.assert(runs, { ...assertOptions, numRuns: 500 });
    // Enough requests got past validation to reach the handlers, or the pass would prove little.
    expect(answered).toBeGreaterThan(50);
    expect(unexpectedErrors(logged.entries)).toEqual([]);
    expect((await fetch(`${app.baseUrl}/healthz`)).status).toBe(200);
    expect((await app.api('GET', '/v1/event-types', undefined, credentials.fuzz)).status).toBe(200);
  }, passTimeout);

  it('answers every WebSocket frame without crashing, closing only with a protocol code, and stores nothing', async () => {
    const owner = await app.consumerKey('fuzz-ws');
    // The durable subscriptions belong to other consumers: nothing this connection may do changes the store.
    const wsCredentials = [owner, (await app.api('POST', '/v1/stream-tokens', {}, owner)).body.token, credentials.wrong, 'x'];
    const frameValue = fc.oneof(plausibleStrings, fc.constantFrom(...realIds), fc.constantFrom(...wsCredentials), fc.integer({ min: -1, max: 2 ** 53 }), fc.jsonValue({ maxDepth: 2 }));
    const id = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
    const patterns = fc.array(fc.constantFrom('order.*', 'order.created', '**', 'invoice.paid', 'nothing.here', 'order..x'), { minLength: 1, maxLength: 3 });
    const wellFormed = fc.oneof(
      fc.record({ type: fc.constant('auth'), token: fc.constantFrom(...wsCredentials) }),
      fc.record({ type: fc.constant('subscribe'), id, types: patterns, after: fc.nat({ max: 5 }) }, { requiredKeys: ['type', 'id', 'types'] }),
      fc.record({ type: fc.constant('subscribe'), id, subscription: fc.constantFrom(...realIds, 'sub_nope', 'sub_\u0000') }),
      fc.record({ type: fc.constant('unsubscribe'), id }),
      fc.record({ type: fc.constant('ack'), id, seq: fc.nat({ max: 5 }) }),
      fc.constantFrom({ type: 'ping' }, { type: 'pong' }),
    );
    const shaped = fc
      .record({
        type: fc.constantFrom('auth', 'subscribe', 'unsubscribe', 'ack', 'ping', 'pong', 'event', 'nope'),
        fields: fc.dictionary(fc.constantFrom('id', 'token', 'types', 'after', 'subscription', 'seq', 'filter'), fc.oneof(frameValue, fc.array(plausibleStrings, { maxLength: 3 })), { maxKeys: 4 }),
      })
      .map(({ type, fields }) => ({ type, ...fields }));
    const message = fc.oneof(
      { weight: 24, arbitrary: wellFormed.map((value) => JSON.stringify(value)) },
      { weight: 2, arbitrary: shaped.map((value) => JSON.stringify(value)) },
      { weight: 1, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)) },
    );
    const allowedCloses = new Set<number>([
      CloseCode.Normal,
      CloseCode.GoingAway,
      CloseCode.InvalidPayload,
      CloseCode.MessageTooBig,
      CloseCode.TryAgainLater,
      CloseCode.BadMessage,
      CloseCode.Unauthorized,
      CloseCode.Forbidden,
      CloseCode.AuthTimeout,
      CloseCode.DuplicateSubscription,
      CloseCode.TooSlow,
    ]);
    const url = `${app.baseUrl.replace('http', 'ws')}/v1/ws`;
    let answered = 0;

    const runs = fc.asyncProperty(fc.constantFrom(owner, owner, ...wsCredentials, undefined), fc.array(message, { minLength: 1, maxLength: 8 }), async (bearer, frames) => {
      const before = await storeSnapshot(app.herald.store);
      const ws = new WebSocket(url, 'herald.v1', bearer !== undefined ? { headers: { authorization: `Bearer ${bearer}` } } : {});
      const received: { type?: string }[] = [];
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      ws.on('error', () => {});
      ws.on('message', (data, binary) => {
        if (!binary) received.push(JSON.parse(data.toString()));
      });
      const opened = await new Promise<boolean>((resolve) => {
        ws.once('open', () => resolve(true));
        ws.once('unexpected-response', (_req, res) => {
          // A refused upgrade is an answer too; never a 5xx.
          expect(res.statusCode).toBeLessThan(500);
          resolve(false);
        });
      });
      if (!opened) return;
      for (const frame of frames) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
      // A ping the server answers once it has handled every frame before it (or the close that came first).
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ping' }));
      const ended = await Promise.race([
        closed,
        waitFor(() => received.some((frame) => frame.type === 'pong'), 'the pong').then(() => undefined),
      ]);
      if (ended !== undefined) expect(allowedCloses, `closed with ${ended}`).toContain(ended);
      else answered += 1;
      ws.close();
      await closed;
      expect(await storeSnapshot(app.herald.store)).toEqual(before);
    });
    await fc.assert(runs, { ...assertOptions, numRuns: 200 });
    // Enough connections lived through their frames to the pong, or the pass would prove little.
    expect(answered).toBeGreaterThan(20);
    expect(unexpectedErrors(logged.entries)).toEqual([]);
    expect((await fetch(`${app.baseUrl}/healthz`)).status).toBe(200);
    expect((await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 2 } })).status).toBe(202);
  }, passTimeout);
});
