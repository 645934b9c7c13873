import type { HeraldEvent } from '@herald/core';
import { memoryTransport, metricValue, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { pollEvents } from '../../client/src/poll-events.js';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { type PollApp, seqs, startPollApp } from './poll-app.test-support.js';
import { poll } from './poll-transport.js';

async function started(...args: Parameters<typeof startPollApp>): Promise<PollApp> {
  const app = await startPollApp(...args);
  onTestFinished(() => app.close());
  return app;
}

/** Waits until the server is answering `count` polls (they are waiting for events). */
const waitingFor = (app: PollApp, count: number) => waitFor(() => app.transport.waiting === count, `${count} waiting polls`);

describe('GET /v1/poll, ad hoc', () => {
  it('waits for the first matching event and answers as soon as it is published', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const began = Date.now();
    const answer = app.poll({ types: 'order.*', wait: '30' }, key);
    await waitingFor(app, 1);
    await app.publish('invoice.paid', 1);
    const order = await app.publish('order.created', 2);
    const { status, contentType, body } = await answer;
    expect(Date.now() - began).toBeLessThan(20_000);
    expect([status, contentType]).toEqual([200, 'application/json; charset=utf-8']);
    expect(body).toEqual({ data: [order], next: order.seq });
    expect(app.transport.waiting).toBe(0);
  });

  it('answers empty data and the same next when nothing comes within wait, and cuts a longer wait (any length) to maxWait', async () => {
    const app = await started({ maxWait: 1 });
    const order = await app.publish('order.created', 1);
    let began = Date.now();
    expect((await app.poll({ types: 'order.*', after: String(order.seq), wait: '0.3' })).body).toEqual({ data: [], next: order.seq });
    expect(Date.now() - began).toBeGreaterThanOrEqual(280);

    for (const wait of ['600', '99999999', '9999999999999999.999']) {
      began = Date.now();
      expect((await app.poll({ types: 'order.*', after: String(order.seq), wait })).body, wait).toEqual({ data: [], next: order.seq });
      const waited = Date.now() - began;
      expect(waited).toBeGreaterThanOrEqual(950);
      expect(waited).toBeLessThan(15_000);
    }
    // wait=0 answers at once, with what there is.
    expect((await app.poll({ types: 'order.*', after: '0', wait: '0' })).body).toEqual({ data: [order], next: order.seq });
  });

  it('reads the log after `after`, at most `limit`, only the types asked for and what the consumer may see', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const published = [
      await app.publish('order.created', 1),
      await app.publish('invoice.paid', 2),
      await app.publish('order.shipped', 3, 'acme'),
      await app.publish('order.created', 4, 'other'),
      await app.publish('order.line.added', 5),
      await app.publish('order.created', 6),
    ];
    const visible = published.filter((event) => event.type.split('.').length === 2 && event.type.startsWith('order.') && event.consumer !== 'other');
    const first = await app.poll({ types: 'order.*', after: '0', limit: '2', wait: '0' }, key);
    expect(seqs(first.body.data)).toEqual(seqs(visible.slice(0, 2)));
    expect(first.body.next).toBe(visible[1]?.seq);
    const rest = await app.poll({ types: 'order.*', after: String(first.body.next), limit: '2', wait: '0' }, key);
    expect(seqs(rest.body.data)).toEqual(seqs(visible.slice(2)));
    expect(rest.body.next).toBe(published.at(-1)?.seq);

    // Several patterns, comma-separated or repeated.
    const url = `${app.baseUrl}/v1/poll?types=invoice.paid&types=order.line.*&after=0&wait=0`;
    const repeated = await (await fetch(url, { headers: { authorization: `Bearer ${key}` } })).json();
    expect(seqs(repeated.data)).toEqual([published[1]?.seq, published[4]?.seq]);
    expect(seqs((await app.poll({ types: 'invoice.paid,order.line.*', after: '0', wait: '0' }, key)).body.data)).toEqual(seqs(repeated.data));
  });

  it('starts at the end of the log without `after`, then goes on from `next`', async () => {
    const app = await started();
    await app.publish('order.created', 1);
    const answer = app.poll({ types: 'order.*', wait: '30' });
    await waitingFor(app, 1);
    const fresh = await app.publish('order.created', 2);
    expect((await answer).body).toEqual({ data: [fresh], next: fresh.seq });
  });

  it('answers a reset when `after` is past the end of the log, and goes on from `latest`', async () => {
    const app = await started();
    const last = await app.publish('order.created', 1);
    // At once: a reset does not wait for the next event.
    const began = Date.now();
    const reset = await app.poll({ types: 'order.*', after: '1000', wait: '30' });
    expect(Date.now() - began).toBeLessThan(15_000);
    expect(reset.body).toEqual({ data: [], next: last.seq, reset: { reason: 'ahead', latest: last.seq } });
    const answer = app.poll({ types: 'order.*', after: String(reset.body.next), wait: '30' });
    await waitingFor(app, 1);
    const fresh = await app.publish('order.shipped', 2);
    expect((await answer).body).toEqual({ data: [fresh], next: fresh.seq });
  });
});

