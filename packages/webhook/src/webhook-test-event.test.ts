import type { LookupFunction } from '@herald/outbox';
import { defineEventType, sqliteStore } from '@herald/core';
import { sqlOutbox } from '@herald/outbox';
import { linger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { subscribeWebhook } from './subscribe-webhook.test-support.js';
import { type ReceivedRequest, startReceiver, verifiedEvent } from './test-receiver.test-support.js';
import type { WebhookOptions } from './webhook-options.js';
import { webhook } from './webhook-transport.js';

// `order.created` sorts first but has no example of its own; `order.shipped` has one, so it is the default.
const eventTypes = [
  defineEventType('order.created', z.object({ n: z.number() })),
  defineEventType('order.shipped', z.object({ n: z.number(), carrier: z.string() }).meta({ examples: [{ n: 42, carrier: 'ups' }] })),
  defineEventType('invoice.paid', z.object({ n: z.number() })),
] as const;

async function app(options: WebhookOptions = {}): Promise<TestApp<typeof eventTypes>> {
  const store = sqliteStore({ path: ':memory:' });
  const started = await startTestApp([webhook({ pollInterval: 50, ...options })], { store, eventTypes, env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' } });
  onTestFinished(() => started.close());
  return started;
}

/** What the test left behind: it must be nothing. */
async function leftBehind(app: TestApp<typeof eventTypes>, id: string) {
  const outbox = await sqlOutbox(app.herald.store);
  const deliveries = await outbox.list(id, { limit: 100 });
  return { latest: app.herald.bus.latest, deliveries: deliveries.length, attempts: (await outbox.attempts(deliveries.map((d) => d.id))).length };
}

describe('POST /v1/subscriptions/:id/test (issue 19)', () => {
  it('sends the example of the first matching type that has one, signed and marked as a test, and keeps nothing', async () => {
    const herald = await app();
    const inbox = await startReceiver(() => ({ status: 204 }));
    const { id, key, secret } = await subscribeWebhook(herald, { url: inbox.url }, { types: ['order.*'] });

    const { status, body } = await herald.api('POST', `/v1/subscriptions/${id}/test`, {}, key);
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ attempt: 1, status: 'succeeded', responseStatus: 204, error: null, nextAttemptAt: null });
    expect(body.durationMs).toBeGreaterThanOrEqual(0);
    expect(body.event).toMatchObject({ seq: 0, type: 'order.shipped', data: { n: 42, carrier: 'ups' }, id: expect.stringMatching(/^evt_test_/) });

    expect(inbox.requests).toHaveLength(1);
    const request = inbox.requests[0] as ReceivedRequest;
    expect(request.headers['herald-test']).toBe('1');
    expect(request.headers['webhook-id']).toBe(body.event.id);
    // Signed as a delivery is: any Standard Webhooks verifier accepts it.
    expect(verifiedEvent(secret, request)).toEqual(body.event);

    expect(await leftBehind(herald, id)).toEqual({ latest: 0, deliveries: 0, attempts: 0 });
    expect((await herald.api('GET', `/v1/subscriptions/${id}/deliveries`, undefined, key)).body.data).toEqual([]);
  });

  it('sends the type and data given; a failing endpoint shows what it answered, and is not tried again', async () => {
    const herald = await app({ retrySchedule: [0, 0.05, 0.05] });
    const inbox = await startReceiver(() => ({ status: 500, body: 'the database is down' }));
    const { id, key } = await subscribeWebhook(herald, { url: inbox.url }, { types: ['order.*'] });

    const { status, body } = await herald.api('POST', `/v1/subscriptions/${id}/test`, { type: 'order.created', data: { n: 7 } }, key);
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'failed', responseStatus: 500, responseBody: 'the database is down', error: expect.any(String), nextAttemptAt: null });
    expect(body.event).toMatchObject({ seq: 0, type: 'order.created', data: { n: 7 } });
    expect(JSON.parse((inbox.requests[0] as ReceivedRequest).body)).toEqual(body.event);

    await linger(300);
    expect(inbox.requests).toHaveLength(1);
    expect(await leftBehind(herald, id)).toEqual({ latest: 0, deliveries: 0, attempts: 0 });
    // A failed test does not count against the endpoint: it stays active.
    expect((await herald.api('GET', `/v1/subscriptions/${id}`, undefined, key)).body.status).toBe('active');
  });

  it('answers a type the subscription does not match, data its schema refuses, or an unknown field with 422, sending nothing', async () => {
    const herald = await app();
    const inbox = await startReceiver();
    const { id, key } = await subscribeWebhook(herald, { url: inbox.url }, { types: ['order.*'] });
    const refused = [
      [{ type: 'invoice.paid' }, 'type'],
      [{ type: 'order.cancelled' }, 'type'],
      [{ type: 'order.created', data: { n: 'seven' } }, 'data'],
      [{ type: 'order.shipped', data: { n: 1 } }, 'data'],
      [{ data: 5 }, 'data'],
      [{ type: 'order.created', to: 'elsewhere' }, ''],
    ] as const;
    for (const [body, field] of refused) {
      const answer = await herald.request('POST', `/v1/subscriptions/${id}/test`, body, key);
      expect(answer.status, JSON.stringify(body)).toBe(422);
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      if (field) expect(answer.body.errors.map((issue: { path: string[] }) => issue.path[0]), JSON.stringify(answer.body)).toContain(field);
    }
    expect(inbox.requests).toHaveLength(0);
  });

  it("answers another consumer's subscription with 404", async () => {
    const herald = await app();
    const inbox = await startReceiver();
    const { id } = await subscribeWebhook(herald, { url: inbox.url }, { types: ['order.*'] });
    const otherKey = await herald.consumerKey('globex');
    expect(await herald.api('POST', `/v1/subscriptions/${id}/test`, {}, otherKey)).toMatchObject({ status: 404, body: { type: 'urn:herald:problem:not-found' } });
    expect(await herald.api('POST', '/v1/subscriptions/sub_nope/test', {}, otherKey)).toMatchObject({ status: 404 });
    expect(inbox.requests).toHaveLength(0);
  });

  it('sends to a paused subscription, and answers more than 3 a second with 429 and Retry-After', async () => {
    const herald = await app();
    const inbox = await startReceiver();
    const { id, key } = await subscribeWebhook(herald, { url: inbox.url }, { types: ['order.*'] });
    expect((await herald.api('PATCH', `/v1/subscriptions/${id}`, { status: 'paused' }, key)).status).toBe(200);

    // At once, so that the bucket has no time to refill (it does by one every 333 ms).
    const answers = await Promise.all(Array.from({ length: 6 }, () => herald.request('POST', `/v1/subscriptions/${id}/test`, {}, key)));
    const sent = answers.filter((answer) => answer.status === 200).length;
    expect(sent).toBeGreaterThanOrEqual(3);
    expect(sent).toBeLessThanOrEqual(4);
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(6 - sent);
    const limited = answers.find((answer) => answer.status === 429);
    expect(limited?.body).toMatchObject({ type: 'urn:herald:problem:rate-limited', status: 429 });
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(inbox.requests).toHaveLength(answers.filter((answer) => answer.status === 200).length);
    // Another subscription has its own allowance.
    const other = await subscribeWebhook(herald, { url: inbox.url }, { types: ['order.*'] });
    expect((await herald.api('POST', `/v1/subscriptions/${other.id}/test`, {}, other.key)).status).toBe(200);
    // And this one has one again a second later.
    await linger(1_000);
    expect((await herald.api('POST', `/v1/subscriptions/${id}/test`, {}, key)).status).toBe(200);
  });

  it('sends nothing to an endpoint that has not passed verification: 409', async () => {
    const herald = await app({ verifyEndpoints: true });
    // Answers the challenge without echoing it: the endpoint stays unverified.
    const inbox = await startReceiver(() => ({ status: 200, body: 'ok' }));
    const key = await herald.consumerKey('acme');
    const created = await herald.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], config: { url: inbox.url } }, key);
    expect(created.status).toBe(201);
    await waitFor(() => inbox.requests.length >= 1, 'the challenge');
    const answer = await herald.api('POST', `/v1/subscriptions/${created.body.id}/test`, {}, key);
    expect(answer).toMatchObject({ status: 409, body: { type: 'urn:herald:problem:conflict' } });
    expect(inbox.requests.filter((request) => request.headers['herald-test'] !== undefined)).toHaveLength(0);
  });

  it('goes through the address guard as a delivery does: a name that resolves to 127.0.0.1 is refused at connect time', async () => {
    const rebinding: LookupFunction = (_hostname, options, callback) =>
      options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
    const herald = await startTestApp([webhook({ lookup: rebinding })], { store: sqliteStore({ path: ':memory:' }), eventTypes });
    onTestFinished(() => herald.close());
    const key = await herald.consumerKey('acme');
    const created = await herald.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], config: { url: 'https://hooks.rebind.example/in' } }, key);
    expect(created.status).toBe(201);
    const { status, body } = await herald.api('POST', `/v1/subscriptions/${created.body.id}/test`, {}, key);
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'failed', responseStatus: null });
    expect(body.error).toMatch(/hooks\.rebind\.example resolves to a loopback address/);
  });

  it('is in /openapi.json', async () => {
    const herald = await app();
    const documented = (await (await fetch(`${herald.baseUrl}/openapi.json`)).json()).paths['/v1/subscriptions/{id}/test'];
    expect(Object.keys(documented)).toEqual(['post']);
    expect(documented.post.responses['200'].content['application/json'].schema.properties).toHaveProperty('responseBody');
    expect(documented.post.requestBody.content['application/json'].schema.properties).toHaveProperty('type');
  });
});
