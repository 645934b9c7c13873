import { type HeraldEvent, sqliteStore } from '@herald/core';
import { sqlOutbox } from '@herald/outbox';
import { linger, newEvent, publishNumbered, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { subscribeWebhook } from './subscribe-webhook.test-support.js';
import { openStore, startReceiver, type TestReceiver } from './test-receiver.test-support.js';
import type { WebhookOptions } from './webhook-options.js';
import { webhook } from './webhook-transport.js';

const allowPrivate = { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' };

/** A Herald whose log already holds `logged` order.created events, appended through the store in big batches. */
async function appWithLog(logged: number, options: WebhookOptions = {}): Promise<TestApp> {
  const store = sqliteStore({ path: ':memory:' });
  await store.init();
  for (let n = 0; n < logged; n += 10_000) {
    await store.append(Array.from({ length: Math.min(10_000, logged - n) }, (_, i) => newEvent('order.created', { data: { n: n + i } })));
  }
  const app = await startTestApp([webhook({ pollInterval: 50, ...options })], { store, env: allowPrivate });
  onTestFinished(() => app.close());
  return app;
}

const seqOf = (body: string) => (JSON.parse(body) as HeraldEvent).seq;

describe('replay (issue 13)', () => {
  it('answers at once on a log of 100,000 events, then sends the 20,000 asked for in order, a bounded batch at a time', async () => {
    const logged = 100_000;
    const after = 80_000;
    const asked = logged - after;
    // One request at a time: the outbox is claimed oldest event first, so arrival order is seq order.
    const app = await appWithLog(logged, { concurrency: 1 });
    const inbox = await startReceiver();
    const { id, key } = await subscribeWebhook(app, { url: inbox.url }, { types: ['order.*'] });

    const started = await app.api('POST', `/v1/subscriptions/${id}/replay`, { after }, key);
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ id: expect.stringMatching(/^rpl_/), subscriptionId: id, status: 'running', after, until: logged });
    // Nothing like the whole log has been turned into deliveries by the time it answers.
    const pendingNow = await (await sqlOutbox(app.herald.store)).list(id, { status: 'pending', limit: logged });
    expect(pendingNow.length).toBeLessThan(5_000);

    const again = await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 500 }, key);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ type: 'urn:herald:problem:replay-in-progress', status: 409, replay: { id: started.body.id, status: 'running' } });

    // While it runs, the outbox holds a bounded number of its deliveries, and its position only moves forward.
    let mostPending = 0;
    let lastPosition = 0;
    for (let status = 'running'; status === 'running'; await linger(100)) {
      const pending = await (await sqlOutbox(app.herald.store)).list(id, { status: 'pending', limit: logged });
      mostPending = Math.max(mostPending, pending.length);
      const { body } = await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key);
      expect(body.position).toBeGreaterThanOrEqual(lastPosition);
      lastPosition = body.position;
      status = body.status;
    }
    expect(mostPending).toBeLessThanOrEqual(1_000);
    await waitFor(() => inbox.requests.length >= asked, `${asked} requests`, 120_000);
    const seqs = inbox.requests.map((request) => seqOf(request.body));
    expect(seqs).toEqual(Array.from({ length: asked }, (_, i) => after + i + 1));

    const done = await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key);
    expect(done.body).toMatchObject({ id: started.body.id, status: 'completed', after, until: logged, position: logged, replayed: asked, finishedAt: expect.any(String) });
    // One finished, another may start.
    expect((await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: logged - 2 }, key)).status).toBe(202);
    await waitFor(() => inbox.requests.length === asked + 2, 'the second replay');
  }, 180_000);

  it('makes its next batch as soon as the batch it waits for is delivered, not at its next look at the outbox', async () => {
    // Batches of 500: the first two are made at once, the third (one event) once the first is delivered.
    const app = await appWithLog(1_001, { concurrency: 64 });
    // The first 32 events are answered at `release`, the rest at once: by then the replay, waiting for its first batch,
    // looks at the outbox once a second, and what is left to send after the release is those 32 answers.
    let release = 0;
    const inbox = await startReceiver((request) => ({ status: 204, delay: seqOf(request.body) <= 32 ? Math.max(0, release - Date.now()) : 0 }));
    const { id, key } = await subscribeWebhook(app, { url: inbox.url }, { types: ['order.*'] });
    release = Date.now() + 2_100;
    expect((await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key)).status).toBe(202);
    await waitFor(async () => (await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body.status === 'completed', 'the replay', 10_000);
    const { body } = await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key);
    // Its last batch was made right after the first was delivered and recorded (5 to 15 ms after the release here), not
    // at its next look at the outbox, a second apart (about 0.9 s after it).
    expect(Date.parse(body.finishedAt)).toBeGreaterThanOrEqual(release);
    expect(Date.parse(body.finishedAt) - release).toBeLessThan(750);
    await waitFor(() => inbox.ids().size === 1_001, 'every replayed event');
  });

  it('holds at two batches while the endpoint takes nothing, and can be cancelled', async () => {
    const app = await appWithLog(3_000, { retrySchedule: [0, 3600] });
    const inbox = await startReceiver(() => ({ status: 503 }));
    const { id, key } = await subscribeWebhook(app, { url: inbox.url }, { types: ['order.*'] });
    const started = await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key);
    expect(started.status).toBe(202);
    // Two batches of 500 are made and tried once; they wait for their retry, and so does the replay.
    // Failing attempts ramp up slowly (the failure policy), so on a loaded machine this takes a while.
    await waitFor(() => inbox.requests.length === 1_000, 'the first two batches to be tried', 60_000);
    await linger(500);
    expect(inbox.requests.length).toBe(1_000);
    const waiting = await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key);
    expect(waiting.body).toMatchObject({ status: 'running', position: 1_000, replayed: 1_000, finishedAt: null });

    const cancelled = await app.api('DELETE', `/v1/subscriptions/${id}/replay`, undefined, key);
    expect(cancelled).toMatchObject({ status: 200, body: { id: started.body.id, status: 'cancelled', error: 'cancelled by request', position: 1_000 } });
    expect((await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body).toMatchObject({ id: started.body.id, status: 'cancelled' });
    const nothingRunning = await app.api('DELETE', `/v1/subscriptions/${id}/replay`, undefined, key);
    expect(nothingRunning).toMatchObject({ status: 404, body: { type: 'urn:herald:problem:not-found' } });
    // The deliveries it made stay in the outbox; a new replay may start.
    expect(await (await sqlOutbox(app.herald.store)).list(id, { status: 'pending', limit: 5_000 })).toHaveLength(1_000);
    expect((await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 2_000 }, key)).body).toMatchObject({ status: 'running', after: 2_000 });
  });

  it('answers 404 before any replay and 422 to a bad body, completes at once with nothing to replay, and is in /openapi.json', async () => {
    const app = await appWithLog(0);
    const { id, key } = await subscribeWebhook(app, { url: 'http://127.0.0.1:9/hook' }, { types: ['order.*'] });
    expect(await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).toMatchObject({ status: 404, body: { type: 'urn:herald:problem:not-found' } });
    for (const body of [{}, { after: -1 }, { after: 1.5 }, { after: '3' }, { after: 0, until: 9 }]) {
      expect((await app.api('POST', `/v1/subscriptions/${id}/replay`, body, key)).status, JSON.stringify(body)).toBe(422);
    }
    const documented = (await (await fetch(`${app.baseUrl}/openapi.json`)).json()).paths['/v1/subscriptions/{id}/replay'];
    expect(Object.keys(documented).sort()).toEqual(['delete', 'get', 'post']);
    expect(documented.post.responses['202'].content['application/json'].schema.properties).toHaveProperty('position');
    expect(documented.get.responses['200'].content['application/json'].schema.required).toEqual(
      expect.arrayContaining(['id', 'subscriptionId', 'status', 'after', 'until', 'position', 'replayed']),
    );
    // Nothing to replay: done at once.
    const empty = await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key);
    expect(empty).toMatchObject({ status: 202, body: { status: 'completed', until: 0, replayed: 0 } });
  });
});