describe('GET /v1/poll, a resume point the log no longer holds', () => {
  it('answers what the log still holds after `after`, with reset { reason: expired, latest: after, oldest }, as /openapi.json describes it', async () => {
    const app = await started({}, { env: { HERALD_LOG_MAX_EVENTS: '3' } });
    const published: HeraldEvent[] = [];
    for (let n = 0; n < 8; n++) published.push(await app.publish('order.created', n));
    await waitFor(async () => (await app.api('GET', '/v1/events?after=0')).body.oldest === published[5]?.seq, 'the log to keep its newest 3 events', 20_000);

    const answer = await app.poll({ types: 'order.*', after: '0', wait: '0' });
    const oldest = published[5]?.seq;
    expect(answer.body).toEqual({ data: published.slice(5), next: published[7]?.seq, reset: { reason: 'expired', latest: 0, oldest } });

    const document = await (await fetch(`${app.baseUrl}/openapi.json`)).json();
    const schema = document.paths['/v1/poll'].get.responses['200'].content['application/json'].schema;
    expect(z.fromJSONSchema(schema).safeParse(answer.body).error).toBeUndefined();
    // The schema names every field the answer has (it does not refuse the ones it does not name).
    expect(Object.keys(schema.properties.reset.properties)).toEqual(Object.keys(answer.body.reset));
    expect(schema.properties.reset.properties.oldest.description).toMatch(/pruned/);
  });
});

describe('GET /v1/poll, durable', () => {
  it('answers a poll waiting on a subscription at once when it is deleted; the next poll gets 404', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'poll', types: ['order.*'] }, key);
    const began = Date.now();
    const waiting = app.poll({ subscription: created.body.id, wait: '30' }, key);
    await waitingFor(app, 1);
    expect((await app.api('DELETE', `/v1/subscriptions/${created.body.id}`, undefined, key)).status).toBe(204);
    const answer = await waiting;
    expect(Date.now() - began).toBeLessThan(20_000);
    expect(answer.status).toBe(200);
    expect(answer.body.data).toEqual([]);
    expect((await app.poll({ subscription: created.body.id, wait: '0' }, key)).status).toBe(404);
  });

  it("moves the cursor only when the consumer polls again with after=next, and keeps it across a restart", async () => {
    const database = tempDatabase();
    let app = await started({}, { database });
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'poll', types: ['order.*'] }, key);
    expect(created.status).toBe(201);
    const subscription: string = created.body.id;
    const published = [await app.publish('order.created', 1), await app.publish('invoice.paid', 2), await app.publish('order.shipped', 3)];

    const first = await app.poll({ subscription, wait: '0' }, key);
    expect(first.body).toEqual({ data: [published[0], published[2]], next: published[2]?.seq });
    // Not acknowledged: the same answer again, from the stored cursor.
    expect((await app.poll({ subscription, wait: '0' }, key)).body).toEqual(first.body);

    const later = await app.publish('order.created', 4);
    const second = await app.poll({ subscription, after: String(first.body.next), wait: '0' }, key);
    expect(second.body).toEqual({ data: [later], next: later.seq });

    // Restarted on the same file: the cursor is where the last poll acknowledged, not past `later`.
    await app.close();
    app = await started({}, { database });
    const again = await app.poll({ subscription, wait: '0' }, key);
    expect(again.body).toEqual(second.body);
    await app.poll({ subscription, after: String(again.body.next), wait: '0' }, key);
    await app.close();
    app = await started({}, { database });
    const waiting = app.poll({ subscription, wait: '30' }, key);
    await waitingFor(app, 1);
    const fresh = await app.publish('order.shipped', 5);
    expect((await waiting).body).toEqual({ data: [fresh], next: fresh.seq });
  });

  it("refuses another consumer's subscription and another transport's as not found", async () => {
    const app = await started({}, {}, [memoryTransport()]);
    const [alpha, beta] = [await app.consumerKey('alpha'), await app.consumerKey('beta')];
    const own = await app.api('POST', '/v1/subscriptions', { transport: 'poll', types: ['order.*'] }, alpha);
    const other = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'] }, beta);
    for (const [subscription, key] of [[own.body.id, beta], [other.body.id, beta], ['sub_01aaaaaaaaaaaaaaaaaaaaaaaa', beta]]) {
      const { status, contentType, body } = await app.poll({ subscription, wait: '0' }, key);
      expect([status, contentType, body.type]).toEqual([404, 'application/problem+json; charset=utf-8', 'urn:herald:problem:not-found']);
    }
    expect((await app.poll({ subscription: own.body.id, wait: '0' }, alpha)).status).toBe(200);
  });
});

