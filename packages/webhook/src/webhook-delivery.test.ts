import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HeraldEvent, Logger } from '@herald/core';
import { type LookupFunction, sqlOutbox } from '@herald/outbox';
import { metricValue, recordingLogger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase, tempFolder } from '../../core/src/temp-folder.test-support.js';
import { subscribeWebhook } from './subscribe-webhook.test-support.js';
import { openStore, type ReceivedRequest, type ReplyFn, startReceiver, verifiedEvent } from './test-receiver.test-support.js';
// By path: core's test support, for a PostgreSQL database of the test's own.
import { freshDatabase } from '../../core/src/sql/postgres.test-support.js';
import type { WebhookOptions } from './webhook-options.js';
import { signature } from './webhook-signature.js';
import { webhook as createWebhook } from './webhook-transport.js';

const allowPrivate = { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' };

async function app(options: WebhookOptions = {}, env: Record<string, string> = allowPrivate, logger?: Logger): Promise<TestApp> {
  const started = await startTestApp([createWebhook({ pollInterval: 50, ...options })], { env, ...(logger ? { logger } : {}) });
  onTestFinished(() => started.close());
  return started;
}

async function publish(target: TestApp, n: number, type: 'order.created' | 'invoice.paid' = 'order.created'): Promise<HeraldEvent> {
  return (await target.herald.publish({ type, data: { n } })).event;
}

async function deliveries(target: TestApp, subscriptionId: string, key = target.adminKey) {
  const { status, body } = await target.api('GET', `/v1/subscriptions/${subscriptionId}/deliveries?limit=200`, undefined, key);
  expect(status).toBe(200);
  return body.data as any[];
}

type Verify = (secret: string, rawBody: string, headers: Record<string, unknown>) => boolean;

/** The verifier docs/protocol/webhooks.md gives a consumer who writes their own, as the page has it. */
async function docsVerifier(): Promise<Verify> {
  const page = readFileSync(new URL('../../../docs/protocol/webhooks.md', import.meta.url), 'utf8');
  const sample = /```js\n(import \{ createHmac[\s\S]*?)```/.exec(page)?.[1];
  if (!sample) throw new Error("webhooks.md's verifier sample is not where the test looks for it");
  const file = join(tempFolder(), 'verify.mjs');
  writeFileSync(file, `${sample}\nexport { verify };\n`);
  return (await import(pathToFileURL(file).href)).verify as Verify;
}

const eventOf = (request: ReceivedRequest) => JSON.parse(request.body) as HeraldEvent<{ n: number }>;

describe('webhook subscriptions over REST', () => {
  it('returns a generated secret once and never shows it again', async () => {
    const server = await app();
    const { id, secret, key } = await subscribeWebhook(server, { url: 'http://127.0.0.1:9/hook', headers: { 'x-tenant': 'acme' } });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    const read = await server.api('GET', `/v1/subscriptions/${id}`, undefined, key);
    expect(read.body.config).toEqual({ url: 'http://127.0.0.1:9/hook', headers: { 'x-tenant': 'acme' } });
    const listed = await server.api('GET', '/v1/subscriptions', undefined, key);
    expect(JSON.stringify(listed.body)).not.toContain(secret.slice(6));
    const patched = await server.api('PATCH', `/v1/subscriptions/${id}`, { config: { rateLimit: 5 } }, key);
    expect(patched.status).toBe(200);
    expect(patched.body.config).toEqual({ url: 'http://127.0.0.1:9/hook', headers: { 'x-tenant': 'acme' }, rateLimit: 5 });

    const given = await subscribeWebhook(server, { url: 'http://127.0.0.1:9/other', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
    expect(given.secret).toBeUndefined();
  });

  it('refuses extra headers Herald sets itself or that are no header names, saying which and why', async () => {
    const server = await app();
    const key = await server.consumerKey('acme');
    const headers = { 'Webhook-Id': 'mine', 'content-type': 'text/plain', 'bad name': 'x', 'x-tenant': 'acme' };
    const { status, body } = await server.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config: { url: 'http://127.0.0.1:9/hook', headers } }, key);
    expect(status).toBe(422);
    expect(body.errors).toEqual([
      { path: ['config', 'headers', 'Webhook-Id'], message: 'is set by Herald', code: 'invalid_key' },
      { path: ['config', 'headers', 'content-type'], message: 'is set by Herald', code: 'invalid_key' },
      { path: ['config', 'headers', 'bad name'], message: 'must be an HTTP header name', code: 'invalid_key' },
    ]);
    expect((await server.api('GET', '/v1/subscriptions', undefined, key)).body.data).toEqual([]);
  });

  it('refuses private targets and plain http with a 422 unless they are allowed', async () => {
    const strict = await app({}, {});
    const key = await strict.consumerKey('acme');
    for (const url of [
      'https://127.0.0.1/hook',
      'https://[::1]/hook',
      'https://10.0.0.8/hook',
      'https://172.20.1.1/hook',
      'https://192.168.0.10/hook',
      'https://169.254.169.254/latest/meta-data',
      'https://100.64.1.1/hook',
      'https://[fd00::1]/hook',
      'https://[fe80::1]/hook',
      'https://[::ffff:127.0.0.1]/hook',
      'https://0.0.0.0/hook',
      'https://localhost/hook',
      'http://hooks.example.com/in',
    ]) {
      const { status, body } = await strict.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config: { url } }, key);
      expect(status, url).toBe(422);
      expect(body.errors[0].path, url).toEqual(['config', 'url']);
    }
    // A public name passes the create-time check (nothing is published, so nothing is sent).
    expect((await strict.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config: { url: 'https://hooks.example.com/in' } }, key)).status).toBe(201);
    for (const config of [
      { url: 'https://hooks.example.com/in', secret: 'whsec_short' },
      { url: 'https://hooks.example.com/in', headers: { 'webhook-signature': 'v1,forged' } },
      { url: 'https://hooks.example.com/in', headers: { 'x-ok': 'line\r\nbreak' } },
      { url: 'https://user:pass@hooks.example.com/in' },
      { url: 'ftp://hooks.example.com/in' },
      { url: 'https://hooks.example.com/in', rateLimit: 0 },
      { url: 'https://hooks.example.com/in', surprise: true },
      {},
    ]) {
      const { status } = await strict.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config }, key);
      expect(status, JSON.stringify(config)).toBe(422);
    }
    // HERALD_ALLOW_PRIVATE, its alias HERALD_WEBHOOK_ALLOW_PRIVATE, and the option each allow them; `0` does not.
    for (const [options, env] of [
      [{}, { HERALD_ALLOW_PRIVATE: '1' }],
      [{}, { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' }],
      [{ allowPrivate: true }, {}],
    ] as const) {
      const open = await app(options, env);
      await subscribeWebhook(open, { url: 'http://127.0.0.1:9/hook' });
    }
    for (const [options, env] of [
      [{}, { HERALD_ALLOW_PRIVATE: '0' }],
      [{ allowPrivate: false }, { HERALD_ALLOW_PRIVATE: '1' }],
    ] as const) {
      const logger = recordingLogger();
      const closed = await app(options, env, logger);
      const denied = await closed.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config: { url: 'https://127.0.0.1/hook' } }, await closed.consumerKey('acme'));
      expect(denied.status, JSON.stringify(env)).toBe(422);
      // What the consumer reads says what the address is, not how the provider allows it: that is in the provider's log.
      expect(denied.body.errors[0].message).toBe('127.0.0.1 is a loopback address; push transports may not reach it');
      expect(JSON.stringify(denied.body)).not.toContain('HERALD_ALLOW_PRIVATE');
      expect(logger.entries).toContainEqual({
        level: 'info',
        fields: expect.objectContaining({ transport: 'webhook', refused: denied.body.errors[0].message, hint: 'HERALD_ALLOW_PRIVATE=1 allows it for development' }),
        message: "refused a subscription's destination",
      });
      // So with a plain http URL: the consumer reads what the scheme must be, the provider's log how to allow it.
      const plain = await closed.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config: { url: 'http://hooks.example.com/in' } }, await closed.consumerKey('acme'));
      expect(plain.status, JSON.stringify(env)).toBe(422);
      expect(plain.body.errors).toEqual([{ path: ['config', 'url'], message: 'must be https' }]);
      expect(JSON.stringify(plain.body)).not.toContain('HERALD_ALLOW_PRIVATE');
      expect(logger.entries).toContainEqual({
        level: 'info',
        fields: expect.objectContaining({ transport: 'webhook', refused: 'must be https', hint: 'HERALD_ALLOW_PRIVATE=1 allows http for development' }),
        message: "refused a subscription's destination",
      });
    }
  });

  it('refuses at connect time a public-looking name that resolves to 127.0.0.1 (DNS rebinding)', async () => {
    let lookups = 0;
    const rebinding: LookupFunction = (_hostname, options, callback) => {
      lookups += 1;
      return options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
    };
    const server = await app({ lookup: rebinding, retrySchedule: [0, 60] }, {});
    const { id } = await subscribeWebhook(server, { url: 'https://hooks.rebind.example/in' });
    await publish(server, 1);
    await waitFor(async () => (await deliveries(server, id))[0]?.attempts.length === 1, 'the first attempt');
    const [delivery] = await deliveries(server, id);
    expect(lookups).toBeGreaterThan(0);
    expect(delivery).toMatchObject({ status: 'pending', attemptCount: 1 });
    expect(delivery.attempts[0]).toMatchObject({ status: 'failed', responseStatus: null });
    expect(delivery.attempts[0].error).toMatch(/hooks\.rebind\.example resolves to a loopback address/);
    expect(Date.parse(delivery.nextAttemptAt)).toBeGreaterThan(Date.now() + 30_000);
  });
});