describe('replay of delivered events (issue 21)', () => {
  it('sends them again two batches at a time, though the engine holds them unwritten, and settles each into a new round', async () => {
    // Room for more than a batch: the engine takes each batch whole, and none of it is pending in the outbox.
    const app = await appWithLog(0, { concurrency: 600 });
    let release = 0;
    const inbox = await startReceiver(() => ({ status: 204, delay: Math.max(0, release - Date.now()) }));
    const { id, key } = await subscribeWebhook(app, { url: inbox.url }, { types: ['order.*'] });
    await publishNumbered(app, 3_000);
    const outbox = await sqlOutbox(app.herald.store);
    const delivered = async () => (await outbox.list(id, { limit: 3_000 })).filter((row) => row.status === 'delivered');
    await waitFor(async () => (await delivered()).length === 3_000, 'the first round', 60_000);
    await linger(200);

    const startedAt = Date.now();
    release = startedAt + 2_000;
    expect((await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key)).status).toBe(202);
    await linger(1_000);
    // The endpoint holds its answers: the replay waits at two batches, and the rows it handed over stay as they were.
    expect((await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body).toMatchObject({ status: 'running', position: 1_000, replayed: 1_000 });
    expect(await outbox.list(id, { status: 'pending', limit: 1 })).toEqual([]);
    expect((await delivered()).every((row) => row.updatedAt < startedAt)).toBe(true);

    await waitFor(() => inbox.requests.length === 6_000, 'the replay', 60_000);
    await waitFor(async () => (await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body.status === 'completed', 'its end');
    await waitFor(async () => (await delivered()).every((row) => row.updatedAt >= startedAt), 'every row in its new round');
    const rows = await delivered();
    expect(rows).toHaveLength(3_000);
    expect(rows.every((row) => row.attempts === 1 && row.lockedBy === null)).toBe(true);
    // Each delivery shows both rounds: the first delivery's attempt, then the replay's.
    const attempts = await outbox.attempts(rows.map((row) => row.id));
    expect(attempts).toHaveLength(6_000);
    const perDelivery = new Map<string, string[]>();
    for (const attempt of attempts) perDelivery.set(attempt.deliveryId, [...(perDelivery.get(attempt.deliveryId) ?? []), attempt.outcome]);
    expect([...perDelivery.values()].every((outcomes) => outcomes.join() === 'succeeded,succeeded')).toBe(true);
  }, 120_000);

  it('gives back as pending what it handed over unsent when the server stops', async () => {
    const database = tempDatabase();
    const app = await startTestApp([webhook({ concurrency: 2, pollInterval: 50 })], { env: allowPrivate, database });
    let delay = 0;
    const inbox = await startReceiver(() => ({ status: 200, delay }));
    const { id, key } = await subscribeWebhook(app, { url: inbox.url }, { types: ['order.*'] });
    await publishNumbered(app, 10);
    await waitFor(() => inbox.requests.length === 10, 'the first round');
    await linger(200);
    delay = 400;
    // Two in flight, the rest of what the engine took (at least as many again) queued unsent.
    expect((await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key)).status).toBe(202);
    await waitFor(() => inbox.requests.length === 12, 'two requests in flight');
    await app.close();
    expect(inbox.requests).toHaveLength(12);

    const outbox = await sqlOutbox(await openStore(database));
    const rows = await outbox.list(id, { limit: 100 });
    expect(rows).toHaveLength(10);
    // The two sent are in their new round; the eight unsent are pending, for whichever node runs next.
    expect(rows.filter((row) => row.status === 'delivered')).toHaveLength(2);
    const unsent = rows.filter((row) => row.status === 'pending');
    expect(unsent).toHaveLength(8);
    expect(unsent.every((row) => row.attempts === 0 && row.lockedBy === null && row.lockedUntil === null)).toBe(true);
    expect(await outbox.attempts(rows.map((row) => row.id))).toHaveLength(12);
  });
});