describe('GET /v1/poll, credentials', () => {
  it("keeps a stream token within its types and its consumer's events", async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const token = await app.streamToken(key, { types: ['order.*'] });
    for (const types of ['invoice.*', '**', 'order.**', 'order.*,invoice.paid']) {
      const refused = await app.poll({ types, wait: '0' }, token);
      expect([refused.status, refused.body.type], types).toEqual([403, 'urn:herald:problem:forbidden']);
    }
    const wide = await app.api('POST', '/v1/subscriptions', { transport: 'poll', types: ['**'] }, key);
    expect((await app.poll({ subscription: wide.body.id, wait: '0' }, token)).status).toBe(403);

    const published = [await app.publish('order.created', 1), await app.publish('invoice.paid', 2), await app.publish('order.shipped', 3, 'other')];
    const answer = await app.poll({ types: 'order.*', after: '0', wait: '0' }, token);
    expect(answer.body).toEqual({ data: [published[0]], next: published[2]?.seq });
    // In the query too, for clients that cannot set headers.
    const inQuery = await fetch(`${app.baseUrl}/v1/poll?types=order.*&after=0&wait=0&access_token=${token}`);
    expect(await inQuery.json()).toEqual(answer.body);

    const broadcast = await app.streamToken(app.adminKey);
    const acme = await app.publish('order.created', 4, 'acme');
    const everyone = await app.poll({ types: 'order.*', after: '0', wait: '0' }, broadcast);
    expect(everyone.body).toEqual({ data: [published[0]], next: acme.seq });
  });

  it('takes the Authorization header over access_token when both are sent', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const token = await app.streamToken(key);
    const bogus = `hs_${'0'.repeat(20)}_${'1'.repeat(64)}`;
    const poll = (query: string, authorization: string) => fetch(`${app.baseUrl}/v1/poll?types=order.*&wait=0&${query}`, { headers: { authorization } });
    expect((await poll(`access_token=${bogus}`, `Bearer ${key}`)).status).toBe(200);
    expect((await poll(`access_token=${token}`, `Bearer ${bogus}`)).status).toBe(401);
    expect((await poll(`access_token=${token}`, 'Basic abc')).status).toBe(401);
  });

  it('answers a waiting poll at once when its key is revoked, and refuses the next one', async () => {
    const app = await started();
    const made = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme' });
    const key: string = made.body.key;
    const token = await app.streamToken(key);
    const began = Date.now();
    const waiting = [app.poll({ types: 'order.*', wait: '30' }, key), app.poll({ types: 'order.*', wait: '30' }, token)];
    await waitingFor(app, 2);
    expect((await app.api('DELETE', `/v1/keys/${made.body.id}`)).status).toBe(204);
    for (const answer of await Promise.all(waiting)) expect(answer).toMatchObject({ status: 200, body: { data: [] } });
    expect(Date.now() - began).toBeLessThan(15_000);
    for (const credential of [key, token]) expect((await app.poll({ types: 'order.*', wait: '0' }, credential)).status).toBe(401);
  });

  it("counts a waiting poll against the key's connections, and frees the slot when the client gives up", async () => {
    const app = await started({}, { maxConnectionsPerKey: 2 });
    const key = await app.consumerKey('acme');
    const giveUp = new AbortController();
    const first = app.poll({ types: 'order.*', wait: '30' }, key, giveUp.signal).catch((error: unknown) => error);
    const second = app.poll({ types: 'order.*', wait: '30' }, key);
    await waitingFor(app, 2);
    const refused = await app.poll({ types: 'order.*', wait: '0' }, key);
    expect([refused.status, refused.body.type]).toEqual([429, 'urn:herald:problem:too-many-connections']);
    expect((await app.poll({ types: 'order.*', wait: '0' }, await app.consumerKey('other'))).status).toBe(200);

    giveUp.abort();
    expect(await first).toBeInstanceOf(Error);
    await waitingFor(app, 1);
    const third = app.poll({ types: 'order.*', wait: '30' }, key);
    await waitingFor(app, 2);
    const event = await app.publish('order.created', 1);
    for (const answer of await Promise.all([second, third])) expect(answer.body).toEqual({ data: [event], next: event.seq });
  });
});