describe('delivery', () => {
  it('sends the envelope with Standard Webhooks headers that standardwebhooks verifies, and the extra headers', async () => {
    const server = await app();
    const inbox = await startReceiver();
    const { secret } = await subscribeWebhook(server, { url: inbox.url, headers: { 'x-tenant': 'acme' } });
    const event = await publish(server, 7);
    await waitFor(() => inbox.requests.length === 1, 'the delivery');
    const [request] = inbox.requests as [ReceivedRequest];
    expect(verifiedEvent(secret, request)).toEqual(event);
    expect(request.headers['webhook-id']).toBe(event.id);
    expect(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['x-tenant']).toBe('acme');
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(request.body, request.headers as Record<string, string>)).toThrow();
  });

  it('gets every event through 500s, timeouts, dropped connections and 429/503 with Retry-After, and the attempts API shows each try', async () => {
    const server = await app({ retrySchedule: [0, 0.1, 0.1, 0.1, 0.1, 0.1], timeout: 400, jitter: 0 });
    const tries = new Map<string, number>();
    /** What the receiver answers to the k-th try of the event with data.n. */
    const plans: Record<number, ReturnType<ReplyFn>[]> = {
      0: [{ status: 500, body: 'boom' }, { status: 502 }],
      1: [{ hang: true }],
      2: [{ status: 429, headers: { 'retry-after': '1' } }],
      3: [{ status: 503, headers: { 'retry-after': '1' } }],
      4: [{ destroy: true }],
      5: [{ status: 301, headers: { location: '/elsewhere' } }],
    };
    const inbox = await startReceiver((request) => {
      const id = String(request.headers['webhook-id']);
      const k = tries.get(id) ?? 0;
      tries.set(id, k + 1);
      return plans[eventOf(request).data.n]?.[k] ?? { status: 200, body: 'thanks' };
    });
    const { id, secret } = await subscribeWebhook(server, { url: inbox.url });
    const published: HeraldEvent[] = [];
    for (let n = 0; n < 10; n++) published.push(await publish(server, n));

    await waitFor(async () => (await deliveries(server, id)).filter((d) => d.status === 'delivered').length === 10, 'every delivery', 20_000);
    expect(inbox.ids()).toEqual(new Set(published.map((e) => e.id)));
    for (const request of inbox.requests) expect(published).toContainEqual(verifiedEvent(secret, request));

    const byEvent = new Map((await deliveries(server, id)).map((d) => [d.eventId, d]));
    const triesOf = (n: number) => byEvent.get((published[n] as HeraldEvent).id).attempts;
    expect(triesOf(0).map((a: any) => [a.status, a.responseStatus])).toEqual([
      ['failed', 500],
      ['failed', 502],
      ['succeeded', 200],
    ]);
    expect(triesOf(0)[0]).toMatchObject({ attempt: 1, responseBody: 'boom', error: 'the endpoint answered 500' });
    expect(Date.parse(triesOf(0)[0].nextAttemptAt)).toBeGreaterThan(Date.parse(triesOf(0)[0].startedAt));
    expect(triesOf(0)[2]).toMatchObject({ attempt: 3, responseBody: 'thanks', error: null, nextAttemptAt: null });
    expect(triesOf(1)[0]).toMatchObject({ status: 'failed', responseStatus: null, error: 'timed out after 400 ms' });
    expect(triesOf(1)[0].durationMs).toBeGreaterThanOrEqual(350);
    for (const n of [2, 3]) {
      const [first, second] = triesOf(n);
      expect(first.responseStatus).toBe(n === 2 ? 429 : 503);
      // Retry-After: 1 beats the 0.1 s of the schedule.
      expect(Date.parse(second.startedAt) - Date.parse(first.startedAt)).toBeGreaterThanOrEqual(900);
    }
    expect(triesOf(4)[0].error).toMatch(/connection closed|socket|ECONNRESET/i);
    expect(triesOf(5)[0]).toMatchObject({ responseStatus: 301, error: 'the endpoint answered 301 (redirects are not followed)' });
    for (let n = 6; n < 10; n++) expect(triesOf(n)).toHaveLength(1);
    // Every try reached the receiver, and the attempts API has one entry per try.
    const attemptsTotal = [...byEvent.values()].reduce((sum, d) => sum + d.attempts.length, 0);
    expect(attemptsTotal).toBe(inbox.requests.length);
  });

  it('delivers to an endpoint that refused connections once it comes up', async () => {
    const server = await app({ retrySchedule: [0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], jitter: 0 });
    const probe = await startReceiver();
    const { port } = probe;
    await probe.close();
    const { id } = await subscribeWebhook(server, { url: `http://127.0.0.1:${port}/hook` });
    const event = await publish(server, 1);
    await waitFor(async () => ((await deliveries(server, id))[0]?.attempts.length ?? 0) >= 2, 'two refused attempts');
    const inbox = await startReceiver(undefined, port);
    await waitFor(() => inbox.ids().has(event.id), 'the delivery once the endpoint is up');
    const [delivery] = await deliveries(server, id);
    await waitFor(async () => (await deliveries(server, id))[0].status === 'delivered', 'the delivery to be recorded as delivered');
    expect(delivery.attempts[0].error).toBe('connection refused (ECONNREFUSED)');
  });

  it('disables the subscription when the endpoint answers 410, and stops sending', async () => {
    const server = await app();
    const inbox = await startReceiver(() => ({ status: 410 }));
    const { id } = await subscribeWebhook(server, { url: inbox.url });
    await publish(server, 1);
    await waitFor(async () => (await server.api('GET', `/v1/subscriptions/${id}`)).body.status === 'disabled', 'the subscription to be disabled');
    const { body } = await server.api('GET', `/v1/subscriptions/${id}`);
    expect(body.disabledReason).toMatch(/410/);
    await waitFor(async () => (await deliveries(server, id))[0]?.status === 'failed', 'the delivery to fail');
    await publish(server, 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(inbox.requests).toHaveLength(1);
  });

  it('disables a subscription whose every attempt failed for the window', async () => {
    const server = await app({ disableAfter: 800, retrySchedule: Array(50).fill(0.1), jitter: 0 });
    const inbox = await startReceiver(() => ({ status: 500 }));
    const { id } = await subscribeWebhook(server, { url: inbox.url });
    await publish(server, 1);
    await waitFor(async () => (await server.api('GET', `/v1/subscriptions/${id}`)).body.status === 'disabled', 'the subscription to be disabled');
    const { body } = await server.api('GET', `/v1/subscriptions/${id}`);
    expect(body.disabledReason).toMatch(/every attempt failed/);
    expect(inbox.requests.length).toBeGreaterThanOrEqual(3);
    const [first, last] = [inbox.requests[0], inbox.requests.at(-1)] as [ReceivedRequest, ReceivedRequest];
    expect(last.at - first.at).toBeGreaterThanOrEqual(700);
  });

  it('retries one delivery by hand and replays the events after a seq', async () => {
    const server = await app();
    const inbox = await startReceiver();
    const early = await publish(server, 0);
    const { id, key } = await subscribeWebhook(server, { url: inbox.url }, { types: ['order.*'] });
    const events = [await publish(server, 1), await publish(server, 2, 'invoice.paid'), await publish(server, 3)];
    await waitFor(() => inbox.requests.length === 2, 'the two order events');
    // A delivery sent straight from the fan-out is listed once its first attempt is recorded.
    await waitFor(async () => (await deliveries(server, id, key)).filter((d) => d.status === 'delivered').length === 2, 'them to be recorded as delivered');
    const first = (await deliveries(server, id, key)).find((d) => d.eventId === events[0]?.id);

    const retried = await server.api('POST', `/v1/deliveries/${first.id}/retry`, undefined, key);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ id: first.id, status: 'pending' });
    await waitFor(() => inbox.requests.length === 3, 'the retried delivery');
    expect(eventOf(inbox.requests[2] as ReceivedRequest).id).toBe(events[0]?.id);
    await waitFor(async () => (await server.api('GET', `/v1/deliveries/${first.id}`, undefined, key)).body.attempts.length === 2, 'its second attempt');

    const replay = await server.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key);
    expect(replay).toMatchObject({ status: 202, body: { status: 'running', after: 0 } });
    await waitFor(() => inbox.requests.length === 6, 'the replayed events');
    await waitFor(async () => (await server.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body.status === 'completed', 'the replay to complete');
    expect((await server.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body).toMatchObject({ replayed: 3, position: events[2]?.seq });
    expect(
      inbox.requests
        .slice(3)
        .map((request) => eventOf(request).id)
        .sort(),
    ).toEqual([early.id, events[0]?.id, events[2]?.id].sort());
    expect((await server.api('POST', `/v1/subscriptions/${id}/replay`, { after: -1 }, key)).status).toBe(422);
    expect((await server.api('POST', `/v1/subscriptions/${id}/replay`, {}, key)).status).toBe(422);
  });

  it('shows deliveries, retries and replays only to the subscription owner (and admins)', async () => {
    const server = await app();
    const inbox = await startReceiver();
    const { id } = await subscribeWebhook(server, { url: inbox.url });
    await publish(server, 1);
    await waitFor(async () => (await deliveries(server, id)).length === 1, 'the delivery');
    const [delivery] = await deliveries(server, id);
    const stranger = await server.consumerKey('globex');
    for (const [method, path, body] of [
      ['GET', `/v1/subscriptions/${id}/deliveries`],
      ['GET', `/v1/deliveries/${delivery.id}`],
      ['POST', `/v1/deliveries/${delivery.id}/retry`],
      ['POST', `/v1/subscriptions/${id}/replay`, { after: 0 }],
      ['GET', `/v1/subscriptions/${id}/replay`],
      ['DELETE', `/v1/subscriptions/${id}/replay`],
      ['POST', `/v1/subscriptions/${id}/secret/rotate`],
    ] as const) {
      const answer = await server.api(method, path, body, stranger);
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(answer.body.type).toBe('urn:herald:problem:not-found');
    }
    expect((await server.api('GET', `/v1/deliveries/${delivery.id}`)).status).toBe(200);
    expect((await server.api('GET', '/v1/deliveries/dlv_nope')).status).toBe(404);
    expect((await server.api('GET', `/v1/subscriptions/${id}/deliveries?limit=0`)).status).toBe(422);
  });

  it('signs with both secrets during the grace period of a rotation; a later shorter grace, or none, cuts the earlier secrets\' too', async () => {
    const server = await app();
    const inbox = await startReceiver();
    const { id, secret: original, key } = await subscribeWebhook(server, { url: inbox.url });
    const rotated = await server.api('POST', `/v1/subscriptions/${id}/secret/rotate`, undefined, key);
    expect(rotated.status).toBe(200);
    const { secret: next, previousSecretExpiresAt } = rotated.body;
    expect(next).toMatch(/^whsec_/);
    expect(next).not.toBe(original);
    expect(Math.abs(Date.parse(previousSecretExpiresAt) - (Date.now() + 86_400_000))).toBeLessThan(60_000);
    expect((await server.api('GET', `/v1/subscriptions/${id}`, undefined, key)).body.config.previousSecretExpiresAt).toBe(previousSecretExpiresAt);

    await publish(server, 1);
    await waitFor(() => inbox.requests.length === 1, 'a delivery after the rotation');
    const during = inbox.requests[0] as ReceivedRequest;
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifiedEvent(original, during).data).toEqual({ n: 1 });
    expect(verifiedEvent(next, during).data).toEqual({ n: 1 });
    // The docs' own verifier takes either secret, and refuses the request sent again six minutes later, or altered.
    const verify = await docsVerifier();
    expect([verify(original, during.body, during.headers), verify(next, during.body, during.headers)]).toEqual([true, true]);
    const sentEarlier = Number(during.headers['webhook-timestamp']) - 360;
    const late = {
      ...during.headers,
      'webhook-timestamp': String(sentEarlier),
      'webhook-signature': signature(next, String(during.headers['webhook-id']), sentEarlier, during.body),
    };
    expect(verify(next, during.body, late)).toBe(false);
    expect(verify(next, during.body.replace('"n":1', '"n":2'), during.headers)).toBe(false);

    // A shorter grace cuts the earlier secrets' grace too: the first one's day ends in a minute, with the second's.
    const short = await server.api('POST', `/v1/subscriptions/${id}/secret/rotate`, { gracePeriod: 60 }, key);
    expect(Math.abs(Date.parse(short.body.previousSecretExpiresAt) - (Date.now() + 60_000))).toBeLessThan(10_000);

    const immediate = await server.api('POST', `/v1/subscriptions/${id}/secret/rotate`, { gracePeriod: 0 }, key);
    const latest = immediate.body.secret as string;
    await publish(server, 2);
    await waitFor(() => inbox.requests.length === 2, 'a delivery after the second rotation');
    const after = inbox.requests[1] as ReceivedRequest;
    // No grace: the new secret alone signs, the first one too stops though its grace period had not ended (a leak).
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verifiedEvent(latest, after).data).toEqual({ n: 2 });
    expect(() => verifiedEvent(original, after)).toThrow();
    expect(() => verifiedEvent(next, after)).toThrow();
    expect(() => verifiedEvent(short.body.secret, after)).toThrow();
    expect(immediate.body.previousSecretExpiresAt).toBeNull();
    expect((await server.api('GET', `/v1/subscriptions/${id}`, undefined, key)).body.config.previousSecretExpiresAt).toBeUndefined();
    expect((await server.api('POST', `/v1/subscriptions/${id}/secret/rotate`, { secret: 'whsec_nope' }, key)).status).toBe(422);
  });
});

