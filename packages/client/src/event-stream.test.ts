import { createHerald } from '@herald/server';
import { sse } from '@herald/sse';
import { linger, restClient, startTestApp, type TestApp, testEventTypes, waitFor } from '@herald/testkit';
import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { startTcpRelay, type TcpRelay } from '../../testkit/src/tcp-relay.test-support.js';
import { type EventStream, openEventStream, type StreamEnd, type StreamError, type StreamedEvent, type StreamReset } from './event-stream.js';
import { shortLivedTokens } from './stream-tokens.test-support.js';

type TestEvents = { 'order.created': { n: number }; 'order.shipped': { n: number }; 'invoice.paid': { n: number } };

let app: TestApp | undefined;
let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
const streams: EventStream[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await proxy?.close();
  await app?.close();
  app = proxy = undefined;
});

/**
 * A TCP relay in front of `target` (a URL), whose connections can be cut as a network failure would. While the
 * target refuses connections it answers 502, as a reverse proxy in front of a stopped server does. Closed after the test.
 */
async function startProxy(target: string): Promise<TcpRelay & { url: string }> {
  const relay = await startTcpRelay(new URL(target).host, { unreachable: 'HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n' });
  proxy = Object.assign(relay, { url: `http://${relay.address}` });
  return proxy;
}

const adminKey = 'admin-event-stream-test-0123456789abcdef';

/** A Herald with SSE on the SQLite file `database`, not listening yet: it publishes while clients cannot reach it. */
function heraldOn(database: string): TestApp['herald'] {
  const herald = createHerald({ database, logLevel: 'silent', env: {}, adminKey, eventTypes: testEventTypes, transports: [sse({ retry: 100 })] });
  onTestFinished(() => herald.close());
  return herald;
}

/** `herald` listening on 127.0.0.1:`port` (0: any free one), the same way as `startTestApp`'s. */
async function listen(herald: TestApp['herald'], port = 0): Promise<TestApp> {
  const { server, port: listening } = await herald.listen({ port, host: '127.0.0.1', handleSignals: false });
  const baseUrl = `http://127.0.0.1:${listening}`;
  return { herald, server, baseUrl, adminKey, ...restClient(baseUrl, adminKey), close: () => herald.close() };
}

/** What one stream's handlers saw. */
function recorder() {
  const seen = { events: [] as StreamedEvent[], ends: [] as StreamEnd[], errors: [] as StreamError[], opens: 0 };
  const handlers = {
    event: (event: StreamedEvent) => seen.events.push(event),
    end: (end: StreamEnd) => seen.ends.push(end),
    error: (error: StreamError) => seen.errors.push(error),
    open: () => seen.opens++,
  };
  return { seen, handlers };
}

/** A consumer's stream token for the test server. */
async function tokenFor(server: TestApp, consumer: string, body: Record<string, unknown> = {}): Promise<string> {
  return server.streamToken(await server.consumerKey(consumer), body);
}