describe('GET /v1/poll, batchWait', () => {
  it('answers a poll woken by an event with what arrives within batchWait after it; 0 answers at once', async () => {
    for (const [batchWait, together] of [[1_000, true], [0, false]] as const) {
      const app = await started({ batchWait });
      const key = await app.consumerKey('acme');
      const answer = app.poll({ types: 'order.*', wait: '30' }, key);
      await waitingFor(app, 1);
      const first = await app.publish('order.created', 1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const second = await app.publish('order.created', 2);
      expect(seqs((await answer).body.data), `batchWait ${batchWait}`).toEqual(together ? [first.seq, second.seq] : [first.seq]);
    }
    expect(() => poll({ batchWait: -1 })).toThrow('poll: batchWait must be a non-negative number, not -1');
  });
});

describe('GET /v1/poll, metrics', () => {
  const connectedClients = (app: PollApp) => metricValue(app, 'herald_connected_clients{transport="poll"}');

  it('counts waiting polls in herald_connected_clients, until they are answered or given up', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    expect(await connectedClients(app)).toBe(0);
    const giveUp = new AbortController();
    const givenUp = app.poll({ types: 'order.*', wait: '30' }, key, giveUp.signal).catch((error: unknown) => error);
    const answered = app.poll({ types: 'order.*', wait: '30' }, key);
    await waitingFor(app, 2);
    expect(await connectedClients(app)).toBe(2);

    giveUp.abort();
    expect(await givenUp).toBeInstanceOf(Error);
    await waitFor(async () => (await connectedClients(app)) === 1, 'the poll given up to leave the count');
    const event = await app.publish('order.created', 1);
    expect((await answered).body).toEqual({ data: [event], next: event.seq });
    await waitFor(async () => (await connectedClients(app)) === 0, 'the answered poll to leave the count');
  });
});