describe('an answer with NUL bytes, which PostgreSQL cannot keep as text', () => {
  it.each(['sqlite', 'postgres'] as const)("is kept with U+FFFD in their place, and no endpoint's deliveries stall (%s)", async (kind) => {
    const database = kind === 'postgres' ? await freshDatabase() : undefined;
    if (database) onTestFinished(() => database.drop());
    const server = await startTestApp([createWebhook({ pollInterval: 50, retrySchedule: [0, 0.1], jitter: 0 })], {
      env: allowPrivate,
      ...(database ? { database: database.url } : {}),
    });
    onTestFinished(() => server.close());
    // A binary answer (a zip's first bytes), and a 2xx whose text ends in a NUL.
    const tried = new Set<string>();
    const binary = await startReceiver((request) => {
      const first = !tried.has(eventOf(request).id);
      tried.add(eventOf(request).id);
      return eventOf(request).data.n === 0 && first ? { status: 500, body: 'PK\0\u0001\0' } : { status: 200, body: 'ok\0' };
    });
    const plain = await startReceiver();
    const nul = await subscribeWebhook(server, { url: binary.url });
    const other = await subscribeWebhook(server, { url: plain.url });
    const published: HeraldEvent[] = [];
    for (let n = 0; n < 5; n++) published.push(await publish(server, n));

    const delivered = async (id: string) => (await deliveries(server, id)).filter((d) => d.status === 'delivered').length;
    await waitFor(async () => (await delivered(nul.id)) === 5 && (await delivered(other.id)) === 5, 'every delivery to both endpoints, recorded');
    const first = (await deliveries(server, nul.id)).find((d) => d.eventId === published[0]?.id);
    expect(first.attempts.map((a: any) => [a.responseStatus, a.responseBody])).toEqual([
      [500, 'PK\uFFFD\u0001\uFFFD'],
      [200, 'ok\uFFFD'],
    ]);
    expect(plain.ids()).toEqual(new Set(published.map((event) => event.id)));
  });
});