describe('openEventStream', () => {
  it('hands over typed envelopes of every type a pattern matches, and resumes by itself after a drop', async () => {
    app = await startTestApp([sse({ retry: 100 })]);
    const server = app;
    const tcp = await startProxy(server.baseUrl);
    const token = await tokenFor(server, 'acme');
    const received: StreamedEvent[] = [];
    let opens = 0;
    const stream = openEventStream<TestEvents>(
      { url: tcp.url, types: ['order.*', 'invoice.paid'], token, EventSource },
      {
        event: (event) => {
          if (event.type === 'order.created') expect(typeof event.data.n).toBe('number');
          received.push(event);
        },
        open: () => opens++,
      },
    );
    streams.push(stream);
    await waitFor(() => opens === 1, 'the stream to open');

    const published: StreamedEvent[] = [];
    const types = ['order.created', 'order.shipped', 'invoice.paid', 'user.signed_up'] as const;
    for (let n = 0; n < 120; n++) {
      const { event } = await server.herald.publish({ type: types[n % types.length] as 'order.created', data: { n } });
      if (event.type !== 'user.signed_up') published.push(event as StreamedEvent);
      if (n === 50) tcp.drop();
      if (n % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await waitFor(() => received.length >= published.length, `${published.length} events`);
    await linger();
    expect(received.map((event) => event.id)).toEqual(published.map((event) => event.id));
    expect(stream.lastSeq).toBe(published.at(-1)?.seq);
    expect(opens).toBeGreaterThanOrEqual(2);
  });

  it('starts after a given seq, and reports a reset when that is past the end of the log', async () => {
    app = await startTestApp([sse()]);
    const server = app;
    const token = await tokenFor(server, 'acme', { types: ['order.*'] });
    const first = await server.herald.publish({ type: 'order.created', data: { n: 1 } });
    const second = await server.herald.publish({ type: 'order.created', data: { n: 2 } });

    const replayed: StreamedEvent[] = [];
    streams.push(openEventStream({ url: server.baseUrl, types: ['order.*'], token, after: first.event.seq, EventSource }, { event: (event) => replayed.push(event) }));
    await waitFor(() => replayed.length === 1, 'the replay after the first event');
    expect(replayed[0]?.id).toBe(second.event.id);

    const resets: StreamReset[] = [];
    const live: StreamedEvent[] = [];
    const ahead = openEventStream(
      { url: server.baseUrl, types: ['order.*'], token, after: 1000, EventSource },
      { event: (event) => live.push(event), reset: (reset) => resets.push(reset) },
    );
    streams.push(ahead);
    await waitFor(() => resets.length === 1, 'the reset');
    expect(resets[0]).toEqual({ reason: 'ahead', latest: second.event.seq });
    expect(ahead.lastSeq).toBe(second.event.seq);
    const third = await server.herald.publish({ type: 'order.shipped', data: { n: 3 } });
    await waitFor(() => live.length === 1, 'the live event after the reset');
    expect(live[0]?.id).toBe(third.event.id);
  });

  it('attaches to a durable subscription with an API key sent through the eventsource package', async () => {
    app = await startTestApp([sse()]);
    const server = app;
    const key = await server.consumerKey('acme');
    const { body } = await server.api('POST', '/v1/subscriptions', { transport: 'sse', types: ['invoice.paid'] }, key);
    const received: StreamedEvent[] = [];
    let opened = false;
    streams.push(
      openEventStream(
        {
          url: server.baseUrl,
          subscription: body.id,
          EventSource,
          init: { fetch: (input: string, init: RequestInit) => fetch(input, { ...init, headers: { ...init.headers, authorization: `Bearer ${key}` } }) },
        },
        { event: (event) => received.push(event), open: () => (opened = true) },
      ),
    );
    await waitFor(() => opened, 'the stream to open');
    await server.herald.publish({ type: 'order.created', data: { n: 1 } });
    const paid = await server.herald.publish({ type: 'invoice.paid', data: { n: 2 } });
    await waitFor(() => received.length === 1, 'the invoice');
    expect(received[0]?.id).toBe(paid.event.id);
  });

  it('opens a new stream with a fresh token when the token expires, and resumes after the last event', async () => {
    const transport = sse({ retry: 100 });
    app = await startTestApp([transport]);
    const server = app;
    const key = await server.consumerKey('acme');
    let tokens = 0;
    const freshToken = async () => {
      tokens++;
      return ((await server.api('POST', '/v1/stream-tokens', { ttl: tokens === 1 ? 10 : 60 }, key)).body as { token: string }).token;
    };
    const received: StreamedEvent[] = [];
    const ended: StreamEnd[] = [];
    let opens = 0;
    const stream = openEventStream(
      { url: server.baseUrl, types: ['order.*'], token: freshToken, EventSource },
      { event: (event) => received.push(event), end: (end) => ended.push(end), open: () => opens++ },
    );
    streams.push(stream);
    await waitFor(() => opens === 1, 'the first stream to open');
    const first = stream.source;
    const { event: before } = await server.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => received.length === 1, 'the event before expiry');

    await waitFor(() => ended.length === 1, 'the end frame', 15_000);
    expect(ended[0]?.reason).toBe('token-expired');
    const { event: during } = await server.herald.publish({ type: 'order.shipped', data: { n: 2 } });
    await waitFor(() => received.length === 2, 'the event published around the expiry', 15_000);
    expect(received.map((event) => event.id)).toEqual([before.id, during.id]);
    expect(tokens).toBe(2);
    expect(opens).toBe(2);
    expect(stream.source).not.toBe(first);
    expect(first?.readyState).toBe(2);
    await waitFor(() => transport.connections === 1, 'only the new stream to stay open');
  }, 30_000);

  it('closes the stream when its credential is revoked, or a fixed token expires', async () => {
    const transport = sse({ retry: 100 });
    app = await startTestApp([transport]);
    const server = app;
    const made = await server.api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme' });
    const revokedToken = await server.streamToken(made.body.key, { types: ['order.*'] });
    const expiringToken = await server.streamToken(await server.consumerKey('acme'), { types: ['order.*'], ttl: 10 });
    const endings: Record<string, StreamEnd[]> = { revoked: [], expired: [] };
    const revoked = openEventStream({ url: server.baseUrl, types: ['order.*'], token: revokedToken, EventSource }, { event: () => {}, end: (end) => endings.revoked?.push(end) });
    const expired = openEventStream({ url: server.baseUrl, types: ['order.*'], token: expiringToken, EventSource }, { event: () => {}, end: (end) => endings.expired?.push(end) });
    streams.push(revoked, expired);
    await waitFor(() => transport.connections === 2, 'both streams to open');

    expect((await server.api('DELETE', `/v1/keys/${made.body.id}`)).status).toBe(204);
    await waitFor(() => endings.revoked?.length === 1, 'the revoked stream to end');
    expect(endings.revoked?.[0]?.reason).toBe('revoked');
    expect(revoked.source?.readyState).toBe(2);

    await waitFor(() => endings.expired?.length === 1, 'the fixed token to expire', 15_000);
    expect(endings.expired?.[0]?.reason).toBe('token-expired');
    expect(expired.source?.readyState).toBe(2);
    // Closed at once: no reconnect that would only get a 401.
    await linger();
    expect(transport.connections).toBe(0);
  }, 30_000);

  it('opens a new stream with a fresh token when the EventSource gives up on a token that expired while the server was down', async () => {
    const database = tempDatabase();
    const first = await listen(heraldOn(database));
    const { port } = new URL(first.baseUrl);
    const key = await first.consumerKey('acme');
    const tokens = shortLivedTokens(first, key);
    const renewing = recorder();
    const fixed = recorder();
    const options = { url: first.baseUrl, types: ['order.*'], EventSource, initialDelay: 50, maxDelay: 400 };
    const stream = openEventStream({ ...options, token: tokens.renew }, renewing.handlers);
    const fixedStream = openEventStream({ ...options, token: await tokens.issue() }, fixed.handlers);
    streams.push(stream, fixedStream);
    await waitFor(() => renewing.seen.opens === 1 && fixed.seen.opens === 1, 'both streams to open');
    const firstSource = stream.source;
    const before = await first.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => renewing.seen.events.length === 1 && fixed.seen.events.length === 1, 'the event before the stop');

    await first.close();
    await waitFor(() => renewing.seen.ends.length === 1 && fixed.seen.ends.length === 1, 'the end frames');
    expect([...renewing.seen.ends, ...fixed.seen.ends].map((end) => end.reason)).toEqual(['stopping', 'stopping']);
    const second = heraldOn(database);
    const shipped = await second.publish({ type: 'order.shipped', data: { n: 2 } });
    await second.publish({ type: 'invoice.paid', data: { n: 3 } });
    const created = await second.publish({ type: 'order.created', data: { n: 4 } });
    await waitFor(() => Date.now() > tokens.expiresAt, 'the stream tokens to expire while the server is down', 15_000);
    // Meanwhile each EventSource kept reconnecting by itself into refused connections.
    expect(renewing.seen.errors.length).toBeGreaterThan(0);
    expect([...renewing.seen.errors, ...fixed.seen.errors].every((error) => !error.closed && error.delay === undefined)).toBe(true);
    expect(tokens.renewals).toBe(1);

    const restarted = await listen(second, Number(port));
    expect(restarted.baseUrl).toBe(first.baseUrl);
    await waitFor(() => renewing.seen.opens === 2, 'the stream to open again with a fresh token');
    const after = await second.publish({ type: 'order.shipped', data: { n: 5 } });
    const published = [before, shipped, created, after].map(({ event }) => event);
    await waitFor(() => renewing.seen.events.length >= published.length, `${published.length} events`);
    await linger();
    expect(renewing.seen.events.map((event) => event.id)).toEqual(published.map((event) => event.id));
    expect(stream.lastSeq).toBe(after.event.seq);
    expect(tokens.renewals).toBe(2);
    expect(renewing.seen.errors.filter((error) => error.status !== undefined)).toEqual([{ closed: false, status: 401, delay: expect.any(Number) }]);
    expect(stream.source).not.toBe(firstSource);
    expect(firstSource?.readyState).toBe(2);

    // A fixed token can never work again: its stream is over, and no new EventSource is opened.
    await waitFor(() => fixed.seen.errors.some((error) => error.closed), 'the fixed token to be refused');
    expect(fixed.seen.errors.at(-1)).toEqual({ closed: true, status: 401 });
    expect(fixedStream.source?.readyState).toBe(2);
    const refusals = fixed.seen.errors.length;
    await linger(500);
    expect(fixed.seen.errors.length).toBe(refusals);
    expect(fixed.seen.opens).toBe(1);
    expect(fixed.seen.events.map((event) => event.id)).toEqual([before.event.id]);
  }, 30_000);

  it('opens new streams with backoff while a proxy answers 502 for a stopped server, until it is back or the stream is closed', async () => {
    const database = tempDatabase();
    const first = await listen(heraldOn(database));
    const { port } = new URL(first.baseUrl);
    const tcp = await startProxy(first.baseUrl);
    const token = await first.streamToken(await first.consumerKey('acme'));
    const { seen, handlers } = recorder();
    const stream = openEventStream({ url: tcp.url, types: ['order.*'], token, EventSource, initialDelay: 20, maxDelay: 200 }, handlers);
    streams.push(stream);
    await waitFor(() => seen.opens === 1, 'the stream to open');
    const before = await first.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => seen.events.length === 1, 'the event before the stop');

    await first.close();
    const reopening = () => seen.errors.filter((error) => error.delay !== undefined);
    await waitFor(() => reopening().length >= 6, 'several new streams refused with 502');
    reopening().forEach((error, attempt) => {
      expect(error).toMatchObject({ closed: false, status: 502 });
      expect(error.delay).toBeLessThanOrEqual(Math.min(200, 20 * 2 ** attempt));
    });
    const second = heraldOn(database);
    const down = await second.publish({ type: 'order.shipped', data: { n: 2 } });
    await listen(second, Number(port));
    const after = await second.publish({ type: 'order.created', data: { n: 3 } });
    const published = [before, down, after].map(({ event }) => event);
    await waitFor(() => seen.events.length >= published.length, `${published.length} events`);
    await linger();
    expect(seen.events.map((event) => event.id)).toEqual(published.map((event) => event.id));
    expect(seen.opens).toBe(2);
    expect(seen.errors.some((error) => error.closed)).toBe(false);

    // Stopped again: it keeps trying until close(), then opens nothing more.
    await second.close();
    const refused = reopening().length;
    await waitFor(() => reopening().length >= refused + 2, 'new streams refused again');
    stream.close();
    // A connection the last EventSource had begun may still reach the proxy, in this same process, a moment later.
    await linger(100);
    const connections = tcp.connections();
    await linger(500);
    expect(tcp.connections()).toBe(connections);
    expect(seen.errors.some((error) => error.closed)).toBe(false);
  }, 30_000);

  it('closes the stream on a refusal a fresh token cannot change, even with a token function', async () => {
    app = await startTestApp([sse()]);
    const server = app;
    const key = await server.consumerKey('acme');
    let tokens = 0;
    const { seen, handlers } = recorder();
    const stream = openEventStream(
      {
        url: server.baseUrl,
        types: ['order.*'],
        token: () => {
          tokens++;
          return server.streamToken(key, { types: ['invoice.*'] });
        },
        EventSource,
        initialDelay: 1,
      },
      handlers,
    );
    streams.push(stream);
    await waitFor(() => seen.errors.length >= 1, 'the refusal');
    await linger();
    expect(seen.errors).toEqual([{ closed: true, status: 403 }]);
    expect(tokens).toBe(1);
    expect(stream.source?.readyState).toBe(2);
  });

  it('streams only the events its filter lets through, also when the EventSource resumes and when a new one opens', async () => {
    const database = tempDatabase();
    const first = await listen(heraldOn(database));
    const { port } = new URL(first.baseUrl);
    const tcp = await startProxy(first.baseUrl);
    const token = await first.streamToken(await first.consumerKey('acme'));
    const options = { url: tcp.url, types: ['order.*'], token, EventSource, initialDelay: 20, maxDelay: 200 };
    // Passes n of 100 and more, and the subject that needs every kind of escaping in a query string.
    const filtered = recorder();
    const everything = recorder();
    streams.push(
      openEventStream({ ...options, filter: { $or: [{ 'data.n': { $gte: 100 } }, { subject: 'eu west+1&x=ü#' }] } }, filtered.handlers),
      openEventStream(options, everything.handlers),
    );
    await waitFor(() => filtered.seen.opens === 1 && everything.seen.opens === 1, 'both streams to open');

    const published: StreamedEvent[] = [];
    // Of each five, three pass: n 150, n 100, and n 7 for its subject.
    const publishSome = async (herald: TestApp['herald']) => {
      for (const [i, n] of [1, 150, 7, 100, 99].entries()) {
        const subject = i === 2 ? 'eu west+1&x=ü#' : i === 4 ? 'eu west 1' : undefined;
        const type = i % 2 ? 'order.shipped' : 'order.created';
        published.push((await herald.publish({ type, data: { n }, ...(subject ? { subject } : {}) })).event as StreamedEvent);
      }
    };
    const passes = (event: StreamedEvent) => (event.data as { n: number }).n >= 100 || event.subject === 'eu west+1&x=ü#';
    const caughtUp = () => waitFor(() => everything.seen.events.length === published.length, `${published.length} events`);
    await publishSome(first.herald);
    await caughtUp();

    // The connections drop: each EventSource reconnects by itself with Last-Event-ID, and the events published meanwhile are replayed.
    tcp.drop();
    await publishSome(first.herald);
    await waitFor(() => filtered.seen.opens === 2, 'the filtered stream to resume');
    await caughtUp();

    // The server stops: the EventSources give up on the proxy's 502, and new ones open once it is back, after the last event.
    await first.close();
    const second = heraldOn(database);
    await publishSome(second);
    await waitFor(() => filtered.seen.errors.some((error) => error.status === 502), 'a new stream refused with 502');
    await listen(second, Number(port));
    await waitFor(() => filtered.seen.opens === 3, 'a new stream to open');
    await publishSome(second);
    await caughtUp();
    await linger();
    expect(everything.seen.events.map((event) => event.id)).toEqual(published.map((event) => event.id));
    expect(filtered.seen.events.map((event) => event.id)).toEqual(published.filter(passes).map((event) => event.id));
    expect(filtered.seen.events).toHaveLength(12);
    expect(filtered.seen.errors.some((error) => error.closed)).toBe(false);
  }, 30_000);

  it('closes the stream on a filter the server refuses (422), even with a token function', async () => {
    app = await startTestApp([sse()]);
    const server = app;
    const key = await server.consumerKey('acme');
    for (const filter of [{ 'data.n': { $regex: 'x' } }, { 'data.nope': 1 }]) {
      let tokens = 0;
      const { seen, handlers } = recorder();
      const token = () => {
        tokens++;
        return server.streamToken(key);
      };
      const stream = openEventStream({ url: server.baseUrl, types: ['order.*'], token, filter, EventSource, initialDelay: 1 }, handlers);
      streams.push(stream);
      await waitFor(() => seen.errors.length >= 1, 'the refusal');
      await server.herald.publish({ type: 'order.created', data: { n: 1 } });
      await linger();
      expect(seen.errors).toEqual([{ closed: true, status: 422 }]);
      expect(seen.opens).toBe(0);
      expect(seen.events).toEqual([]);
      expect(tokens).toBe(1);
      expect(stream.source?.readyState).toBe(2);
    }
  });

  it('reports a token function that fails, and opens nothing', async () => {
    app = await startTestApp([sse()]);
    const failures: unknown[] = [];
    const stream = openEventStream(
      { url: app.baseUrl, types: ['order.*'], token: () => Promise.reject(new Error('no session')), EventSource },
      { event: () => {}, tokenError: (error) => failures.push(error) },
    );
    streams.push(stream);
    await waitFor(() => failures.length === 1, 'the token error');
    expect(String(failures[0])).toMatch(/no session/);
    expect(stream.source).toBeUndefined();
  });

  it('reports a stream that fails for good, and does not reconnect with a fixed token that is refused', async () => {
    app = await startTestApp([sse()]);
    const errors: StreamError[] = [];
    streams.push(
      openEventStream(
        { url: app.baseUrl, types: ['order.*'], token: 'hs_nope', EventSource, initialDelay: 1 },
        { event: () => {}, error: (error) => errors.push(error) },
      ),
    );
    await waitFor(() => errors.length >= 1, 'the error');
    await linger();
    expect(errors).toEqual([{ closed: true, status: 401 }]);
  });

  it('needs an EventSource', () => {
    const global = globalThis as { EventSource?: unknown };
    const saved = global.EventSource;
    delete global.EventSource;
    try {
      expect(() => openEventStream({ url: 'http://127.0.0.1:1', types: ['**'] }, { event: () => {} })).toThrow(/No EventSource/);
    } finally {
      if (saved !== undefined) global.EventSource = saved;
    }
  });
});