describe('GET /v1/poll, rate limits', () => {
  /** `RateLimit: "key";r=R;t=T` → R, the requests the key has left. */
  const remaining = (headers: Headers) => Number(/;r=(\d+);/.exec(headers.get('ratelimit') ?? '')?.[1]);

  it('spends no request on a poll a live event answered: pollEvents keeps up with 200 events, one poll each, on a key of 20 requests a minute', async () => {
    const app = await started({}, { rateLimit: { requests: 20, window: 60 } });
    const key = await app.consumerKey('acme');
    const statuses: number[] = [];
    const stop = new AbortController();
    // A refusal ends the polling at once: pollEvents would wait out its Retry-After and try again.
    const counted: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      statuses.push(response.status);
      if (response.status !== 200) stop.abort();
      return response;
    };
    const received: number[] = [];
    const polling = (async () => {
      for await (const event of pollEvents({ url: app.baseUrl, token: key, types: ['order.*'], wait: 5, signal: stop.signal, fetch: counted })) {
        received.push(event.seq);
      }
    })();
    // A live stream the poller keeps up with: each event is published while its poll waits.
    const published: number[] = [];
    for (let n = 0; n < 200 && !stop.signal.aborted; n++) {
      await waitFor(() => app.transport.waiting === 1 || stop.signal.aborted, 'the poll to wait');
      published.push((await app.publish('order.created', n)).seq);
      await waitFor(() => received.length === published.length || stop.signal.aborted, 'the poller to have the event');
    }
    stop.abort();
    await polling;
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(received).toEqual(published);
    expect(statuses.length).toBeGreaterThanOrEqual(200);
    expect(remaining((await app.pollWith({ types: 'order.*', wait: '0' }, key)).headers)).toBe(19);
  }, 90_000);

  it('spends one on each poll answered at once with what the log holds: reading the log in a loop is bounded as GET /v1/events is', async () => {
    const app = await started({}, { rateLimit: { requests: 3, window: 60 } });
    const key = await app.consumerKey('acme');
    await app.publish('order.created', 1);
    const history = { types: 'order.*', after: '0', wait: '5' };
    for (let n = 1; n <= 3; n++) {
      const { status, headers, body } = await app.pollWith(history, key);
      expect([status, body.data.length, remaining(headers)]).toEqual([200, 1, 3 - n]);
    }
    expect((await app.pollWith(history, key)).status).toBe(429);
  });

  it('spends no request on a poll that waited a second or more for nothing', async () => {
    const app = await started({}, { rateLimit: { requests: 2, window: 60 } });
    const key = await app.consumerKey('acme');
    for (let n = 0; n < 3; n++) {
      const { status, headers, body } = await app.pollWith({ types: 'order.*', after: '0', wait: '1.1' }, key);
      expect([status, body.data, remaining(headers)]).toEqual([200, [], 2]);
    }
  });

  it('spends one on each poll that brings nothing without waiting, or is refused: a wait=0 loop is refused past the quota', async () => {
    const app = await started({}, { rateLimit: { requests: 5, window: 60 } });
    const key = await app.consumerKey('acme');
    const event = await app.publish('order.created', 1);
    const empty = { types: 'order.*', after: String(event.seq), wait: '0' };
    for (let n = 1; n <= 4; n++) {
      const { status, headers, body } = await app.pollWith(empty, key);
      expect([status, body.data, remaining(headers)]).toEqual([200, [], 5 - n]);
    }
    const refused = await app.pollWith({ ...empty, wait: 'forever' }, key);
    expect([refused.status, remaining(refused.headers)]).toEqual([422, 0]);
    const limited = await app.pollWith(empty, key);
    expect([limited.status, limited.body.type]).toEqual([429, 'urn:herald:problem:rate-limited']);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Over its quota, the key is refused whatever the poll would bring, until the window ends, as on every route.
    expect((await app.pollWith({ types: 'order.*', after: '0', wait: '0' }, key)).status).toBe(429);
    // Another key has its own quota.
    expect((await app.pollWith(empty, await app.consumerKey('other'))).status).toBe(200);
  });
});

describe('GET /v1/poll, HTTP', () => {
  it('answers with Cache-Control: no-store and no ETag, so that no If-None-Match turns an answer into a 304', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const event = await app.publish('order.created', 1);
    const query = { types: 'order.*', after: '0', wait: '0' };
    const first = await app.pollWith(query, key);
    expect([first.status, first.headers.get('cache-control'), first.headers.get('etag')]).toEqual([200, 'no-store', null]);
    for (const tag of ['*', 'W/"d7-0000000000000000000000000000"']) {
      const again = await app.pollWith(query, key, { headers: { 'if-none-match': tag } });
      expect([again.status, again.body], tag).toEqual([200, { data: [event], next: event.seq }]);
    }
  });

  it('answers HEAD as GET would, without its side effects: at once, with no body, and the cursor left where it was', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'poll', types: ['order.*'] }, key);
    const subscription: string = created.body.id;
    const published = [await app.publish('order.created', 1), await app.publish('order.created', 2), await app.publish('order.created', 3)];
    const began = Date.now();
    const queries: Record<string, string>[] = [{ subscription, after: String(published[1]?.seq), wait: '30' }, { types: 'order.*', wait: '30' }];
    for (const query of queries) {
      const head = await app.pollWith(query, key, { method: 'HEAD' });
      expect([head.status, head.contentType, head.body]).toEqual([200, 'application/json; charset=utf-8', undefined]);
    }
    expect(Date.now() - began).toBeLessThan(15_000);
    expect(app.transport.waiting).toBe(0);
    // The HEAD with after acknowledged nothing: the subscription starts from its cursor still.
    expect((await app.poll({ subscription, wait: '0' }, key)).body).toEqual({ data: published, next: published[2]?.seq });
    expect((await app.pollWith({ subscription: 'sub_01aaaaaaaaaaaaaaaaaaaaaaaa', wait: '0' }, key, { method: 'HEAD' })).status).toBe(404);
  });

  it('answers another method with 405 and Allow: GET, HEAD, OPTIONS', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const { status, headers, body } = await app.pollWith({ types: 'order.*', wait: '0' }, key, { method });
      expect([status, headers.get('allow'), body.type], method).toEqual([405, 'GET, HEAD, OPTIONS', 'urn:herald:problem:method-not-allowed']);
    }
  });
});