describe('stopping', () => {
  it('lets attempts in flight finish, records them, and gives back the claims not started', async () => {
    const database = tempDatabase();
    const server = await startTestApp([createWebhook({ concurrency: 2, pollInterval: 50 })], { env: allowPrivate, database });
    const inbox = await startReceiver(() => ({ status: 200, delay: 400 }));
    const { id } = await subscribeWebhook(server, { url: inbox.url });
    await Promise.all(Array.from({ length: 10 }, (_, n) => publish(server, n)));
    await waitFor(() => inbox.requests.length === 2, 'two requests in flight');
    await server.close();
    // The two in flight were answered and recorded before close() resolved; nothing else was sent.
    expect(inbox.requests).toHaveLength(2);

    const outbox = await sqlOutbox(await openStore(database));
    const rows = await outbox.list(id, { limit: 100 });
    expect(rows).toHaveLength(10);
    const delivered = rows.filter((row) => row.status === 'delivered');
    expect(delivered.map((row) => row.eventId).sort()).toEqual([...inbox.ids()].sort());
    expect(rows.filter((row) => row.status === 'pending')).toHaveLength(8);
    // No lease is left behind: another worker may claim them at once.
    expect(rows.every((row) => row.lockedBy === null && row.lockedUntil === null)).toBe(true);
    expect(rows.filter((row) => row.status === 'pending').every((row) => row.attempts === 0)).toBe(true);
    expect(await outbox.attempts(delivered.map((row) => row.id))).toHaveLength(2);
  });
});

