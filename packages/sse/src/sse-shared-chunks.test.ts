import type { HeraldEvent } from '@herald/core';
import { waitFor } from '@herald/testkit';
import { describe, expect, it } from 'vitest';
import { closedAfterEach, collectEvents, eventSourceWithKey, opened } from './stream-app.test-support.js';

const { start, track } = closedAfterEach();

describe('a burst fanned out with one chunk per distinct batch', () => {
  it('gives each stream exactly its events, in order, whatever its types, filter, naming or resume position', async () => {
    const app = await start();
    const key = await app.consumerKey('acme');
    const before = (await app.herald.publishMany([0, 1, 2].map((n) => ({ type: 'order.created', data: { n } })))).map(({ event }) => event);
    const open = async (query: string, types: readonly string[]) => {
      const source = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?${query}`, key));
      const events = collectEvents(source, types);
      await opened(source);
      return events;
    };
    const filter = encodeURIComponent(JSON.stringify({ 'data.n': { $gte: 10 } }));
    // Several of each kind, so that the same batch goes to several streams.
    const all = await Promise.all([1, 2, 3].map(() => open('types=order.*', ['order.created', 'order.shipped'])));
    const plain = await Promise.all([1, 2].map(() => open('types=order.*&named=false', [])));
    const filtered = await Promise.all([1, 2].map(() => open(`types=order.*&filter=${filter}`, ['order.created', 'order.shipped'])));
    const shipped = await open('types=order.shipped', ['order.shipped']);
    const resumed = await open(`types=order.*&lastEventId=${before[0]?.seq}`, ['order.created', 'order.shipped']);
    await waitFor(() => resumed.length === 2, 'the replay');

    const inputs = Array.from({ length: 40 }, (_, n) => ({ type: n % 3 === 0 ? 'order.shipped' : 'order.created', data: { n } }));
    const published = (await app.herald.publishMany(inputs as never)).map(({ event }) => event);
    const matching = (test: (event: HeraldEvent) => boolean) => published.filter(test);
    const expectEvents = async (received: HeraldEvent[], expected: HeraldEvent[]) => {
      await waitFor(() => received.length >= expected.length, `${expected.length} events`);
      expect(received).toEqual(expected);
    };
    for (const events of [...all, ...plain]) await expectEvents(events, published);
    for (const events of filtered) await expectEvents(events, matching((event) => (event.data as { n: number }).n >= 10));
    await expectEvents(shipped, matching((event) => event.type === 'order.shipped'));
    await expectEvents(resumed, [...before.slice(1), ...published]);
  });

  it('gives streams of different consumers, an admin and a durable subscription exactly what each may see; the durable cursor follows the writes', async () => {
    const app = await start({ cursorInterval: 50 });
    const acme = await app.consumerKey('acme');
    const globex = await app.consumerKey('globex');
    const durable = (await app.api('POST', '/v1/subscriptions', { transport: 'sse', types: ['order.*'] }, acme)).body.id as string;
    const open = async (query: string, key: string) => {
      const source = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?${query}`, key));
      const events = collectEvents(source, ['order.created', 'order.shipped']);
      await opened(source);
      return events;
    };
    const twice = (query: string, key: string) => Promise.all([open(query, key), open(query, key)]);
    const visibleTo = (consumer: string | undefined) => (event: HeraldEvent) => consumer === undefined || event.consumer === undefined || event.consumer === consumer;
    const expected: [HeraldEvent[][], (event: HeraldEvent) => boolean][] = [
      [await twice('types=order.*', acme), visibleTo('acme')],
      [await twice('types=order.*', globex), visibleTo('globex')],
      [await twice('types=order.*', app.adminKey), visibleTo(undefined)],
      [await twice(`subscription=${durable}`, acme), visibleTo('acme')],
    ];

    const consumers = [undefined, 'acme', 'globex'];
    const inputs = Array.from({ length: 30 }, (_, n) => ({
      type: n % 2 === 0 ? 'order.created' : 'order.shipped',
      data: { n },
      ...(consumers[n % 3] !== undefined ? { consumer: consumers[n % 3] } : {}),
    }));
    const published = (await app.herald.publishMany(inputs as never)).map(({ event }) => event);
    for (const [streams, takes] of expected) {
      const mine = published.filter(takes);
      for (const events of streams) {
        await waitFor(() => events.length >= mine.length, `${mine.length} events`);
        expect(events).toEqual(mine);
      }
    }
    const cursor = async () => (await app.api('GET', `/v1/subscriptions/${durable}`, undefined, acme)).body.cursor as number;
    await waitFor(async () => (await cursor()) === published.at(-1)?.seq, 'the durable cursor past the burst');
  });
});
