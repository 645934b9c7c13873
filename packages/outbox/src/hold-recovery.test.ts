import { sqliteStore } from '@herald/core';
import { createTransportContext, newEvent } from '../../testkit/src/index.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { recoverHold } from './hold-recovery.js';
import { sqlOutbox } from './sql-outbox.js';

describe('recoverHold', () => {
  it("creates the missing deliveries of an expired hold, pending, for the events its subscriptions take now, once", async () => {
    const store = sqliteStore({ path: ':memory:' });
    const context = await createTransportContext({ store });
    onTestFinished(() => context.close());
    const outbox = await sqlOutbox(store);
    const { subscriptions } = context;
    const alpha = await subscriptions.create({ consumer: 'alpha', transport: 'webhook', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
    const events = (await store.append([newEvent('order.created'), newEvent('invoice.paid'), newEvent('order.created', { consumer: 'beta' }), newEvent('order.shipped')])).map(
      (result) => result.event,
    );
    const from = await outbox.position('webhook', 0);
    const now = Date.now();
    const lease = { worker: 'wkr_dead', now, until: now + 1_000 };
    const held = events.map((event) => ({ id: `dlv_held_${event.seq}`, subscriptionId: alpha.id, eventSeq: event.seq, eventId: event.id, nextAttemptAt: now, claimed: true }));
    const { hold } = await outbox.commit({ lease, fanOut: { name: 'webhook', from, to: events[3]?.seq as number, deliveries: [held[0], held[3]].filter((d) => d !== undefined) } });
    // Its first delivery got its row before the worker died.
    await outbox.commit({ lease, settle: [{ attempt: { deliveryId: held[0]?.id as string, subscriptionId: alpha.id, attempt: 1, startedAt: now, durationMs: 1, outcome: 'succeeded' }, status: 'delivered', held: held[0] }] });

    const [expired] = await outbox.expiredHolds('webhook', lease.until + 1);
    expect(expired?.id).toBe(hold);
    expect(await recoverHold(context, outbox, expired as NonNullable<typeof expired>, lease.until + 1)).toBe(true);
    expect(await recoverHold(context, outbox, expired as NonNullable<typeof expired>, lease.until + 1)).toBe(false);
    // The order events addressed to everyone or to alpha: the first has its row already, the last is created pending.
    const listed = await outbox.list(alpha.id);
    expect(listed.map((delivery) => [delivery.eventSeq, delivery.status])).toEqual([
      [events[3]?.seq, 'pending'],
      [events[0]?.seq, 'delivered'],
    ]);
  });

  it("leaves out the events the subscription's filter refuses", async () => {
    const store = sqliteStore({ path: ':memory:' });
    const context = await createTransportContext({ store });
    onTestFinished(() => context.close());
    const outbox = await sqlOutbox(store);
    const { subscriptions } = context;
    const big = await subscriptions.create({
      consumer: 'alpha',
      transport: 'webhook',
      types: ['order.*'],
      status: 'active',
      config: {},
      cursor: 0,
      filter: { 'data.total': { $gte: 100 } },
    });
    const events = (await store.append([newEvent('order.created', { data: { total: 5 } }), newEvent('order.created', { data: { total: 500 } })])).map((result) => result.event);
    const from = await outbox.position('webhook', 0);
    const now = Date.now();
    const lease = { worker: 'wkr_dead', now, until: now + 1_000 };
    const taken = events[1] as (typeof events)[number];
    await outbox.commit({
      lease,
      fanOut: { name: 'webhook', from, to: taken.seq, deliveries: [{ id: 'dlv_held', subscriptionId: big.id, eventSeq: taken.seq, eventId: taken.id, nextAttemptAt: now, claimed: true }] },
    });
    const [expired] = await outbox.expiredHolds('webhook', lease.until + 1);
    expect(await recoverHold(context, outbox, expired as NonNullable<typeof expired>, lease.until + 1)).toBe(true);
    expect((await outbox.list(big.id)).map((delivery) => [delivery.eventSeq, delivery.status])).toEqual([[taken.seq, 'pending']]);
  });
});