describe('several nodes on one database', () => {
  it('delivers to a subscription that another node created, without waiting for its ring', async () => {
    const database = tempDatabase();
    const server = await startTestApp([createWebhook({ pollInterval: 50 })], { env: allowPrivate, database });
    onTestFinished(() => server.close());
    const inbox = await startReceiver();
    // Once this node's own subscription has the first event, its fan-out has passed it.
    const witness = await startReceiver();
    await subscribeWebhook(server, { url: witness.url });
    await publish(server, 0);
    await waitFor(() => witness.requests.length === 1, 'the first event');
    // The other node: its rings never reach this one (each node here has its own in-memory broker).
    const other = await openStore(database);
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const config = { url: inbox.url, secret };
    await other.subscriptions.create({ id: 'sub_other_node', consumer: 'acme', transport: 'webhook', types: ['order.*'], status: 'active', config, cursor: 0 });

    const event = await publish(server, 1);
    await waitFor(() => inbox.requests.length > 0 && witness.requests.length === 2, "the delivery to the other node's subscription");
    expect(inbox.requests.map((request) => verifiedEvent(secret, request).id)).toEqual([event.id]);
  });
});

describe('several nodes on one database, while every endpoint this node knows is busy', () => {
  it("delivers to another node's new subscription within a second", async () => {
    const database = tempDatabase();
    const server = await startTestApp([createWebhook({ concurrency: 2, timeout: 20_000, pollInterval: 50 })], { env: allowPrivate, database });
    onTestFinished(() => server.close());
    const stuck = await startReceiver(() => ({ hang: true }));
    await subscribeWebhook(server, { url: stuck.url }, { types: ['order.created'] });
    for (let n = 0; n < 10; n++) await publish(server, n);
    await waitFor(() => stuck.requests.length === 2, 'the stuck endpoint to hold its slots');
    // Made on the other node: no ring reaches this one, so only its fan-out's version check finds it.
    const other = await openStore(database);
    const inbox = await startReceiver();
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    await other.subscriptions.create({ id: 'sub_other_busy', consumer: 'acme', transport: 'webhook', types: ['invoice.paid'], status: 'active', config: { url: inbox.url, secret }, cursor: 0 });
    const started = Date.now();
    const event = await publish(server, 0, 'invoice.paid');
    await waitFor(() => inbox.requests.length === 1, "the other node's subscription's delivery");
    expect(verifiedEvent(secret, inbox.requests[0] as ReceivedRequest).id).toBe(event.id);
    // New events wait in the log while the stuck endpoint has all it can take, a second at most.
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('per endpoint', () => {
  it('a hanging endpoint does not delay another one', async () => {
    const server = await app({ concurrency: 2, timeout: 20_000 });
    const stuck = await startReceiver(() => ({ hang: true }));
    const fast = await startReceiver();
    await subscribeWebhook(server, { url: stuck.url });
    await subscribeWebhook(server, { url: fast.url });
    const started = Date.now();
    for (let n = 0; n < 30; n++) await publish(server, n);
    await waitFor(() => fast.requests.length === 30, 'the fast endpoint to get everything');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(stuck.requests).toHaveLength(2);
  });

  it('fans out for a new subscription while every endpoint it knows is busy', async () => {
    const server = await app({ concurrency: 2, timeout: 20_000 });
    const stuck = await startReceiver(() => ({ hang: true }));
    await subscribeWebhook(server, { url: stuck.url }, { types: ['order.created'] });
    for (let n = 0; n < 10; n++) await publish(server, n);
    await waitFor(() => stuck.requests.length === 2, 'the stuck endpoint to hold its slots');
    const late = await startReceiver();
    await subscribeWebhook(server, { url: late.url }, { types: ['invoice.paid'] });
    const started = Date.now();
    await publish(server, 0, 'invoice.paid');
    await waitFor(() => late.requests.length === 1, "the new endpoint's delivery");
    // The new subscription has room, so the fan-out does not wait for the stuck endpoint.
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('keeps to the concurrency limit, to one at a time in seq order when ordered, and to the rate limit', async () => {
    const server = await app({ concurrency: 3 });
    const open = new Map<string, number>();
    const peaks = new Map<string, number>();
    /** Answers after 40 ms, counting the requests it holds at once. */
    const slow = (name: string): ReplyFn => () => {
      open.set(name, (open.get(name) ?? 0) + 1);
      peaks.set(name, Math.max(peaks.get(name) ?? 0, open.get(name) as number));
      setTimeout(() => open.set(name, (open.get(name) as number) - 1), 40);
      return { status: 200, delay: 40 };
    };
    const parallel = await startReceiver(slow('parallel'));
    await subscribeWebhook(server, { url: parallel.url }, { types: ['order.created'] });
    await Promise.all(Array.from({ length: 15 }, (_, n) => publish(server, n)));
    await waitFor(() => parallel.requests.length === 15, 'the unordered deliveries');
    expect(peaks.get('parallel')).toBe(3);

    const ordered = await startReceiver(slow('ordered'));
    await subscribeWebhook(server, { url: ordered.url, ordered: true }, { types: ['invoice.paid'] });
    const sent: HeraldEvent[] = [];
    sent.push(...(await Promise.all(Array.from({ length: 10 }, (_, n) => publish(server, n, 'invoice.paid')))));
    sent.sort((a, b) => a.seq - b.seq);
    await waitFor(() => ordered.requests.length === 10, 'the ordered deliveries');
    expect(peaks.get('ordered')).toBe(1);
    expect(ordered.requests.map((request) => eventOf(request).seq)).toEqual(sent.map((event) => event.seq));

    const limited = await startReceiver();
    await subscribeWebhook(server, { url: limited.url, rateLimit: 10 }, { consumer: 'globex', types: ['order.created'] });
    await Promise.all(Array.from({ length: 20 }, (_, n) => publish(server, n)));
    await waitFor(() => limited.requests.length === 20, 'the rate-limited deliveries');
    // A token bucket of 10 at 10 per second: 20 requests take at least a second from the first to the last.
    const times = limited.requests.map((request) => request.at);
    expect((times.at(-1) as number) - (times[0] as number)).toBeGreaterThanOrEqual(900);
  });
});

describe('the backlog metric', () => {
  const series = (target: TestApp, scope: 'node' | 'shared') => metricValue(target, `herald_transport_backlog{transport="webhook",scope="${scope}"}`);
  /** What the node shows: the outbox's pending rows and what it holds itself. */
  const backlog = async (target: TestApp) => ((await series(target, 'shared')) ?? Number.NaN) + ((await series(target, 'node')) ?? Number.NaN);

  it('counts every delivery not yet made: stored pending, held by a fan-out, handed over by a replay', async () => {
    // The first four requests of each round answer after 4 s: until then the engine holds them in flight, and the rest wait.
    let slowFrom = 1;
    const slow = await startReceiver((request) => (request.n >= slowFrom && request.n < slowFrom + 4 ? { status: 204, delay: 4_000 } : { status: 204 }));
    const server = await app({ concurrency: 4 });
    const { id } = await subscribeWebhook(server, { url: slow.url });
    for (let n = 0; n < 30; n++) await publish(server, n);
    await waitFor(() => slow.requests.length === 4, 'four attempts in flight');
    await waitFor(async () => (await backlog(server)) === 30, 'a backlog of the 30 deliveries', 3_000);
    expect(slow.requests).toHaveLength(4);
    await waitFor(async () => (await backlog(server)) === 0, 'no backlog once every delivery is made');
    expect(slow.ids().size).toBe(30);

    slowFrom = 31;
    expect((await server.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 })).status).toBe(202);
    await waitFor(() => slow.requests.length === 34, 'four replayed attempts in flight');
    await waitFor(async () => (await backlog(server)) === 30, 'a backlog of the 30 replayed deliveries', 3_000);
    expect(slow.requests).toHaveLength(34);
    await waitFor(async () => (await backlog(server)) === 0, 'no backlog once the replay is sent');
    expect(slow.requests).toHaveLength(60);
  });

  it('shows the stored rows as one shared backlog on every node sharing the database, and apart what each node holds', async () => {
    const down = await startReceiver(() => ({ status: 503 }));
    const database = tempDatabase();
    const options = { pollInterval: 50, retrySchedule: [0, 3_600] };
    const a = await startTestApp([createWebhook(options)], { env: allowPrivate, database });
    const b = await startTestApp([createWebhook(options)], { env: allowPrivate, database });
    onTestFinished(() => a.close());
    onTestFinished(() => b.close());
    // Through B, whose admin key is the one stored last.
    await subscribeWebhook(b, { url: down.url });
    for (let n = 0; n < 10; n++) await publish(a, n);
    // Each delivery failed once and waits an hour for its retry, pending in the outbox, held by no node.
    await waitFor(() => down.requests.length === 10, 'the first attempts');
    await waitFor(async () => (await series(a, 'shared')) === 10 && (await series(a, 'node')) === 0, 'the ten rows pending on A');
    expect(await series(b, 'shared')).toBe(10);
    expect(await series(b, 'node')).toBe(0);

    // Five more events, also to a second endpoint that answers after 5 s: those deliveries are held in memory by
    // whichever node fanned them out, with no row yet; the first endpoint's fail and wait as before.
    const slow = await startReceiver(() => ({ status: 204, delay: 5_000 }));
    await subscribeWebhook(b, { url: slow.url });
    for (let n = 10; n < 15; n++) await publish(a, n);
    await waitFor(() => slow.requests.length === 5, 'five attempts in flight');
    await waitFor(async () => (await series(a, 'shared')) === 15, 'fifteen rows pending');
    const held = async () => ((await series(a, 'node')) ?? Number.NaN) + ((await series(b, 'node')) ?? Number.NaN);
    expect(await held()).toBe(5);
    expect(await series(b, 'shared')).toBe(15);
    await waitFor(async () => (await held()) === 0, 'the five answered');
  });
});
