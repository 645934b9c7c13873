import { memoryTransport, startTestApp, type TestApp } from '@herald/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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

/** What is stored: the log's bounds, every subscription, every key and every event type. */
async function snapshot() {
  return {
    log: await app.herald.store.bounds(),
    subscriptions: await app.herald.store.subscriptions.list(),
    keys: await app.herald.store.keys.list(),
    eventTypes: await app.herald.store.eventTypes.list(),
  };
}

describe('bad input', () => {
  it.each(cases)('$name → $status', async (badCase) => {
    const before = await snapshot();
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
    expect(await snapshot()).toEqual(before);
  });
});