describe('replay since a time (issue 19)', () => {
  const base = Date.parse('2025-03-01T12:00:00.000Z');
  const at = (minutes: number) => new Date(base + minutes * 60_000).toISOString();

  /** Events at known minutes (a real SQLite store, appended with their times), every third one of a type the subscription does not take. */
  async function appAtMinutes(minutes: readonly number[]): Promise<TestApp> {
    const store = sqliteStore({ path: ':memory:' });
    await store.init();
    await store.append(minutes.map((minute, i) => newEvent(i % 3 === 2 ? 'invoice.paid' : 'order.created', { time: at(minute), data: { n: i + 1 } })));
    const app = await startTestApp([webhook({ pollInterval: 50 })], { store, env: allowPrivate });
    onTestFinished(() => app.close());
    return app;
  }

  async function replayed(app: TestApp, inbox: TestReceiver, id: string, key: string, body: unknown) {
    const started = await app.api('POST', `/v1/subscriptions/${id}/replay`, body, key);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    await waitFor(async () => (await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body.status === 'completed', 'the replay');
    const { body: done } = await app.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key);
    await waitFor(() => inbox.requests.length >= done.replayed, `${done.replayed} requests`);
    await linger(100);
    const seqs = inbox.requests.splice(0).map((request) => seqOf(request.body));
    return { started: started.body, done, seqs: seqs.sort((a, b) => a - b) };
  }

  it('replays exactly the events published at or after `since`, ties included', async () => {
    // seq:        1  2  3  4  5  6  7  8  9 10 11 12   (3, 6, 9, 12 are invoice.paid)
    const app = await appAtMinutes([0, 1, 2, 3, 3, 3, 4, 5, 5, 6, 7, 8]);
    const inbox = await startReceiver();
    const { id, key } = await subscribeWebhook(app, { url: inbox.url }, { types: ['order.*'] });

    const fromThree = await replayed(app, inbox, id, key, { since: at(3) });
    expect(fromThree.started).toMatchObject({ after: 3, since: at(3), until: 12 });
    expect(fromThree.seqs).toEqual([4, 5, 7, 8, 10, 11]);
    expect(fromThree.done).toMatchObject({ status: 'completed', after: 3, since: at(3), replayed: 6 });

    // Between two events, and written with an offset: from the next one on.
    expect((await replayed(app, inbox, id, key, { since: '2025-03-01T13:05:30+01:00' })).seqs).toEqual([10, 11]);
    // Older than the log: all of it.
    const all = await replayed(app, inbox, id, key, { since: '2020-01-01T00:00:00Z' });
    expect(all.started).toMatchObject({ after: 0 });
    expect(all.seqs).toEqual([1, 2, 4, 5, 7, 8, 10, 11]);
  });

  it('completes at once with nothing for a `since` in the future, and answers 422 to anything but exactly one of after and since', async () => {
    const app = await appAtMinutes([0, 1, 2]);
    const inbox = await startReceiver();
    const { id, key } = await subscribeWebhook(app, { url: inbox.url }, { types: ['order.*'] });
    const future = await app.api('POST', `/v1/subscriptions/${id}/replay`, { since: new Date(Date.now() + 60_000).toISOString() }, key);
    expect(future).toMatchObject({ status: 202, body: { status: 'completed', after: 3, until: 3, replayed: 0 } });
    await linger(200);
    expect(inbox.requests).toHaveLength(0);

    for (const body of [{}, { after: 0, since: at(0) }, { since: '2025-03-01' }, { since: 'yesterday' }, { since: 1_700_000_000 }, { since: at(0), until: 3 }]) {
      const answer = await app.api('POST', `/v1/subscriptions/${id}/replay`, body, key);
      expect(answer.status, JSON.stringify(body)).toBe(422);
    }
    const neither = await app.api('POST', `/v1/subscriptions/${id}/replay`, {}, key);
    expect(JSON.stringify(neither.body.errors)).toMatch(/exactly one of `after` \(a seq\) and `since` \(a time\)/);

    const documented = (await (await fetch(`${app.baseUrl}/openapi.json`)).json()).paths['/v1/subscriptions/{id}/replay'];
    expect(documented.post.requestBody.content['application/json'].schema.properties).toHaveProperty('since');
    expect(documented.post.responses['202'].content['application/json'].schema.properties).toHaveProperty('since');
  });
});

