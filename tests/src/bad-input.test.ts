import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { type LogEntry, memoryTransport, recordingLogger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { websocket } from '@herald/websocket';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
// By path: core's test support, for a PostgreSQL database of the test's own.
import { freshDatabase } from '../../packages/core/src/sql/postgres.test-support.js';
import { storeSnapshot } from './store-snapshot.js';

let app: TestApp;
let alphaKey: string;
let betaSubscription: string;

beforeAll(async () => {
  app = await startTestApp([memoryTransport()], { bodyLimit: 4096 });
  alphaKey = await app.consumerKey('alpha');
  const betaKey = await app.consumerKey('beta');
  await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 } });
  betaSubscription = (await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'] }, betaKey)).body.id;
});
afterAll(() => app.close());

interface Case {
  name: string;
  method: string;
  path: string;
  /** A raw body string, sent as is. */
  body?: string;
  headers?: Record<string, string>;
  /** Whose key to send: the admin's, alpha's, none, or a made-up one. */
  as?: 'admin' | 'alpha' | 'none' | 'wrong' | 'malformed';
  status: number;
  code: string;
}

const json = { 'content-type': 'application/json' };

const cases: Case[] = [
  { name: 'malformed JSON', method: 'POST', path: '/v1/events', body: '{"type": "order.created",', headers: json, status: 400, code: 'malformed-json' },
  { name: 'a JSON body that is not an object', method: 'POST', path: '/v1/events', body: '"order.created"', headers: json, status: 400, code: 'malformed-json' },
  { name: 'wrong content type', method: 'POST', path: '/v1/events', body: 'type=order.created', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported-media-type' },
  { name: 'a body without a content type', method: 'POST', path: '/v1/events', body: '{"type":"order.created","data":{"n":1}}', headers: {}, status: 415, code: 'unsupported-media-type' },
  { name: 'a body over the limit', method: 'POST', path: '/v1/events', body: JSON.stringify({ type: 'order.created', data: { n: 1, pad: 'x'.repeat(5000) } }), headers: json, status: 413, code: 'body-too-large' },
  { name: 'an unknown event type', method: 'POST', path: '/v1/events', body: JSON.stringify({ type: 'order.vanished', data: { n: 1 } }), headers: json, status: 422, code: 'unknown-event-type' },
  { name: 'data failing its schema', method: 'POST', path: '/v1/events', body: JSON.stringify({ type: 'order.created', data: { n: 'one' } }), headers: json, status: 422, code: 'validation-failed' },
  { name: 'an unknown field on an event', method: 'POST', path: '/v1/events', body: JSON.stringify({ type: 'order.created', data: { n: 1 }, seq: 5 }), headers: json, status: 422, code: 'validation-failed' },
  { name: 'an event id with a line break', method: 'POST', path: '/v1/events', body: JSON.stringify({ id: 'a\nb', type: 'order.created', data: { n: 1 } }), headers: json, status: 422, code: 'validation-failed' },
  { name: 'an event addressed to a malformed consumer', method: 'POST', path: '/v1/events', body: JSON.stringify({ type: 'order.created', data: { n: 1 }, consumer: 'a b' }), headers: json, status: 422, code: 'validation-failed' },
  { name: 'a bad pattern', method: 'POST', path: '/v1/subscriptions', body: JSON.stringify({ transport: 'memory', types: ['order.**.created'] }), headers: json, as: 'alpha', status: 422, code: 'validation-failed' },
  { name: 'no types', method: 'POST', path: '/v1/subscriptions', body: JSON.stringify({ transport: 'memory', types: [] }), headers: json, as: 'alpha', status: 422, code: 'validation-failed' },
  { name: 'an unknown transport', method: 'POST', path: '/v1/subscriptions', body: JSON.stringify({ transport: 'pigeon', types: ['order.*'] }), headers: json, as: 'alpha', status: 422, code: 'validation-failed' },
  { name: 'a config the transport does not take', method: 'POST', path: '/v1/subscriptions', body: JSON.stringify({ transport: 'memory', types: ['order.*'], config: { url: 'x' } }), headers: json, as: 'alpha', status: 422, code: 'validation-failed' },
  { name: 'an admin subscription without a consumer', method: 'POST', path: '/v1/subscriptions', body: JSON.stringify({ transport: 'memory', types: ['order.*'] }), headers: json, status: 422, code: 'validation-failed' },
  { name: 'a bad pattern in a log read', method: 'GET', path: '/v1/events?types=order..x', status: 422, code: 'validation-failed' },
  { name: 'a negative after', method: 'GET', path: '/v1/events?after=-1', status: 422, code: 'validation-failed' },
  { name: 'a limit over the maximum', method: 'GET', path: '/v1/events?limit=100000', status: 422, code: 'validation-failed' },
  { name: 'an invalid event-type name', method: 'POST', path: '/v1/event-types', body: JSON.stringify({ name: 'order created' }), headers: json, status: 422, code: 'validation-failed' },
  { name: 'a schema that is not JSON Schema', method: 'POST', path: '/v1/event-types', body: JSON.stringify({ name: 'odd.type', schema: { type: 'banana' } }), headers: json, status: 422, code: 'validation-failed' },
  { name: 'a consumer key without a consumer', method: 'POST', path: '/v1/keys', body: JSON.stringify({ role: 'consumer' }), headers: json, status: 422, code: 'validation-failed' },
  { name: 'a missing key', method: 'GET', path: '/v1/subscriptions', as: 'none', status: 401, code: 'unauthorized' },
  { name: 'a wrong key', method: 'GET', path: '/v1/subscriptions', as: 'wrong', status: 401, code: 'unauthorized' },
  { name: 'a malformed Authorization header', method: 'GET', path: '/v1/subscriptions', as: 'malformed', status: 401, code: 'unauthorized' },
  { name: "another consumer's subscription", method: 'GET', path: '/v1/subscriptions/{beta}', as: 'alpha', status: 404, code: 'not-found' },
  { name: "changing another consumer's subscription", method: 'PATCH', path: '/v1/subscriptions/{beta}', body: JSON.stringify({ status: 'paused' }), headers: json, as: 'alpha', status: 404, code: 'not-found' },
  { name: 'an empty change', method: 'PATCH', path: '/v1/subscriptions/{beta}', body: '{}', headers: json, status: 422, code: 'validation-failed' },
  { name: 'an unknown route', method: 'GET', path: '/v1/nothing-here', status: 404, code: 'not-found' },
];

describe('bad input', () => {
  it.each(cases)('$name → $status', async (badCase) => {
    const before = await storeSnapshot(app.herald.store);
    const authorization = {
      admin: `Bearer ${app.adminKey}`,
      alpha: `Bearer ${alphaKey}`,
      none: undefined,
      wrong: 'Bearer hk_0123456789abcdef0123_0000000000000000000000000000000000000000000000000000000000000000',
      malformed: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l',
    }[badCase.as ?? 'admin'];
    const response = await fetch(`${app.baseUrl}${badCase.path.replace('{beta}', betaSubscription)}`, {
      method: badCase.method,
      headers: { ...(authorization ? { authorization } : {}), ...badCase.headers },
      ...(badCase.body !== undefined ? { body: badCase.body } : {}),
    });
    expect(response.status).toBe(badCase.status);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = await response.json();
    expect(problem).toMatchObject({ type: `urn:herald:problem:${badCase.code}`, status: badCase.status, title: expect.any(String) });
    if (badCase.status === 422) expect(problem.errors?.length ?? 0).toBeGreaterThan(0);
    expect(await storeSnapshot(app.herald.store)).toEqual(before);
  });
});

describe('bad input, said in words a client knows', () => {
  const errorsOf = async (path: string, body?: unknown) => {
    const response = await fetch(`${app.baseUrl}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${app.adminKey}`, ...(body === undefined ? {} : json) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    expect(response.status).toBe(422);
    return ((await response.json()) as { errors: { path: unknown[]; message: string }[] }).errors.map(({ path, message }) => ({ path, message }));
  };

  it('names a missing field, a number that is none, a whole number that is not, a parameter given twice', async () => {
    const before = await storeSnapshot(app.herald.store);
    expect(await errorsOf('/v1/events', { type: 'order.created' })).toEqual([{ path: ['data'], message: 'required' }]);
    expect(await errorsOf('/v1/event-types', { name: 'Bad Name!' })).toEqual([{ path: ['name'], message: 'must be dot-separated segments of letters, digits, "_" and "-"' }]);
    expect(await errorsOf('/v1/events?after=abc')).toEqual([{ path: ['after'], message: 'must be a number, not "abc"' }]);
    expect(await errorsOf('/v1/events?limit=2.5')).toEqual([{ path: ['limit'], message: 'must be a whole number' }]);
    // Only decimal numerals read as numbers: not an exponent, hex, or a space that Number() would skip.
    for (const numeral of ['1e2', '0x10', '%2010', '10%20']) {
      const given = decodeURIComponent(numeral);
      expect(await errorsOf(`/v1/events?limit=${numeral}`), numeral).toEqual([{ path: ['limit'], message: `must be a number, not ${JSON.stringify(given)}` }]);
    }
    expect(await errorsOf(`/v1/events?filter=${encodeURIComponent('[]')}`)).toEqual([{ path: ['filter'], message: 'must be an object of paths and conditions' }]);
    expect(await errorsOf('/v1/events?after=1&after=2')).toEqual([{ path: ['after'], message: 'given more than once; give it once' }]);
    // `types` is a list: given twice, it is both (see request-refusals.test.ts).
    expect(await errorsOf('/v1/events?limit=1&limit=2')).toEqual([{ path: ['limit'], message: 'given more than once; give it once' }]);
    // Numerals still read as numbers.
    const read = await fetch(`${app.baseUrl}/v1/events?after=0&limit=1`, { headers: { authorization: `Bearer ${app.adminKey}` } });
    expect(((await read.json()) as { data: unknown[] }).data).toHaveLength(1);
    expect(await storeSnapshot(app.herald.store)).toEqual(before);
  });
});

/** Sends a request exactly as given, path and body bytes included. */
function rawRequest(
  target: TestApp,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<{ status: number; type: string; body: string }> {
  const { port } = new URL(target.baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

interface RawCase {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send the admin key: the same input must be refused with it too. */
  admin?: boolean;
  status: number;
  code: string;
}

const rawCases: RawCase[] = [
  { name: 'an unknown Content-Encoding', method: 'POST', path: '/v1/events', headers: { ...json, 'content-encoding': 'bogus' }, body: '{}', status: 415, code: 'unsupported-encoding' },
  { name: 'a gzip body that is not gzip', method: 'POST', path: '/v1/events', headers: { ...json, 'content-encoding': 'gzip' }, body: 'not gzip at all', status: 400, code: 'undecodable-body' },
  { name: 'a deflate body that is not deflate', method: 'POST', path: '/v1/subscriptions', headers: { ...json, 'content-encoding': 'deflate' }, body: 'not deflate', status: 400, code: 'undecodable-body' },
  { name: 'a br body that is not brotli', method: 'POST', path: '/v1/keys', headers: { ...json, 'content-encoding': 'br' }, body: Buffer.from([0xff, 0xff, 0xff, 0xff]), status: 400, code: 'undecodable-body' },
  { name: 'a gzip body that inflates past the limit', method: 'POST', path: '/v1/events', headers: { ...json, 'content-encoding': 'gzip' }, body: gzipSync(`{"pad":"${'x'.repeat(300_000)}"}`), status: 413, code: 'body-too-large' },
  { name: 'a UTF-16 body', method: 'POST', path: '/v1/events', headers: { 'content-type': 'application/json; charset=utf-16le' }, body: Buffer.from('{"type":"order.created"}', 'utf16le'), status: 415, code: 'unsupported-charset' },
  { name: 'a malformed percent-encoding in a subscription path', method: 'GET', path: '/v1/subscriptions/%E0%A4%A', status: 400, code: 'malformed-path' },
  { name: 'a malformed percent-encoding in a PATCH', method: 'PATCH', path: '/v1/subscriptions/%E0%A4%A', headers: json, body: '{"status":"paused"}', status: 400, code: 'malformed-path' },
  { name: 'a malformed percent-encoding in a DELETE', method: 'DELETE', path: '/v1/keys/%E0%A4%A', status: 400, code: 'malformed-path' },
  { name: 'a malformed percent-encoding in an event-type path', method: 'GET', path: '/v1/event-types/%C0', status: 400, code: 'malformed-path' },
  { name: 'JSON objects nested 5,000 deep', method: 'POST', path: '/v1/events', headers: json, body: nested(5000), status: 400, code: 'json-too-deep' },
  { name: 'JSON arrays nested 4,000 deep', method: 'POST', path: '/v1/subscriptions', headers: json, body: `${'['.repeat(4000)}${']'.repeat(4000)}`, status: 400, code: 'json-too-deep' },
  { name: 'deep JSON in a gzip body', method: 'POST', path: '/v1/events', headers: { ...json, 'content-encoding': 'gzip' }, body: gzipSync(nested(3000)), status: 400, code: 'json-too-deep' },
  {
    name: 'event data nested 50,000 deep, with the admin key',
    method: 'POST',
    path: '/v1/events',
    headers: json,
    body: `{"type":"order.created","data":{"n":1,"deep":${`${'['.repeat(50_000)}${']'.repeat(50_000)}`}}}`,
    admin: true,
    status: 400,
    code: 'json-too-deep',
  },
];

describe('bad input before authentication (issue 13)', () => {
  let logged: ReturnType<typeof recordingLogger>;
  let quiet: TestApp;

  beforeAll(async () => {
    logged = recordingLogger();
    quiet = await startTestApp([memoryTransport()], { logger: logged });
  });
  afterAll(() => quiet.close());

  it.each(rawCases)('$name → $status', async (rawCase) => {
    const before = await storeSnapshot(quiet.herald.store);
    const loggedBefore = logged.entries.length;
    const headers = { ...rawCase.headers, ...(rawCase.admin ? { authorization: `Bearer ${quiet.adminKey}` } : {}) };
    const answer = await rawRequest(quiet, rawCase.method, rawCase.path, headers, rawCase.body);
    expect({ status: answer.status, type: answer.type }).toEqual({ status: rawCase.status, type: expect.stringMatching(/^application\/problem\+json/) });
    expect(JSON.parse(answer.body)).toMatchObject({ type: `urn:herald:problem:${rawCase.code}`, status: rawCase.status, title: expect.any(String) });
    expect(await storeSnapshot(quiet.herald.store)).toEqual(before);
    expect(stackTraces(logged.entries.slice(loggedBefore))).toEqual([]);
    // The server still answers.
    expect((await fetch(`${quiet.baseUrl}/healthz`)).status).toBe(200);
  });

  it('still takes JSON nested as deep as any real document goes', async () => {
    const answer = await rawRequest(quiet, 'POST', '/v1/event-types', { ...json, authorization: `Bearer ${quiet.adminKey}` }, JSON.stringify({ name: 'deep.enough', schema: deepSchema(45) }));
    expect(answer.status).toBe(201);
  });
});

/** A JSON Schema of objects within objects, `levels` deep (two JSON levels each). */
function deepSchema(levels: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let level = 0; level < levels; level++) schema = { type: 'object', properties: { inner: schema } };
  return schema;
}

/** The entries that carry an error with its stack trace, or are at level error. */
function stackTraces(entries: readonly LogEntry[]): LogEntry[] {
  return entries.filter((entry) => entry.level === 'error' || Object.values(entry.fields).some((value) => value instanceof Error));
}

/** `count` different CJK characters (3 bytes each in UTF-8), which PostgreSQL cannot compress away in an index. */
const cjk = (count: number) => Array.from({ length: count }, (_, at) => String.fromCharCode(0x4e00 + ((at * 7919) % 20_000))).join('');

describe('text PostgreSQL takes in no column: U+0000, control characters and long subjects', () => {
  it.each(['sqlite', 'postgres'] as const)('is refused or found nowhere, the same on %s, and nothing is stored', async (kind) => {
    const database = kind === 'postgres' ? await freshDatabase() : undefined;
    const target = await startTestApp([memoryTransport(), websocket()], database ? { database: database.url } : {});
    try {
      const key = await target.consumerKey('alpha');
      const subscription = (await target.api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'] }, key)).body.id;
      const before = await storeSnapshot(target.herald.store);
      const answers = {
        'a subject with U+0000': await target.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, subject: 'a\u0000b' }),
        'a subject with a line break': await target.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, subject: 'a\nb' }),
        // 1,024 characters, 3,072 bytes: more than PostgreSQL's index on (type, subject) takes in a row.
        'a subject over 1,024 bytes': await target.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, subject: cjk(1024) }),
        // Which each store would keep as U+FFFD, a subject other than the one acknowledged.
        'a subject with an unpaired surrogate': await target.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, subject: 'a\ud800' }),
        'a description with U+0000': await target.api('POST', '/v1/event-types', { name: 'odd.type', description: 'x\u0000' }),
        'a list of a transport with U+0000': await target.api('GET', '/v1/subscriptions?transport=a%00b'),
        'a subscription id with U+0000': await target.api('GET', '/v1/subscriptions/sub_%00'),
        'a change of it': await target.api('PATCH', '/v1/subscriptions/sub_%00', { status: 'paused' }),
        'its deliveries': await target.api('GET', '/v1/subscriptions/sub_%00/deliveries'),
        'a delivery id with U+0000': await target.api('GET', '/v1/deliveries/dlv_%00'),
        'an SSE stream of it': await target.api('GET', '/v1/stream?subscription=sub_%00'),
      };
      expect(Object.fromEntries(Object.entries(answers).map(([name, answer]) => [name, [answer.status, answer.body?.type]]))).toEqual({
        'a subject with U+0000': [422, 'urn:herald:problem:validation-failed'],
        'a subject with a line break': [422, 'urn:herald:problem:validation-failed'],
        'a subject over 1,024 bytes': [422, 'urn:herald:problem:validation-failed'],
        'a subject with an unpaired surrogate': [422, 'urn:herald:problem:validation-failed'],
        'a description with U+0000': [422, 'urn:herald:problem:validation-failed'],
        'a list of a transport with U+0000': [422, 'urn:herald:problem:validation-failed'],
        'a subscription id with U+0000': [404, 'urn:herald:problem:not-found'],
        'a change of it': [404, 'urn:herald:problem:not-found'],
        'its deliveries': [404, 'urn:herald:problem:not-found'],
        'a delivery id with U+0000': [404, 'urn:herald:problem:not-found'],
        'an SSE stream of it': [404, 'urn:herald:problem:not-found'],
      });
      expect(answers['a subject with a line break'].body.errors).toEqual([expect.objectContaining({ path: ['subject'] })]);

      // A WebSocket subscribe of such an id is told the subscription is not found; the connection goes on.
      const socket = new WebSocket(`${target.baseUrl.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
      const messages: { type: string; id?: string; code?: string }[] = [];
      socket.on('message', (data) => messages.push(JSON.parse(String(data))));
      await waitFor(() => messages.some((message) => message.type === 'ready'), 'the WebSocket to be ready');
      socket.send(JSON.stringify({ type: 'subscribe', id: 's1', subscription: 'sub_\u0000' }));
      socket.send(JSON.stringify({ type: 'subscribe', id: 's2', subscription }));
      await waitFor(() => messages.some((message) => message.id === 's2'), 'the answer to the second subscribe');
      expect(messages.filter((message) => message.id !== undefined)).toEqual([
        expect.objectContaining({ type: 'error', id: 's1', code: 'subscription-not-found' }),
        expect.objectContaining({ type: 'subscribed', id: 's2' }),
      ]);
      socket.close();
      expect(await storeSnapshot(target.herald.store)).toEqual(before);
      // A subject of 1,024 bytes, the most there is, is stored on either.
      const longest = `${cjk(341)}x`;
      const published = await target.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, subject: longest });
      expect(published.status).toBe(202);
      expect((await target.api('GET', `/v1/events?after=${published.body.seq - 1}`)).body.data[0].subject).toBe(longest);
    } finally {
      await target.close();
      await database?.drop();
    }
  });
});
