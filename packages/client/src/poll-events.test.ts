import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { poll } from '@herald/poll';
import { linger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamedEvent, StreamReset } from './event-stream.js';
import { PollError, pollEvents } from './poll-events.js';
import { shortLivedTokens } from './stream-tokens.test-support.js';

type TestEvents = { 'order.created': { n: number }; 'order.shipped': { n: number }; 'invoice.paid': { n: number } };

let app: TestApp | undefined;
const stops: AbortController[] = [];
const proxies: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) stop.abort();
  for (const proxy of proxies.splice(0)) {
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
  }
  await app?.close();
  app = undefined;
});

/**
 * A proxy in front of `target` on an ephemeral port, closed after the test: `intercept` sees each request
 * first, and either answers it (or never does) and returns true, or returns false to pass it on.
 */
async function startProxy(target: TestApp, intercept: (request: IncomingMessage, response: ServerResponse) => boolean): Promise<string> {
  const proxy = createServer((request, response) => {
    if (intercept(request, response)) return;
    fetch(new URL(request.url ?? '/', target.baseUrl), { headers: { authorization: request.headers.authorization ?? '' } }).then(
      async (answer) => response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' }).end(await answer.text()),
      () => response.writeHead(502).end(),
    );
  });
  proxies.push(proxy);
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

function aborter(): AbortController {
  const controller = new AbortController();
  stops.push(controller);
  return controller;
}

async function publish(server: TestApp, type: keyof TestEvents, n: number): Promise<StreamedEvent> {
  return (await server.herald.publish({ type, data: { n } })).event;
}

/** Takes events from `source` into `into` until it ends. */
async function drain<T>(source: AsyncIterable<T>, into: T[]): Promise<void> {
  for await (const event of source) into.push(event);
}

describe('pollEvents', () => {
  it('follows next from poll to poll and yields typed events of the types asked for, until aborted', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const token = await server.consumerKey('acme');
    const stop = aborter();
    const received: StreamedEvent[] = [];
    const published = [await publish(server, 'order.created', 0), await publish(server, 'invoice.paid', 1)];
    const polling = drain(pollEvents<TestEvents>({ url: server.baseUrl, token, types: ['order.*'], after: 0, wait: 5, limit: 3, signal: stop.signal }), received);
    for (let n = 2; n < 30; n++) published.push(await publish(server, n % 3 === 0 ? 'invoice.paid' : 'order.shipped', n));
    const orders = published.filter((event) => event.type.startsWith('order.'));
    await waitFor(() => received.length === orders.length, `${orders.length} events`);
    stop.abort();
    await polling;
    expect(received.map((event) => event.id)).toEqual(orders.map((event) => event.id));
  });

  it("acknowledges a durable subscription's answer only once every event of it was taken", async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const token = await server.consumerKey('acme');
    const { body } = await server.api('POST', '/v1/subscriptions', { transport: 'poll', types: ['order.*'] }, token);
    const published = [await publish(server, 'order.created', 1), await publish(server, 'order.created', 2), await publish(server, 'order.created', 3)];
    const options = { url: server.baseUrl, token, subscription: body.id as string, wait: 0, limit: 2 };
    // Stops in the middle of the first answer: nothing is acknowledged.
    for await (const event of pollEvents(options)) {
      expect(event.id).toBe(published[0]?.id);
      break;
    }
    // Takes the first answer whole, and stops in the second: the first is acknowledged by the second poll.
    const seen: string[] = [];
    for await (const event of pollEvents(options)) {
      seen.push(event.id);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(published.map((event) => event.id));
    // The cursor is stored within a second: at the end of the first answer, not past the second.
    await waitFor(async () => (await server.api('GET', `/v1/subscriptions/${body.id}`)).body.cursor === published[1]?.seq, 'the cursor to move');
    const rest: string[] = [];
    for await (const event of pollEvents(options)) {
      rest.push(event.id);
      break;
    }
    expect(rest).toEqual([published[2]?.id]);
  });

  it('throws a PollError for a refusal that trying again cannot fix, and tells of a reset', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const key = await server.consumerKey('acme');
    const { body } = await server.api('POST', '/v1/stream-tokens', { types: ['order.*'] }, key);
    const refused = await drain(pollEvents({ url: server.baseUrl, token: body.token, types: ['invoice.*'] }), []).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PollError);
    expect(refused).toMatchObject({ status: 403, problem: { type: 'urn:herald:problem:forbidden' } });

    const resets: StreamReset[] = [];
    const last = await publish(server, 'order.created', 1);
    const stop = aborter();
    const received: StreamedEvent[] = [];
    const polling = drain(pollEvents({ url: server.baseUrl, token: key, types: ['order.*'], after: 500, wait: 30, signal: stop.signal, onReset: (reset) => resets.push(reset) }), received);
    await waitFor(() => resets.length === 1, 'the reset');
    expect(resets).toEqual([{ reason: 'ahead', latest: last.seq }]);
    const fresh = await publish(server, 'order.shipped', 2);
    await waitFor(() => received.length === 1, 'the event after the reset');
    expect(received[0]?.id).toBe(fresh.id);
    stop.abort();
    await polling;
  });

  it('yields only the events its filter lets through, poll after poll, from the log and live', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const token = await server.consumerKey('acme');
    const published: StreamedEvent[] = [];
    // Of each five, three pass: n 150, n 100, and n 7 for its subject, which needs every kind of escaping in a query string.
    const publishSome = async () => {
      for (const [i, n] of [1, 150, 7, 100, 99].entries()) {
        const subject = i === 2 ? 'eu west+1&x=ü#' : i === 4 ? 'eu west 1' : undefined;
        const type = i % 2 ? 'order.shipped' : 'order.created';
        published.push((await server.herald.publish({ type, data: { n }, ...(subject ? { subject } : {}) })).event as StreamedEvent);
      }
    };
    const passes = (event: StreamedEvent) => (event.data as { n: number }).n >= 100 || event.subject === 'eu west+1&x=ü#';
    await publishSome();
    await publishSome();
    let polls = 0;
    const counting: typeof fetch = (input, init) => {
      polls++;
      return fetch(input, init);
    };
    const stop = aborter();
    const filtered: StreamedEvent[] = [];
    const everything: StreamedEvent[] = [];
    const options = { url: server.baseUrl, token, types: ['order.*'], after: 0, wait: 5, limit: 2, signal: stop.signal };
    const polling = Promise.all([
      drain(pollEvents({ ...options, filter: { $or: [{ 'data.n': { $gte: 100 } }, { subject: 'eu west+1&x=ü#' }] }, fetch: counting }), filtered),
      drain(pollEvents(options), everything),
    ]);
    await waitFor(() => everything.length === published.length, 'the events in the log');
    await publishSome();
    await waitFor(() => everything.length === published.length, 'the live events');
    await waitFor(() => filtered.length === published.filter(passes).length, 'the filtered events');
    await linger();
    stop.abort();
    await polling;
    expect(everything.map((event) => event.id)).toEqual(published.map((event) => event.id));
    expect(filtered.map((event) => event.id)).toEqual(published.filter(passes).map((event) => event.id));
    expect(filtered).toHaveLength(9);
    expect(polls).toBeGreaterThanOrEqual(5);
  });

  it('throws a PollError for a filter the server refuses, at the first poll', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const token = await server.consumerKey('acme');
    for (const [filter, type, path] of [
      [{ 'data.n': { $regex: 'x' } }, 'urn:herald:problem:validation-failed', ['filter', 'data.n', '$regex']],
      [{ 'data.nope': 1 }, 'urn:herald:problem:invalid-filter', ['filter', 'data.nope']],
    ] as const) {
      let polls = 0;
      const counting: typeof fetch = (input, init) => {
        polls++;
        return fetch(input, init);
      };
      // Were the filter not sent, the loop would poll on until this aborts it, and end without an error.
      const stop = AbortSignal.timeout(2_000);
      const refused = await drain(pollEvents({ url: server.baseUrl, token, types: ['order.*'], after: 0, wait: 0, filter, signal: stop, fetch: counting }), []).catch(
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(PollError);
      expect(refused).toMatchObject({ status: 422, problem: { type, errors: [expect.objectContaining({ path })] } });
      expect(polls).toBe(1);
    }
  });

  it('polls on with a fresh stream token from a token function once one expires; a fixed token that expires ends it with 401', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const key = await server.consumerKey('acme');
    const tokens = shortLivedTokens(server, key);
    const stop = aborter();
    const renewing: StreamedEvent[] = [];
    const fixed: StreamedEvent[] = [];
    const options = { url: server.baseUrl, types: ['order.*'], after: 0, wait: 1, signal: stop.signal };
    const polling = drain(pollEvents({ ...options, token: tokens.renew }), renewing);
    const fixedPolling = drain(pollEvents({ ...options, token: await tokens.issue() }), fixed).catch((error: unknown) => error);
    const published = [await publish(server, 'order.created', 1)];
    await waitFor(() => renewing.length === 1 && fixed.length === 1, 'the first event');
    const firstExpiry = tokens.expiresAt;
    await waitFor(() => Date.now() > firstExpiry + 1_000, 'the stream tokens to expire', 15_000);
    published.push(await publish(server, 'order.shipped', 2), await publish(server, 'order.created', 3));
    await waitFor(() => renewing.length === published.length, `${published.length} events`);
    expect(renewing.map((event) => event.id)).toEqual(published.map((event) => event.id));
    expect(tokens.renewals).toBe(2);
    // The fixed token's loop ends on the first poll after its token expired, with nothing after it.
    expect(await fixedPolling).toMatchObject({ status: 401, problem: { reason: 'token-expired' } });
    expect(fixed.map((event) => event.id)).toEqual([published[0]?.id]);
    stop.abort();
    await polling;
  }, 30_000);

  it('tries again when the key is at its connection limit (429), and goes on once a slot is free', async () => {
    const transport = poll();
    app = await startTestApp([transport], { maxConnectionsPerKey: 1 });
    const server = app;
    const token = await server.consumerKey('acme');
    const holder = aborter();
    const holding = fetch(`${server.baseUrl}/v1/poll?types=invoice.paid&wait=30`, { headers: { authorization: `Bearer ${token}` }, signal: holder.signal }).catch(() => undefined);
    await waitFor(() => transport.waiting === 1, 'the poll that holds the only slot');
    const first = await publish(server, 'order.created', 1);
    const stop = aborter();
    const received: StreamedEvent[] = [];
    let polls = 0;
    const counting: typeof fetch = (input, init) => {
      polls++;
      return fetch(input, init);
    };
    const polling = drain(pollEvents({ url: server.baseUrl, token, types: ['order.*'], after: 0, wait: 5, retryDelay: 50, signal: stop.signal, fetch: counting }), received);
    await waitFor(() => polls >= 3, 'a few refused polls');
    expect(received).toEqual([]);
    holder.abort();
    await holding;
    await waitFor(() => received.length === 1, 'the event once a slot is free');
    expect(received[0]?.id).toBe(first.id);
    stop.abort();
    await polling;
  });

  it('tries again after a proxy in front answers 408, and goes on from where it was', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const token = await server.consumerKey('acme');
    const first = await publish(server, 'order.created', 1);
    // A proxy that times out the first two polls (as nginx's 408 does), then passes them on to Herald.
    let timedOut = 0;
    const url = await startProxy(server, (_request, response) => {
      if (timedOut === 2) return false;
      timedOut++;
      response.writeHead(408, { 'content-type': 'text/html', connection: 'close' }).end('<html>408 Request Time-out</html>');
      return true;
    });
    const stop = aborter();
    const received: StreamedEvent[] = [];
    const polling = drain(pollEvents({ url, token, types: ['order.*'], after: 0, wait: 1, retryDelay: 20, signal: stop.signal }), received);
    await waitFor(() => received.length === 1, 'the event after two 408 answers');
    expect(timedOut).toBe(2);
    const second = await publish(server, 'order.shipped', 2);
    await waitFor(() => received.length === 2, 'the next event');
    expect(received.map((event) => event.id)).toEqual([first.id, second.id]);
    stop.abort();
    await polling;
  });

  it('gives up a poll that goes unanswered for requestTimeout, and polls again from the same after', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const token = await server.consumerKey('acme');
    const first = await publish(server, 'order.created', 1);
    // A proxy that takes the first poll and never answers it (a hung server, a host gone), then passes polls on.
    const held: { url?: string; closed: boolean } = { closed: false };
    const polled: string[] = [];
    const url = await startProxy(server, (request) => {
      polled.push(request.url ?? '');
      if (held.url !== undefined) return false;
      held.url = request.url;
      request.socket.once('close', () => {
        held.closed = true;
      });
      return true;
    });
    const stop = aborter();
    const received: StreamedEvent[] = [];
    const polling = drain(pollEvents({ url, token, types: ['order.*'], after: 0, wait: 1, requestTimeout: 1_500, retryDelay: 20, signal: stop.signal }), received);
    await waitFor(() => received.length === 1, 'the event after the unanswered poll');
    expect(held.closed).toBe(true);
    expect(polled[1]).toBe(held.url);
    const second = await publish(server, 'order.shipped', 2);
    await waitFor(() => received.length === 2, 'the next event');
    expect(received.map((event) => event.id)).toEqual([first.id, second.id]);
    stop.abort();
    await polling;
  });

  it('names what is wrong in the message of a PollError, and keeps the problem', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const token = await server.consumerKey('acme');
    const refused = await drain(pollEvents({ url: server.baseUrl, token, types: ['order.*'], wait: 0.0001, limit: 0 }), []).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PollError);
    expect(refused).toMatchObject({ status: 422, problem: { detail: 'The request query is not valid', errors: [{ path: ['wait'] }, { path: ['limit'] }] } });
    expect((refused as PollError).message).toMatch(/^polling answered 422: The request query is not valid: wait: .*seconds.*; limit: .+$/);
    // An issue the detail already says is not said twice.
    const unknown = await drain(pollEvents({ url: server.baseUrl, token, types: ['nope.*'] }), []).catch((error: unknown) => error);
    expect(unknown).toMatchObject({ status: 422, problem: { type: 'urn:herald:problem:unknown-event-type', errors: [{ path: ['types', 0] }] } });
    expect((unknown as PollError).message).toBe(`polling answered 422: ${(unknown as PollError).problem?.detail}`);
  });

  it('backs off while polls fail, exponentially with full jitter up to maxRetryDelay; starts over after an answer; a Retry-After wins', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const token = await server.consumerKey('acme');
    const first = await publish(server, 'order.created', 1);
    // A server that is down (503) for 20 polls, answers the next, is down for 7 more (the last with Retry-After: 1), then answers.
    const polled: number[] = [];
    const url = await startProxy(server, (_request, response) => {
      const poll = polled.push(performance.now()) - 1;
      if (poll === 20 || poll >= 28) return false;
      response.writeHead(503, { 'content-type': 'application/problem+json', ...(poll === 27 ? { 'retry-after': '1' } : {}) }).end('{}');
      return true;
    });
    const stop = aborter();
    const received: StreamedEvent[] = [];
    const polling = drain(pollEvents({ url, token, types: ['order.*'], after: 0, wait: 1, retryDelay: 5, maxRetryDelay: 500, signal: stop.signal }), received);
    await waitFor(() => received.length === 1, 'the event after 20 failed polls', 20_000);
    // 19 waits, random below 5, 10, 20, … 320 ms, then 500 ms twelve times: some 3.3 s on average, under 1 s about once in two million.
    // (Every 5 ms, 20 polls take 0.1 s; with no cap, the 20th waits up to 40 minutes.)
    expect(polled[19]! - polled[0]!).toBeGreaterThan(1_000);
    await waitFor(() => polled.length >= 29, 'the polls after the second outage', 20_000);
    // After the answer, from 5 ms again: 5 waits below 5, 10, 20, 40 and 80 ms, at most 155 ms. (Not starting over, they are
    // random below 500 ms each: under 500 ms together one time in 120.)
    expect(polled[26]! - polled[21]!).toBeLessThan(500);
    // Retry-After: 1 is longer than maxRetryDelay, and wins.
    expect(polled[28]! - polled[27]!).toBeGreaterThanOrEqual(990);
    const second = await publish(server, 'order.shipped', 2);
    await waitFor(() => received.length === 2, 'the event after the second outage');
    expect(received.map((event) => event.id)).toEqual([first.id, second.id]);
    stop.abort();
    await polling;
  }, 60_000);

  it('ends at once when aborted while its token function runs: the function is given the signal to cancel its own work with', async () => {
    app = await startTestApp([poll()]);
    const server = app;
    const key = await server.consumerKey('acme');
    // The app's backend, which takes a request for a stream token and never answers it.
    const asked: IncomingMessage[] = [];
    const givenUp: IncomingMessage[] = [];
    const backend = createServer((request) => {
      asked.push(request);
      request.socket.once('close', () => givenUp.push(request));
    });
    proxies.push(backend);
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}/stream-token`;

    // The first token, fetched with the signal it is given.
    const stop = aborter();
    const given: AbortSignal[] = [];
    let ended = false;
    const polling = drain(
      pollEvents({
        url: server.baseUrl,
        types: ['order.*'],
        signal: stop.signal,
        token: async (signal) => {
          given.push(signal);
          return (await fetch(backendUrl, { method: 'POST', signal })).text();
        },
      }),
      [],
    ).then(() => void (ended = true));
    await waitFor(() => asked.length === 1, 'the request for a token');
    stop.abort();
    await waitFor(() => ended, 'the polling to end');
    await polling;
    expect(given).toEqual([stop.signal]);
    await waitFor(() => givenUp.length === 1, 'the request for a token to be given up');

    // A fresh token after a 401, from a function that takes no signal and never settles.
    let polls = 0;
    const url = await startProxy(server, (_request, response) => {
      if (++polls > 1) return false;
      response.writeHead(401, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ reason: 'token-expired' }));
      return true;
    });
    const renewing = aborter();
    let calls = 0;
    let renewingEnded = false;
    const renewal = drain(
      pollEvents({ url, types: ['order.*'], wait: 1, signal: renewing.signal, token: () => (++calls === 1 ? key : new Promise<string>(() => {})) }),
      [],
    ).then(() => void (renewingEnded = true));
    await waitFor(() => calls === 2, 'the token function called after the 401');
    renewing.abort();
    await waitFor(() => renewingEnded, 'the polling to end');
    await renewal;
    expect(polls).toBe(1);
  });

  it('ends at once when aborted before the wait a Retry-After asks for', async () => {
    const transport = poll();
    app = await startTestApp([transport], { maxConnections: 1 });
    const server = app;
    const token = await server.consumerKey('acme');
    const holder = aborter();
    const holding = fetch(`${server.baseUrl}/v1/poll?types=invoice.paid&wait=30`, { headers: { authorization: `Bearer ${token}` }, signal: holder.signal }).catch(() => undefined);
    await waitFor(() => transport.waiting === 1, 'the poll that holds the only connection');
    const stop = aborter();
    let retryAfter: string | null = null;
    let abortedAt = 0;
    // Aborts as the server's 503 (node-at-capacity, Retry-After: 5) arrives, before the loop starts waiting.
    const aborting: typeof fetch = async (input, init) => {
      const answer = await fetch(input, init);
      retryAfter = answer.headers.get('retry-after');
      abortedAt = Date.now();
      stop.abort();
      return answer;
    };
    await drain(pollEvents({ url: server.baseUrl, token, types: ['order.*'], signal: stop.signal, fetch: aborting }), []);
    expect(retryAfter).toBe('5');
    expect(Date.now() - abortedAt).toBeLessThan(2_000);
    holder.abort();
    await holding;
  });
});