describe('a replay seen from every node', () => {
  /** Two nodes on one SQLite database whose log holds 1,500 order.created events (seq 1 to 1,500), and a subscription to them. */
  async function twoNodes(answer: () => { status: number; delay?: number }) {
    const database = tempDatabase();
    const seed = await openStore(database);
    await seed.append(Array.from({ length: 1_500 }, (_, n) => newEvent('order.created', { data: { n } })));
    // A lease of 3 s: a node looks for replays to take over every 1.5 s.
    const options: WebhookOptions = { pollInterval: 50, timeout: 1_000, lease: 3_000, retrySchedule: [0, 3600] };
    const a = await startTestApp([webhook(options)], { env: allowPrivate, database });
    onTestFinished(() => a.close());
    const b = await startTestApp([webhook(options)], { env: allowPrivate, database });
    onTestFinished(() => b.close());
    const inbox = await startReceiver(answer);
    // Through B, whose admin key is the one stored last; the consumer's key works on both.
    const { id, key } = await subscribeWebhook(b, { url: inbox.url }, { types: ['order.*'] });
    return { a, b, inbox, id, key };
  }

  it('shows a replay on every node, refuses a second one on any, and stops it when another node cancels it', async () => {
    let delay = 800;
    const { a, b, inbox, id, key } = await twoNodes(() => ({ status: 200, delay }));
    const started = await a.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key);
    expect(started.status).toBe(202);
    await waitFor(() => inbox.requests.length > 0, 'the first replayed delivery');
    expect((await b.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body).toMatchObject({ id: started.body.id, status: 'running', until: 1_500 });
    const second = await b.api('POST', `/v1/subscriptions/${id}/replay`, { after: 1_000 }, key);
    expect(second).toMatchObject({ status: 409, body: { type: 'urn:herald:problem:replay-in-progress', replay: { id: started.body.id } } });

    const cancelled = await b.api('DELETE', `/v1/subscriptions/${id}/replay`, undefined, key);
    expect(cancelled).toMatchObject({ status: 200, body: { id: started.body.id, status: 'cancelled', error: 'cancelled by request' } });
    expect((await a.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body).toMatchObject({ id: started.body.id, status: 'cancelled' });
    // Its two batches (seq 1 to 1,000) drain once the endpoint is quick; had A gone on, a third would follow.
    delay = 0;
    await waitFor(() => inbox.ids().size === 1_000, 'the two batches made before the cancel', 30_000);
    await linger(2_500);
    expect(Math.max(...inbox.requests.map((request) => seqOf(request.body)))).toBe(1_000);
    expect((await a.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body).toMatchObject({ status: 'cancelled', position: cancelled.body.position });
  });

  it('goes on from where it was on another node when its node stops', async () => {
    const { a, b, inbox, id, key } = await twoNodes(() => ({ status: 200, delay: 50 }));
    const started = await a.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key);
    expect(started.status).toBe(202);
    // Its first two batches made, it waits for the first to be delivered before the third.
    await waitFor(() => inbox.requests.length >= 20, 'the replay under way on A');
    await a.close();
    const handedOver = (await b.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body;
    expect(handedOver).toMatchObject({ id: started.body.id, status: 'running' });
    expect(handedOver.position).toBeLessThan(1_500);

    await waitFor(async () => (await b.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body.status === 'completed', 'B to finish the replay', 30_000);
    await waitFor(() => inbox.ids().size === 1_500, 'every replayed event', 30_000);
    expect((await b.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body).toMatchObject({ id: started.body.id, position: 1_500, replayed: 1_500 });
  });
});
