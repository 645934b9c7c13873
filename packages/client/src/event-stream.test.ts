import { connect, createServer, type Socket } from 'node:net';
import { sse } from '@herald/sse';
import { linger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import { type EventStream, openEventStream, type StreamEnd, type StreamedEvent, type StreamReset } from './event-stream.js';

type TestEvents = { 'order.created': { n: number }; 'order.shipped': { n: number }; 'invoice.paid': { n: number } };

let app: TestApp | undefined;
let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
const streams: EventStream[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  proxy?.drop();
  await proxy?.close();
  await app?.close();
  app = proxy = undefined;
});

/** A TCP proxy in front of `target`, whose connections can be cut as a network failure would. */
async function startProxy(target: string): Promise<{ url: string; drop(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    drop: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
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
    proxy = tcp;
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

  it('reports a stream that fails for good', async () => {
    app = await startTestApp([sse()]);
    const errors: boolean[] = [];
    streams.push(
      openEventStream({ url: app.baseUrl, types: ['order.*'], token: 'hs_nope', EventSource }, { event: () => {}, error: ({ closed }) => errors.push(closed) }),
    );
    await waitFor(() => errors.length === 1, 'the error');
    expect(errors).toEqual([true]);
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
