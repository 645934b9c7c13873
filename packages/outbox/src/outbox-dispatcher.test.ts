import { type Subscription, sqliteStore } from '@herald/core';
import { createTransportContext, newEvent } from '../../testkit/src/index.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { OutboxDispatcher } from './outbox-dispatcher.js';
import type { PushConfig } from './push-transport.js';
import { sqlOutbox } from './sql-outbox.js';

/** An event of `type`, addressed to `consumer` when one is given. */
const event = (type: string, consumer?: string) => newEvent(type, consumer !== undefined ? { consumer } : {});

describe('OutboxDispatcher', () => {
  it('matches every event of a fan-out by its type and consumer, whatever the others in it', async () => {
    const store = sqliteStore({ path: ':memory:' });
    const { subscriptions: registry, close } = await createTransportContext({ store });
    onTestFinished(close);
    const subscription = (consumer: string, types: string[], status: 'active' | 'paused' = 'active') =>
      registry.create({ consumer, transport: 'webhook', types, status, config: {}, cursor: 0 });
    const alpha = await subscription('alpha', ['order.*']);
    const beta = await subscription('beta', ['order.created']);
    const unverified = await subscription('gamma', ['order.*']);
    await subscription('delta', ['order.*'], 'paused');
    await registry.create({ consumer: 'alpha', transport: 'websocket', types: ['order.*'], status: 'active', config: {}, cursor: 0 });

    const outbox = await sqlOutbox(store);
    const dispatcher = new OutboxDispatcher({
      transport: 'webhook',
      store,
      outbox,
      subscriptions: registry,
      ours: (candidate): candidate is Subscription<PushConfig> => candidate.transport === 'webhook',
      accepts: (candidate) => candidate.id !== unverified.id,
    });
    const events = [
      event('order.created'),
      event('order.created', 'alpha'),
      event('order.created', 'beta'),
      event('order.shipped', 'alpha'),
      event('order.shipped'),
      event('order.created', 'alpha'),
      event('invoice.paid'),
    ];
    const appended = (await store.append(events)).map((result) => result.event);
    // The fan-out position from before the events, so that they are read from the log.
    await outbox.position('webhook', 0);
    await dispatcher.init((appended.at(-1) as { seq: number }).seq);
    const prepared = await dispatcher.next(Date.now());

    const name = new Map([
      [alpha.id, 'alpha'],
      [beta.id, 'beta'],
    ]);
    // In seq order; the subscriptions of one event in no particular order.
    const delivered = prepared?.fanOut.deliveries.map((delivery) => `${delivery.eventSeq} ${name.get(delivery.subscriptionId)}`).sort();
    const seq = (n: number) => appended[n]?.seq;
    expect(delivered).toEqual([
      `${seq(0)} alpha`,
      `${seq(0)} beta`,
      `${seq(1)} alpha`,
      `${seq(2)} beta`,
      `${seq(3)} alpha`,
      `${seq(4)} alpha`,
      `${seq(5)} alpha`,
    ]);
    expect([...(prepared?.subscriptions.keys() ?? [])].sort()).toEqual([alpha.id, beta.id].sort());
    expect(prepared?.fanOut).toMatchObject({ from: 0, to: seq(6) });
  });
});
