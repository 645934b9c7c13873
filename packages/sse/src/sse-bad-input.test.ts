import { memoryTransport } from '@herald/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectEvents, eventSourceWithKey, opened, type StreamApp, startStreamApp } from './stream-app.test-support.js';

let app: StreamApp;
let acmeKey: string;
let acmeSubscription: string;
let betaSubscription: string;
let memorySubscription: string;
let scopedToken: string;
let expiredToken: string;

beforeAll(async () => {
  app = await startStreamApp({}, [memoryTransport()]);
  acmeKey = await app.consumerKey('acme');
  const betaKey = await app.consumerKey('beta');
  acmeSubscription = (await app.api('POST', '/v1/subscriptions', { transport: 'sse', types: ['**'] }, acmeKey)).body.id;
  betaSubscription = (await app.api('POST', '/v1/subscriptions', { transport: 'sse', types: ['order.*'] }, betaKey)).body.id;
  memorySubscription = (await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'] }, acmeKey)).body.id;
  scopedToken = await app.streamToken(acmeKey, { types: ['order.*'] });

  // A token whose lifetime is over: issued, then its stored expiry moved into the past before first use.
  expiredToken = await app.streamToken(acmeKey);
  const id = `stk_${expiredToken.split('_')[1]}`;
  const record = await app.herald.store.keys.get(id);
  if (!record) throw new Error(`no stored token ${id}`);
  await app.herald.store.keys.put({ ...record, expiresAt: new Date(Date.now() - 1000).toISOString() });
});

afterAll(() => app?.close());

interface BadRequest {
  name: string;
  query: () => string;
  key?: () => string | undefined;
  headers?: Record<string, string>;
  status: number;
  type: string;
  detail?: RegExp;
  /** The problem's `errors`, each with at least these fields. */
  errors?: { path: string[]; message: string }[];
}

const bracketsMessage = 'is not a parameter: give types comma-separated (types=a,b) or repeated (types=a&types=b)';

const cases: BadRequest[] = [
  { name: 'no credential', query: () => 'types=order.created', key: () => undefined, status: 401, type: 'unauthorized' },
  { name: 'a malformed Authorization header', query: () => 'types=order.created', key: () => undefined, headers: { authorization: 'Basic abc' }, status: 401, type: 'unauthorized' },
  { name: 'a bad token', query: () => `types=order.created&access_token=hs_${'0'.repeat(20)}_${'1'.repeat(64)}`, key: () => undefined, status: 401, type: 'unauthorized' },
  { name: 'an expired token', query: () => `types=order.created&access_token=${expiredToken}`, key: () => undefined, status: 401, type: 'unauthorized', detail: /expired/ },
  { name: 'a pattern outside the token scope', query: () => `types=order.*,invoice.paid&access_token=${scopedToken}`, key: () => undefined, status: 403, type: 'forbidden' },
  {
    name: 'a durable subscription wider than the token scope',
    query: () => `subscription=${acmeSubscription}&access_token=${scopedToken}`,
    key: () => undefined,
    status: 403,
    type: 'forbidden',
  },
  { name: 'an invalid pattern', query: () => 'types=order.**.created', status: 422, type: 'validation-failed' },
  { name: 'an unknown event type', query: () => 'types=order.created,nope.created', status: 422, type: 'unknown-event-type' },
  { name: 'a pattern that matches no type', query: () => 'types=nope.*', status: 422, type: 'unknown-event-type' },
  { name: 'empty types', query: () => 'types=', status: 422, type: 'validation-failed' },
  { name: 'neither types nor subscription', query: () => '', status: 422, type: 'validation-failed' },
  ...['types[]', 'types[0]', 'types[a]'].map((name) => ({
    name: `types given as ${name}`,
    query: () => `${encodeURIComponent(name)}=order.created`,
    status: 422,
    type: 'validation-failed',
    errors: [{ path: [name], message: bracketsMessage }],
  })),
  {
    name: 'types given with brackets next to types',
    query: () => 'types=order.created&types[]=order.shipped',
    status: 422,
    type: 'validation-failed',
    errors: [{ path: ['types[]'], message: bracketsMessage }],
  },
  { name: 'both types and subscription', query: () => `types=order.created&subscription=${acmeSubscription}`, status: 422, type: 'validation-failed' },
  { name: 'a bad named flag', query: () => 'types=order.created&named=maybe', status: 422, type: 'validation-failed' },
  { name: 'a malformed Last-Event-ID header', query: () => 'types=order.created', headers: { 'last-event-id': 'abc' }, status: 400, type: 'malformed-last-event-id' },
  { name: 'a negative lastEventId', query: () => 'types=order.created&lastEventId=-1', status: 400, type: 'malformed-last-event-id' },
  { name: 'a lastEventId past safe integers', query: () => 'types=order.created&lastEventId=99999999999999999', status: 400, type: 'malformed-last-event-id' },
  { name: 'a repeated lastEventId', query: () => 'types=order.created&lastEventId=1&lastEventId=2', status: 400, type: 'malformed-last-event-id' },
  { name: 'after, which resumes a poll but not a stream', query: () => 'types=order.created&after=5', status: 422, type: 'validation-failed', detail: /Last-Event-ID/ },
  { name: "another consumer's durable subscription", query: () => `subscription=${betaSubscription}`, status: 404, type: 'not-found' },
  { name: 'a subscription of another transport', query: () => `subscription=${memorySubscription}`, status: 404, type: 'not-found' },
  { name: 'an unknown subscription', query: () => 'subscription=sub_nope', status: 404, type: 'not-found' },
];

describe('bad stream requests get a problem, never a stream', () => {
  it.each(cases)('$name → $status $type', async ({ query, key, headers, status, type, detail, errors }) => {
    const credential = key ? key() : acmeKey;
    const response = await fetch(`${app.baseUrl}/v1/stream?${query()}`, {
      headers: { accept: 'text/event-stream', ...(credential !== undefined ? { authorization: `Bearer ${credential}` } : {}), ...headers },
    });
    // A stream opened by mistake is closed, so that it fails its own case and not the ones after it.
    if (response.ok) await response.body?.cancel();
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await response.json()) as { type: string; status: number; detail?: string; errors?: unknown };
    expect(problem.type).toBe(`urn:herald:problem:${type}`);
    expect(problem.status).toBe(status);
    if (detail) expect(problem.detail).toMatch(detail);
    if (errors) expect(problem.errors).toMatchObject(errors);
    expect(app.sse.connections).toBe(0);
  });

  it('leaves the server streaming to good requests', async () => {
    const source = eventSourceWithKey(`${app.baseUrl}/v1/stream?types=order.created`, acmeKey);
    try {
      const events = collectEvents(source, ['order.created']);
      await opened(source);
      const { event } = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
      await expect.poll(() => events.map((received) => received.id)).toEqual([event.id]);
    } finally {
      source.close();
    }
  });
});
