import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type VerifiedWebhookRequest, webhookMiddleware } from '@herald/client';
import { linger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import express from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type ReceivedRequest, type ReplyFn, startReceiver, verifiedEvent } from './test-receiver.test-support.js';
import type { StoredWebhookConfig } from './webhook-config.js';
import { webhook } from './webhook-transport.js';

async function verifyingApp(): Promise<TestApp> {
  const app = await startTestApp([webhook({ verifyEndpoints: true, pollInterval: 50 })], { env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' } });
  onTestFinished(() => app.close());
  return app;
}

const status = async (app: TestApp, id: string) => (await app.api('GET', `/v1/subscriptions/${id}`)).body;

const isChallenge = (request: ReceivedRequest) => JSON.parse(request.body).type === 'herald.endpoint.verification';

/** Answers challenges with the challenge while `echo()` says so (else with a bare 200), and events with 204. */
function challengeReply(echo: () => boolean): ReplyFn {
  return (request) => {
    const body = JSON.parse(request.body);
    if (!isChallenge(request)) return { status: 204 };
    return echo() ? { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ challenge: body.data.challenge }) } : { status: 200, body: 'ok' };
  };
}

describe('endpoint verification', () => {
  it('keeps a new subscription pending until its endpoint echoes the signed challenge', async () => {
    const app = await verifyingApp();
    let echo = false;
    const inbox = await startReceiver(challengeReply(() => echo));
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config: { url: inbox.url } }, key);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'pending', config: { verification: 'pending' } });
    const { id } = created.body;
    const secret = created.body.config.secret as string;

    // The endpoint answers without the challenge: still pending, and it gets no events.
    await waitFor(() => inbox.requests.length >= 1, 'the first challenge');
    const challenge = inbox.requests[0] as ReceivedRequest;
    expect(verifiedEvent(secret, challenge)).toMatchObject({ type: 'herald.endpoint.verification', data: { subscriptionId: id } });
    await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    const retried = await app.api('POST', `/v1/subscriptions/${id}/verify`, undefined, key);
    expect(retried.body).toMatchObject({ verified: false, status: 'pending', error: 'the endpoint answered without echoing the challenge' });
    // Switching itself to active does not skip verification.
    expect((await app.api('PATCH', `/v1/subscriptions/${id}`, { status: 'active' }, key)).status).toBe(409);
    await app.herald.publish({ type: 'order.created', data: { n: 2 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(inbox.requests.every((request) => JSON.parse(request.body).type === 'herald.endpoint.verification')).toBe(true);

    echo = true;
    const verified = await app.api('POST', `/v1/subscriptions/${id}/verify`, undefined, key);
    expect(verified.body).toMatchObject({ verified: true, status: 'active' });
    expect((await status(app, id)).config).toMatchObject({ verifiedAt: expect.any(String) });
    expect((await status(app, id)).config).not.toHaveProperty('verification');
    const event = (await app.herald.publish({ type: 'order.created', data: { n: 3 } })).event;
    await waitFor(() => inbox.ids().has(event.id), 'the first event after verification');

    // A new URL must be verified again.
    const moved = await app.api('PATCH', `/v1/subscriptions/${id}`, { config: { url: `${inbox.url}?v=2` } }, key);
    expect(moved.body).toMatchObject({ status: 'pending', config: { verification: 'pending' } });
    await waitFor(async () => (await status(app, id)).status === 'active', 'the new URL to be verified');
  });

  it('activates an express receiver built with @herald/client without any code for it', async () => {
    const app = await verifyingApp();
    const received: unknown[] = [];
    let secret = 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const receiver = express();
    receiver.post('/hook', (req, res, next) => webhookMiddleware({ secret })(req, res, next), (req, res) => {
      received.push((req as unknown as VerifiedWebhookRequest).body);
      res.status(204).end();
    });
    receiver.use(express.json());
    const server: Server = createServer(receiver);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

    const key = await app.consumerKey('acme');
    // The receiver knows its secret before the subscription exists: it gives it.
    secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], config: { url, secret } }, key);
    expect(created.body.status).toBe('pending');
    await waitFor(async () => (await status(app, created.body.id)).status === 'active', 'the endpoint to be verified');
    const { event } = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => received.length === 1, 'the event');
    expect(received[0]).toEqual(event);
  });

  it('never sends to an endpoint that has not passed verification, whatever its status says (issue 13)', async () => {
    const app = await verifyingApp();
    const verified = await startReceiver(challengeReply(() => true));
    let echo = false;
    const unverified = await startReceiver(challengeReply(() => echo));
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], config: { url: verified.url } }, key);
    const { id } = created.body;
    await waitFor(async () => (await status(app, id)).status === 'active', 'the first endpoint to be verified');
    const first = (await app.herald.publish({ type: 'order.created', data: { n: 1 } })).event;
    await waitFor(() => verified.ids().has(first.id), 'the first event at the verified endpoint');
    await waitFor(async () => (await app.api('GET', `/v1/subscriptions/${id}/deliveries`, undefined, key)).body.data.length === 1, 'its delivery to be recorded');
    const [delivery] = (await app.api('GET', `/v1/subscriptions/${id}/deliveries`, undefined, key)).body.data;

    // Moved to an endpoint that does not answer the challenge: pending again.
    const moved = await app.api('PATCH', `/v1/subscriptions/${id}`, { config: { url: unverified.url } }, key);
    expect(moved.body).toMatchObject({ status: 'pending', config: { verification: 'pending' } });
    // The bypass, simulated through the store: the subscription says it is active and no longer says it waits for verification.
    const stored = (await app.herald.subscriptions.get(id))?.config as StoredWebhookConfig;
    const { unverified: _flag, ...unflagged } = stored;
    await app.herald.subscriptions.update(id, { status: 'active', config: unflagged });
    // What the API shows says what holds: the endpoint still waits for verification.
    expect(await status(app, id)).toMatchObject({ status: 'active', config: { verification: 'pending' } });

    expect((await app.api('POST', `/v1/deliveries/${delivery.id}/retry`, undefined, key)).status).toBe(202);
    expect((await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key)).status).toBe(202);
    const second = (await app.herald.publish({ type: 'order.created', data: { n: 2 } })).event;
    // A control subscription gets the live event, and the poll (every 50 ms) has had ten turns at the retry and the replay.
    const control = await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], config: { url: verified.url } }, key);
    await waitFor(async () => (await status(app, control.body.id)).status === 'active', 'the control endpoint to be verified');
    const third = (await app.herald.publish({ type: 'order.created', data: { n: 3 } })).event;
    await waitFor(() => verified.ids().has(third.id), 'the control subscription to receive');
    await linger(500);
    expect(unverified.requests.filter((request) => !isChallenge(request)).map((request) => JSON.parse(request.body).id)).toEqual([]);

    // Once the endpoint answers the challenge, the retried and replayed delivery goes out, and later events follow.
    echo = true;
    expect((await app.api('POST', `/v1/subscriptions/${id}/verify`, undefined, key)).body).toMatchObject({ verified: true, status: 'active' });
    await waitFor(() => unverified.ids().has(first.id), 'the retried and replayed event after verification');
    const fourth = (await app.herald.publish({ type: 'order.created', data: { n: 4 } })).event;
    await waitFor(() => unverified.ids().has(fourth.id), 'a live event after verification');
    // Published while the endpoint was unverified, after the replay began: never sent to it.
    expect(unverified.ids().has(second.id)).toBe(false);
  });
});
