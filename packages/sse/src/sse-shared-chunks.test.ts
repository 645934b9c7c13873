import type { HeraldEvent } from '@herald/core';
import { waitFor } from '@herald/testkit';
import type { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import { collectEvents, eventSourceWithKey, opened, type StreamApp, startStreamApp } from './stream-app.test-support.js';

let app: StreamApp | undefined;
const sources: EventSource[] = [];
afterEach(async () => {
  for (const source of sources.splice(0)) source.close();
  await app?.close();
  app = undefined;
});

describe('a burst fanned out with one chunk per distinct batch', () => {
  it('gives each stream exactly its events, in order, whatever its types, filter, naming or resume position', async () => {
    app = await startStreamApp();
    const key = await app.consumerKey('acme');
    const before = (await app.herald.publishMany([0, 1, 2].map((n) => ({ type: 'order.created', data: { n } })))).map(({ event }) => event);
    const open = async (query: string, types: readonly string[]) => {
      const source = eventSourceWithKey(`${(app as StreamApp).baseUrl}/v1/stream?${query}`, key);
      sources.push(source);
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
});