describe('GET /v1/poll, bad parameters', () => {
  it.each([
    ['neither types nor subscription', {}],
    ['both types and subscription', { types: 'order.*', subscription: 'sub_1' }],
    ['a malformed pattern', { types: 'order..created' }],
    ['an empty types', { types: '' }],
    ['a negative after', { types: 'order.*', after: '-1' }],
    ['an after that is no number', { types: 'order.*', after: 'latest' }],
    ['an after beyond safe integers', { types: 'order.*', after: '9999999999999999' }],
    ['a negative wait', { types: 'order.*', wait: '-1' }],
    ['a wait that is no number', { types: 'order.*', wait: 'forever' }],
    ['a limit of 0', { types: 'order.*', limit: '0' }],
    ['a limit over 1000', { types: 'order.*', limit: '1001' }],
  ])('answers 422 validation-failed for %s', async (_, query) => {
    const app = await started();
    const { status, contentType, body } = await app.poll(query as Record<string, string>);
    expect([status, contentType, body.type]).toEqual([422, 'application/problem+json; charset=utf-8', 'urn:herald:problem:validation-failed']);
    expect(body.errors.length).toBeGreaterThan(0);
  });

  it('says the range of after and the bound of wait when they are out of them', async () => {
    const app = await started();
    const range = `a seq: an integer from 0 to ${Number.MAX_SAFE_INTEGER}`;
    for (const after of ['99999999999999999', '9007199254740992', '-1']) {
      const { status, body } = await app.poll({ types: 'order.*', after, wait: '0' });
      expect([status, body.errors], after).toEqual([422, [expect.objectContaining({ path: ['after'], message: range })]]);
    }
    expect((await app.poll({ types: 'order.*', after: String(Number.MAX_SAFE_INTEGER), wait: '0' })).status).toBe(200);
    for (const wait of ['1'.repeat(17), '1.2345', '-1', '1e3']) {
      const { status, body } = await app.poll({ types: 'order.*', wait }, app.adminKey);
      expect([status, body.errors], wait).toEqual([422, [expect.objectContaining({ path: ['wait'], message: expect.stringContaining('at most 16 digits before the point and 3 after it') })]]);
    }
  });

  it('refuses lastEventId and a Last-Event-ID header, which resume a stream: a poll resumes with after', async () => {
    const app = await started();
    await app.publish('order.created', 1);
    const inQuery = await app.poll({ types: '**', lastEventId: '0', wait: '0' });
    expect([inQuery.status, inQuery.body.type]).toEqual([422, 'urn:herald:problem:validation-failed']);
    expect(inQuery.body.errors).toEqual([{ code: 'custom', path: ['lastEventId'], message: expect.stringMatching(/resume with after=/) }]);

    const url = `${app.baseUrl}/v1/poll?types=**&wait=0`;
    const inHeader = await fetch(url, { headers: { authorization: `Bearer ${app.adminKey}`, 'last-event-id': '0' } });
    const problem = await inHeader.json();
    expect([inHeader.status, problem.type, problem.detail]).toEqual([422, 'urn:herald:problem:validation-failed', expect.stringMatching(/after/)]);
    expect(problem.errors).toEqual([{ path: ['Last-Event-ID'], message: expect.stringMatching(/resume with after=/) }]);
  });

  it.each(['types[]', 'types[0]', 'types[a]'])('says how to give types when it comes as %s', async (name) => {
    const app = await started();
    const queries: Record<string, string>[] = [{ [name]: 'order.*' }, { types: 'order.created', [name]: 'order.*' }];
    for (const query of queries) {
      const { status, body } = await app.poll({ ...query, wait: '0' });
      expect([status, body.type]).toEqual([422, 'urn:herald:problem:validation-failed']);
      expect(body.errors).toEqual([{ code: 'custom', path: [name], message: expect.stringContaining('comma-separated (types=a,b) or repeated (types=a&types=b)') }]);
    }
  });

  it('ignores parameters it does not know, such as a cache buster', async () => {
    const app = await started();
    const event = await app.publish('order.created', 1);
    const { status, body } = await app.poll({ types: 'order.*', after: '0', wait: '0', _: '1700000000000', since: 'x' });
    expect([status, body]).toEqual([200, { data: [event], next: event.seq }]);
  });

  it('answers only what a payload filter lets through, moves next past the rest, and refuses a filter that does not fit', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const published = [];
    for (const n of [5, 150, 20, 300, 7]) published.push(await app.publish('order.created', n));
    const filter = JSON.stringify({ 'data.n': { $gte: 100 } });
    const { status, body } = await app.poll({ types: 'order.*', after: '0', wait: '0', filter }, key);
    expect(status).toBe(200);
    expect(body.data.map((event: { data: { n: number } }) => event.data.n)).toEqual([150, 300]);
    expect(body.next).toBe(published.at(-1)?.seq);
    const unknownPath = await app.poll({ types: 'order.*', wait: '0', filter: JSON.stringify({ 'data.m': 1 }) }, key);
    expect([unknownPath.status, unknownPath.body.type]).toEqual([422, 'urn:herald:problem:invalid-filter']);
    const notJson = await app.poll({ types: 'order.*', wait: '0', filter: '{total' }, key);
    expect([notJson.status, notJson.body.type]).toEqual([422, 'urn:herald:problem:validation-failed']);
  });

  it('answers 422 unknown-event-type for a pattern that matches no event type', async () => {
    const app = await started();
    const { status, body } = await app.poll({ types: 'order.*,ordr.created', wait: '0' });
    expect([status, body.type]).toEqual([422, 'urn:herald:problem:unknown-event-type']);
    expect(body.errors).toEqual([{ path: ['types', 1], message: 'ordr.created matches no event type in the catalog' }]);
  });

  it('answers 401 without a credential', async () => {
    const app = await started();
    const response = await fetch(`${app.baseUrl}/v1/poll?types=order.*&wait=0`);
    expect(response.status).toBe(401);
  });
});

