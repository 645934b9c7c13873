import type { HeraldEvent } from '@herald/core';
import { waitFor } from '@herald/testkit';
import { describe, expect, it } from 'vitest';
import { closedAfterEach, ProtocolClient } from './testing/protocol-client.js';

const opened = closedAfterEach();

const n = (event: HeraldEvent) => (event.data as { n: number }).n;
/** What a consumer sees: the events addressed to everyone and to it; an admin (undefined) sees every one. */
const visibleTo = (consumer: string | undefined) => (event: HeraldEvent) => consumer === undefined || event.consumer === undefined || event.consumer === consumer;

describe('live batches matched once per group of subscriptions that take the same events', () => {
  it('gives each connection exactly its events, whoever it is for, whatever its types, filter, durable subscription or scope', async () => {
    const ws = await opened.start({ cursorFlushInterval: 50 });
    const acme = await ws.app.consumerKey('acme');
    const globex = await ws.app.consumerKey('globex');
    const createdOnly = await ws.app.streamToken(acme, { types: ['order.created'] });
    const ordersOnly = await ws.app.streamToken(acme, { types: ['order.*'] });
    const durable = await ws.durable('acme', ['order.*']);
    const connect = async (token: string, subscribe: Record<string, unknown>) => {
      const client = await opened.connect(ws.url, { token });
      await client.subscribe({ id: 's', ...subscribe });
      return client;
    };
    const twice = (token: string, subscribe: Record<string, unknown>) => Promise.all([connect(token, subscribe), connect(token, subscribe)]);
    // Two of each, so that each group has several connections; groups that differ in one thing only.
    const expected = new Map<ProtocolClient, (event: HeraldEvent) => boolean>();
    const expect2 = (connections: ProtocolClient[], takes: (event: HeraldEvent) => boolean) => {
      for (const connection of connections) expected.set(connection, takes);
    };
    const orders = (event: HeraldEvent) => event.type.startsWith('order.');
    expect2(await twice(acme, { types: ['order.*'] }), (event) => orders(event) && visibleTo('acme')(event));
    expect2(await twice(globex, { types: ['order.*'] }), (event) => orders(event) && visibleTo('globex')(event));
    expect2(await twice(ws.app.adminKey, { types: ['order.*'] }), orders);
    const exact = (event: HeraldEvent) => (event.type === 'order.created' || event.type === 'order.shipped') && visibleTo('acme')(event);
    expect2([await connect(acme, { types: ['order.created', 'order.shipped'] }), await connect(acme, { types: ['order.shipped', 'order.created'] })], exact);
    expect2(await twice(acme, { types: ['order.*'], filter: { 'data.n': { $gte: 30 } } }), (event) => orders(event) && visibleTo('acme')(event) && n(event) >= 30);
    expect2(await twice(acme, { types: ['order.*'], filter: { 'data.n': { $lt: 30 } } }), (event) => orders(event) && visibleTo('acme')(event) && n(event) < 30);
    const attached = await twice(acme, { subscription: durable.id });
    expect2(attached, (event) => orders(event) && visibleTo('acme')(event));
    // A token's scope limits a durable subscription too: one that covers its types, another group.
    expect2([await connect(ordersOnly, { subscription: durable.id })], (event) => orders(event) && visibleTo('acme')(event));
    expect2([await connect(createdOnly, { types: ['order.created'] })], (event) => event.type === 'order.created' && visibleTo('acme')(event));

    const types = ['order.created', 'order.shipped', 'invoice.paid'];
    const consumers = [undefined, 'acme', 'globex'];
    const input = (i: number) => ({ type: types[i % 3] as string, data: { n: i }, ...(consumers[i % 4] !== undefined ? { consumer: consumers[i % 4] } : {}) });
    // A burst (one batch, or a few), then events one by one (a batch each).
    const published = (await ws.app.herald.publishMany(Array.from({ length: 60 }, (_, i) => input(i)) as never)).map(({ event }) => event);
    for (let i = 60; i < 66; i++) published.push((await ws.app.herald.publish(input(i) as never)).event);

    for (const [client, takes] of expected) {
      const mine = published.filter(takes);
      expect(mine.length).toBeGreaterThan(0);
      await waitFor(() => client.events('s').length >= mine.length, `${mine.length} events`);
      expect(client.events('s')).toEqual(mine);
    }
    // Each attached connection acknowledges on its own: the durable cursor moves with the acks.
    const [first] = attached as [ProtocolClient, ProtocolClient];
    const cursor = async () => (await ws.app.api('GET', `/v1/subscriptions/${durable.id}`, undefined, acme)).body.cursor as number;
    const firstSeq = (first.events('s')[0] as HeraldEvent).seq;
    first.send({ type: 'ack', id: 's', seq: firstSeq });
    await waitFor(async () => (await cursor()) === firstSeq, 'the cursor at the first ack');
    for (const client of expected.keys()) expect(client.closedWith).toBeUndefined();
  });

  it('judges a durable subscription as it is at each batch: paused, its connections get nothing, the ad hoc ones of the same types everything', async () => {
    const ws = await opened.start({ cursorFlushInterval: 50 });
    const acme = await ws.app.consumerKey('acme');
    const durable = await ws.durable('acme', ['order.*']);
    const attached = await Promise.all([1, 2].map(() => ProtocolClient.connect(ws.url, { token: acme })));
    const adhoc = await Promise.all([1, 2].map(() => ProtocolClient.connect(ws.url, { token: acme })));
    for (const client of [...attached, ...adhoc]) opened.track(client);
    for (const client of attached) await client.subscribe({ id: 's', subscription: durable.id });
    for (const client of adhoc) await client.subscribe({ id: 's', types: ['order.*'] });
    const burst = (from: number) =>
      ws.app.herald.publishMany(Array.from({ length: 20 }, (_, i) => ({ type: 'order.created', data: { n: from + i } })) as never).then((results) => results.map(({ event }) => event));

    const before = await burst(0);
    expect((await ws.app.api('PATCH', `/v1/subscriptions/${durable.id}`, { status: 'paused' }, acme)).status).toBe(200);
    const paused = await burst(20);
    expect((await ws.app.api('PATCH', `/v1/subscriptions/${durable.id}`, { status: 'active' }, acme)).status).toBe(200);
    const after = await burst(40);

    for (const client of adhoc) {
      await waitFor(() => client.events('s').length >= 60, 'every event on the ad hoc subscriptions');
      expect(client.events('s')).toEqual([...before, ...paused, ...after]);
    }
    for (const client of attached) {
      await waitFor(() => client.events('s').length >= 40, 'the events before and after the pause');
      expect(client.events('s')).toEqual([...before, ...after]);
    }
  });
});
