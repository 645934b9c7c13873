import type { HeraldEvent } from '@herald/core';
import { linger, waitFor } from '@herald/testkit';
import { EventSource } from 'eventsource';
import { describe, expect, it } from 'vitest';
import { closedAfterEach, collectEvents, eventSourceWithKey, opened } from './stream-app.test-support.js';

const orderTypes = ['order.created', 'order.shipped'] as const;
const idsOf = (events: readonly HeraldEvent[]) => events.map((event) => event.id);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const { start, track } = closedAfterEach();

/** The data of every `end` frame the source receives. */
function ends(source: EventSource): { reason: string; message: string }[] {
  const received: { reason: string; message: string }[] = [];
  source.addEventListener('end', (message) => received.push(JSON.parse(message.data)));
  return received;
}

describe('resuming with the eventsource package', () => {
  it('reconnects by itself with Last-Event-ID after the server drops it, missing and repeating nothing', async () => {
    const app = await start({ retry: 100 });
    const key = await app.consumerKey('acme');
    const source = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?types=order.*,invoice.paid`, key));
    const events = collectEvents(source, [...orderTypes, 'invoice.paid']);
    let opens = 0;
    source.addEventListener('open', () => opens++);
    await opened(source);

    const types = [...orderTypes, 'invoice.paid'] as const;
    const published: HeraldEvent[] = [];
    for (let n = 0; n < 250; n++) {
      const { event } = await app.herald.publish({ type: types[n % types.length] as 'order.created', data: { n } });
      published.push(event);
      // Dropped mid-flight, twice (the second time once it is back); publishing goes on while it is away.
      if (n === 80) app.dropConnections();
      if (n === 170) {
        await waitFor(() => opens === 2, 'the first reconnection');
        app.dropConnections();
      }
      if (n % 5 === 0) await pause(2);
    }
    await waitFor(() => events.length >= published.length, `${published.length} events`, 20_000);
    await linger();
    expect(idsOf(events)).toEqual(idsOf(published));
    expect(opens).toBeGreaterThanOrEqual(3);
    expect(app.lastEventIds[0]).toBeUndefined();
    const resumedFrom = app.lastEventIds.slice(1).map(Number);
    expect(resumedFrom.length).toBeGreaterThanOrEqual(2);
    for (const seq of resumedFrom) expect(published.map((event) => event.seq)).toContain(seq);
  });

  it('resumes a live stream that had received nothing from where it started, not from now', async () => {
    const app = await start({ retry: 100 });
    const key = await app.consumerKey('acme');
    await app.herald.publish({ type: 'invoice.paid', data: { n: 0 } });
    await waitFor(() => app.herald.bus.latest === 1, 'the bus to hand the event on');
    const source = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?types=order.created`, key));
    const events = collectEvents(source, ['order.created']);
    // The ready frame carries the position the stream started at.
    await new Promise((resolve) => source.addEventListener('ready', resolve, { once: true }));
    app.dropConnections();
    // Published while the client is away and before it received any event.
    const { event } = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => events.length === 1, 'the event published while away');
    expect(events[0]?.id).toBe(event.id);
    expect(app.lastEventIds.at(-1)).toBe('1');
  });

  it('sends a reset event with the end of the log when Last-Event-ID is past it, then goes on live', async () => {
    const app = await start();
    const key = await app.consumerKey('acme');
    for (let n = 0; n < 3; n++) await app.herald.publish({ type: 'order.created', data: { n } });
    const source = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?types=order.created&lastEventId=999`, key));
    const resets: { data: unknown; lastEventId: string }[] = [];
    source.addEventListener('reset', (message) => resets.push({ data: JSON.parse(message.data as string), lastEventId: message.lastEventId }));
    const events = collectEvents(source, ['order.created']);
    await waitFor(() => resets.length === 1, 'the reset event');
    expect(resets[0]).toEqual({ data: { reason: 'ahead', latest: 3 }, lastEventId: '3' });
    const { event } = await app.herald.publish({ type: 'order.created', data: { n: 3 } });
    await waitFor(() => events.length === 1, 'the live event after the reset');
    expect(events[0]?.id).toBe(event.id);
  });
});

describe('durable subscriptions', () => {
  it('keeps a cursor, so a new connection without Last-Event-ID gets what was missed', async () => {
    const app = await start({ cursorInterval: 50 });
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'sse', types: ['order.*'] }, key);
    expect(created.status).toBe(201);
    const url = `${app.baseUrl}/v1/stream?subscription=${created.body.id}`;

    const first = track(eventSourceWithKey(url, key));
    const firstEvents = collectEvents(first, [...orderTypes]);
    await opened(first);
    const before: HeraldEvent[] = [];
    for (let n = 0; n < 5; n++) before.push((await app.herald.publish({ type: 'order.created', data: { n } })).event);
    await app.herald.publish({ type: 'invoice.paid', data: { n: 5 } });
    await waitFor(() => firstEvents.length === 5, 'the first five events');
    // The cursor passes over the invoice too: it is past everything the subscription was shown.
    await waitFor(async () => (await app.api('GET', `/v1/subscriptions/${created.body.id}`, undefined, key)).body.cursor === 6, 'the cursor at 6');
    first.close();
    await waitFor(() => app.sse.connections === 0, 'the stream to close');

    const missed: HeraldEvent[] = [];
    for (let n = 0; n < 5; n++) missed.push((await app.herald.publish({ type: 'order.shipped', data: { n } })).event);
    const second = track(eventSourceWithKey(url, key));
    const secondEvents = collectEvents(second, [...orderTypes]);
    await waitFor(() => secondEvents.length === 5, 'the five missed events');
    await linger();
    expect(idsOf(firstEvents)).toEqual(idsOf(before));
    expect(idsOf(secondEvents)).toEqual(idsOf(missed));

    // Last-Event-ID, when given, wins over the cursor.
    const third = track(eventSourceWithKey(`${url}&lastEventId=${before[2]?.seq}`, key));
    const thirdEvents = collectEvents(third, [...orderTypes]);
    await waitFor(() => thirdEvents.length === 7, 'the replay from lastEventId');
    expect(idsOf(thirdEvents)).toEqual(idsOf([...before.slice(3), ...missed]));
  });

  it('follows changes of types and status while connected', async () => {
    const app = await start();
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'sse', types: ['order.created'] }, key);
    const source = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?subscription=${created.body.id}&named=false`, key));
    const events = collectEvents(source);
    await opened(source);
    const path = `/v1/subscriptions/${created.body.id}`;

    const a = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    // Once it arrives the replay is over and every later event is checked as it is published.
    await waitFor(() => events.length === 1, 'the first event');
    await app.herald.publish({ type: 'invoice.paid', data: { n: 2 } });
    expect((await app.api('PATCH', path, { types: ['order.created', 'invoice.paid'] }, key)).status).toBe(200);
    const b = await app.herald.publish({ type: 'invoice.paid', data: { n: 3 } });
    expect((await app.api('PATCH', path, { status: 'paused' }, key)).status).toBe(200);
    await app.herald.publish({ type: 'order.created', data: { n: 4 } });
    expect((await app.api('PATCH', path, { status: 'active' }, key)).status).toBe(200);
    const c = await app.herald.publish({ type: 'order.created', data: { n: 5 } });
    await waitFor(() => events.length >= 3, 'three events');
    await linger();
    expect(idsOf(events)).toEqual([a.event.id, b.event.id, c.event.id]);
  });

  it('passes over what is published while paused, and a later connection does not replay it (the same rule as WebSocket)', async () => {
    const app = await start({ cursorInterval: 50 });
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'sse', types: ['order.*'] }, key);
    const path = `/v1/subscriptions/${created.body.id}`;
    const url = `${app.baseUrl}/v1/stream?subscription=${created.body.id}`;
    const cursor = async () => (await app.api('GET', path, undefined, key)).body.cursor as number;
    const first = track(eventSourceWithKey(url, key));
    const firstEvents = collectEvents(first, [...orderTypes]);
    await opened(first);
    const { event: before } = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => firstEvents.length === 1, 'the event before the pause');
    expect((await app.api('PATCH', path, { status: 'paused' }, key)).status).toBe(200);
    const whilePaused = [(await app.herald.publish({ type: 'order.created', data: { n: 2 } })).event, (await app.herald.publish({ type: 'order.shipped', data: { n: 3 } })).event];
    await waitFor(async () => (await cursor()) === whilePaused[1]?.seq, 'the cursor to pass over the events published while paused');
    first.close();
    await waitFor(() => app.sse.connections === 0, 'the stream to close');

    expect((await app.api('PATCH', path, { status: 'active' }, key)).status).toBe(200);
    const { event: after } = await app.herald.publish({ type: 'order.created', data: { n: 4 } });
    const second = track(eventSourceWithKey(url, key));
    const secondEvents = collectEvents(second, [...orderTypes]);
    await waitFor(() => secondEvents.length === 1, 'the event published after the pause');
    await linger();
    expect(idsOf(secondEvents)).toEqual([after.id]);
    expect(idsOf(firstEvents)).toEqual([before.id]);
  });

  it('ends the stream of a durable subscription that is deleted, with an `end` frame that says so; the client cannot come back', async () => {
    const app = await start({ retry: 50 });
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'sse', types: ['order.*'] }, key);
    const source = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?subscription=${created.body.id}`, key));
    const events = collectEvents(source, ['order.created']);
    const ended = ends(source);
    const failures: (number | undefined)[] = [];
    source.addEventListener('error', (error) => failures.push((error as { code?: number }).code));
    await opened(source);
    const { event: before } = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => events.length === 1, 'the event before the deletion');

    expect((await app.api('DELETE', `/v1/subscriptions/${created.body.id}`, undefined, key)).status).toBe(204);
    await waitFor(() => source.readyState === EventSource.CLOSED, 'the EventSource to give up', 15_000);
    expect(ended).toEqual([{ reason: 'deleted', message: 'the subscription was deleted' }]);
    // It came back once, and the subscription was not found.
    expect(failures.at(-1)).toBe(404);
    await app.herald.publish({ type: 'order.created', data: { n: 2 } });
    await linger();
    expect(idsOf(events)).toEqual([before.id]);
    expect(app.sse.connections).toBe(0);
  });

  it('ends the streams of a revoked key, and the client cannot come back', async () => {
    const app = await start({ retry: 50 });
    const made = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme' });
    const token = await app.streamToken(made.body.key, { types: ['order.*'] });
    const source = track(new EventSource(`${app.baseUrl}/v1/stream?types=order.created&access_token=${token}`));
    const events = collectEvents(source, ['order.created']);
    const ended = ends(source);
    await opened(source);
    await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => events.length === 1, 'the first event');

    expect((await app.api('DELETE', `/v1/keys/${made.body.id}`)).status).toBe(204);
    await waitFor(() => source.readyState === EventSource.CLOSED, 'the EventSource to give up', 15_000);
    expect(ended).toEqual([{ reason: 'revoked', message: 'the key was revoked' }]);
    expect(app.sse.connections).toBe(0);
    expect(app.lastEventIds.length).toBeGreaterThanOrEqual(2);
  });

  it('ends a stream when its stream token expires, with an `end` frame that says why (issue 13)', async () => {
    const app = await start({ retry: 100 });
    const key = await app.consumerKey('acme');
    const issued = (await app.api('POST', '/v1/stream-tokens', { ttl: 10 }, key)).body as { token: string; expiresAt: string };
    const url = `${app.baseUrl}/v1/stream?types=order.*&access_token=${issued.token}`;
    const expiring = track(new EventSource(url));
    const events = collectEvents(expiring, ['order.created']);
    const ended = ends(expiring);
    const failures: (number | undefined)[] = [];
    expiring.addEventListener('error', (error) => failures.push((error as { code?: number }).code));
    // A stream opened with an API key has nothing to expire.
    const byKey = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?types=order.*`, key));
    const byKeyEvents = collectEvents(byKey, ['order.created']);
    await Promise.all([opened(expiring), opened(byKey)]);

    const { event: before } = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => events.length === 1, 'the event before expiry');

    await waitFor(() => ended.length === 1, 'the end frame', 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(issued.expiresAt) - 50);
    expect(ended[0]).toEqual({ reason: 'token-expired', message: 'the stream token expired: open the stream again with a new token and lastEventId' });
    // A client that ignores the frame reconnects once, gets 401 for the dead token, and stops for good.
    await waitFor(() => expiring.readyState === EventSource.CLOSED, 'the EventSource to give up');
    expect(failures.at(-1)).toBe(401);
    await waitFor(() => app.sse.connections === 1, 'only the stream opened with the key to stay open');

    // What a client should do instead: open it again with a new token, from the last event it received.
    const { event: missed } = await app.herald.publish({ type: 'order.created', data: { n: 2 } });
    const fresh = (await app.api('POST', '/v1/stream-tokens', { ttl: 60 }, key)).body as { token: string };
    const reopened = track(new EventSource(`${app.baseUrl}/v1/stream?types=order.*&access_token=${fresh.token}&lastEventId=${before.seq}`));
    const resumed = collectEvents(reopened, ['order.created']);
    await waitFor(() => resumed.length === 1, 'the event published while it was away');
    expect(resumed.map((event: HeraldEvent) => event.id)).toEqual([missed.id]);
    await waitFor(() => byKeyEvents.length === 2, 'the stream opened with the key to go on');
    expect(byKey.readyState).toBe(EventSource.OPEN);
  }, 30_000);
});