describe('stopping', () => {
  it('answers every waiting poll with what it has, then refuses new ones', async () => {
    const app = await started();
    const key = await app.consumerKey('acme');
    const published = await app.publish('order.created', 1);
    const waiting = [1, 2, 3].map(() => app.poll({ types: 'order.*', after: String(published.seq), wait: '30' }, key));
    await waitingFor(app, 3);
    const began = Date.now();
    await app.close();
    expect(Date.now() - began).toBeLessThan(10_000);
    for (const answer of await Promise.all(waiting)) expect(answer).toEqual({ status: 200, contentType: 'application/json; charset=utf-8', body: { data: [], next: published.seq } });
    await expect(app.poll({ types: 'order.*', wait: '0' }, key)).rejects.toThrow();
  });
});

describe('API documents', () => {
  it('describes GET /v1/poll in /openapi.json: its parameters, credentials and answer', async () => {
    const app = await started();
    const document = await (await fetch(`${app.baseUrl}/openapi.json`)).json();
    const operation = document.paths['/v1/poll'].get;
    expect(operation.parameters.map((parameter: { name: string }) => parameter.name)).toEqual(['types', 'subscription', 'after', 'wait', 'limit', 'filter']);
    expect(operation.security).toEqual([{ bearer: [] }, { accessToken: [] }]);
    const answer = operation.responses['200'].content['application/json'].schema;
    expect(Object.keys(answer.properties)).toEqual(['data', 'next', 'reset']);
    expect(answer.required).toEqual(['data', 'next']);
  });
});
