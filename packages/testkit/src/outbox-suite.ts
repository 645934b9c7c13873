import assert from 'node:assert/strict';
import type { HeraldEvent, Store } from '@herald/core';
import type { DeliveryAttempt, NewDelivery, Outbox } from '@herald/outbox';
import { describe, it } from 'vitest';
import { type StoreHarness, withStore } from './store-harness.js';
import { newEvent } from './store-suite.js';
import type { SuiteCase } from './transport-suite.js';

/** How the outbox suite makes the outbox under test: a fresh store (as the store suite does), and the outbox on it. */
export interface OutboxHarness extends StoreHarness {
  /** The outbox on `store`, which is initialised. */
  outbox(store: Store): Promise<Outbox>;
}

/** Runs `check` with an outbox on a new store on a fresh database. */
function withOutbox(harness: OutboxHarness, check: (store: Store, outbox: Outbox) => Promise<void>): Promise<void> {
  return withStore(harness, async (store) => {
    await check(store, await harness.outbox(store));
    return store;
  });
}

const lease = (worker: string, now: number, forMs = 10_000) => ({ worker, now, until: now + forMs });

/** A store with `count` events, a subscription `sub_out` of transport `webhook` to them, and their deliveries fanned out (due now). */
async function fannedOut(store: Store, outbox: Outbox, count: number) {
  const events = (await store.append(Array.from({ length: count }, () => newEvent('order.created')))).map((result) => result.event);
  await store.subscriptions.create({ id: 'sub_out', consumer: 'acme', transport: 'webhook', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
  const now = Date.now();
  const position = await outbox.position('webhook', 0);
  const deliveries = events.map((event) => ({ id: `dlv_${event.seq}`, subscriptionId: 'sub_out', eventSeq: event.seq, eventId: event.id, nextAttemptAt: now }));
  const fanned = await outbox.commit({ lease: lease('fan', now), fanOut: { name: 'webhook', from: position, to: (events.at(-1) as HeraldEvent).seq, deliveries } });
  return { events, fanned, now };
}

/** Every check of the outbox suite, each on a fresh database. */
export function outboxSuiteCases(harness: OutboxHarness): SuiteCase[] {
  return [
    {
      name: 'fans out under a lease: deliveries marked claimed are held, not stored, unless they existed',
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const events = (await store.append([newEvent('order.created'), newEvent('order.created'), newEvent('order.created')])).map((r) => r.event);
          await store.subscriptions.create({ id: 'sub_fan', consumer: 'alpha', transport: 'webhook', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
          const now = Date.now();
          const lease = { worker: 'wkr_fan', now, until: now + 60_000 };
          const delivery = (n: number, claimed: boolean) => ({
            id: `dlv_fan_${n}`,
            subscriptionId: 'sub_fan',
            eventSeq: events[n]?.seq as number,
            eventId: events[n]?.id as string,
            nextAttemptAt: now,
            ...(claimed ? { claimed } : {}),
          });
          // A replay made the third delivery before the fan-out reached it.
          assert.equal(await outbox.replay([{ ...delivery(2, false), id: 'dlv_replayed' }], now), 1);
          const from = await outbox.position('webhook', 0);
          const version = await store.subscriptions.version();
          const result = await outbox.commit({
            lease,
            fanOut: { name: 'webhook', from, to: events[2]?.seq as number, deliveries: [delivery(0, true), delivery(1, false), delivery(2, true)], subscriptionVersion: version },
            claim: [{ subscriptionId: 'sub_fan', limit: 10 }],
          });
          assert.equal(result.fannedOut, true);
          assert.deepEqual(result.claimedInFanOut, ['dlv_fan_0']);
          assert.ok(result.hold, 'the held delivery is in a hold');
          // The claim in the same batch takes the others; the held one has no row to claim.
          assert.deepEqual(result.claimed.map((c) => c.delivery.id).sort(), ['dlv_fan_1', 'dlv_replayed']);
          assert.equal(await outbox.get('dlv_fan_0'), undefined);
          assert.equal(await outbox.get('dlv_fan_2'), undefined);
          assert.deepEqual(await outbox.expiredHolds('webhook', lease.until), [], 'the hold runs until the lease ends');
          const [expired] = await outbox.expiredHolds('webhook', lease.until + 1);
          assert.deepEqual(
            { ...expired, id: undefined },
            { id: undefined, name: 'webhook', worker: 'wkr_fan', lockedUntil: lease.until, from, to: events[2]?.seq, subscriptionIds: ['sub_fan'] },
          );

          // A fan-out matched against subscriptions that changed since writes nothing.
          const more = (await store.append([newEvent('order.created')])).map((r) => r.event);
          await store.subscriptions.update('sub_fan', { types: ['order.**'] });
          const stale = await outbox.commit({
            lease,
            fanOut: { name: 'webhook', from: events[2]?.seq as number, to: more[0]?.seq as number, deliveries: [], subscriptionVersion: version },
          });
          assert.deepEqual({ fannedOut: stale.fannedOut, position: stale.position }, { fannedOut: false, position: events[2]?.seq });
        }),
    },
    {
      name: 'creates held deliveries as they settle or come back, and recovers an expired hold once',
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const events = (await store.append([1, 2, 3, 4].map(() => newEvent('order.created')))).map((r) => r.event);
          await store.subscriptions.create({ id: 'sub_hold', consumer: 'alpha', transport: 'webhook', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
          const now = Date.now();
          const lease = { worker: 'wkr_hold', now, until: now + 60_000 };
          const delivery = (n: number) => ({
            id: `dlv_hold_${n}`,
            subscriptionId: 'sub_hold',
            eventSeq: events[n]?.seq as number,
            eventId: events[n]?.id as string,
            nextAttemptAt: now,
            claimed: true,
          });
          const from = await outbox.position('webhook', 0);
          const held = [0, 1, 2, 3].map(delivery);
          const fanned = await outbox.commit({ lease, fanOut: { name: 'webhook', from, to: events[3]?.seq as number, deliveries: held } });
          assert.deepEqual(fanned.claimedInFanOut, held.map((d) => d.id));
          const attempt = (n: number, outcome: 'succeeded' | 'failed', nextAttemptAt?: number) => ({
            deliveryId: `dlv_hold_${n}`,
            subscriptionId: 'sub_hold',
            attempt: 1,
            startedAt: now + n,
            durationMs: 3,
            outcome,
            responseStatus: outcome === 'succeeded' ? 200 : 500,
            ...(outcome === 'succeeded' ? { responseBody: 'ok' } : { error: 'the endpoint answered 500' }),
            ...(nextAttemptAt !== undefined ? { nextAttemptAt } : {}),
          });
          // One delivered, one to retry; the third given back unsent; the fourth lost with its worker.
          await outbox.commit({
            lease: { ...lease, now: now + 10 },
            settle: [
              { attempt: attempt(0, 'succeeded'), status: 'delivered', held: held[0] as NewDelivery },
              { attempt: attempt(1, 'failed', now + 5_000), status: 'pending', held: held[1] as NewDelivery },
            ],
            unhold: [held[2] as NewDelivery],
          });
          const row = async (n: number) => {
            const found = await outbox.get(`dlv_hold_${n}`);
            return found && { status: found.status, attempts: found.attempts, nextAttemptAt: found.nextAttemptAt, lockedBy: found.lockedBy };
          };
          assert.deepEqual(await row(0), { status: 'delivered', attempts: 1, nextAttemptAt: null, lockedBy: null });
          assert.deepEqual(await row(1), { status: 'pending', attempts: 1, nextAttemptAt: now + 5_000, lockedBy: null });
          assert.deepEqual(await row(2), { status: 'pending', attempts: 0, nextAttemptAt: now, lockedBy: null });
          assert.equal(await row(3), undefined);
          // Both attempts read back as made, the delivering one kept on its delivery's row.
          assert.deepEqual(await outbox.attempts(['dlv_hold_0', 'dlv_hold_1']), [attempt(0, 'succeeded'), attempt(1, 'failed', now + 5_000)]);
          assert.equal(await outbox.failingSince('sub_hold'), now + 1, 'failing since the failure after the success on the row');

          // The lease ends: a recovery creates what has no row (the fourth), pending, and the rows made stay as they are.
          const [hold] = await outbox.expiredHolds('webhook', lease.until + 1);
          assert.ok(hold);
          const recovered = [0, 1, 2, 3].map((n) => ({ ...delivery(n), id: `dlv_again_${n}`, claimed: false }));
          assert.equal(await outbox.recoverHold(hold.id, recovered, lease.until + 1), true);
          assert.equal(await outbox.recoverHold(hold.id, recovered, lease.until + 1), false, 'once');
          assert.deepEqual(await outbox.expiredHolds('webhook', lease.until + 1), []);
          const listed = await outbox.list('sub_hold');
          assert.deepEqual(listed.map((d) => d.id).sort(), ['dlv_again_3', 'dlv_hold_0', 'dlv_hold_1', 'dlv_hold_2']);
          assert.deepEqual(await row(0), { status: 'delivered', attempts: 1, nextAttemptAt: null, lockedBy: null });
          const again = await outbox.get('dlv_again_3');
          assert.deepEqual({ status: again?.status, attempts: again?.attempts, nextAttemptAt: again?.nextAttemptAt }, { status: 'pending', attempts: 0, nextAttemptAt: now });
          // The lost worker's attempts, settled late, change nothing: the recovered row is the delivery now.
          await outbox.commit({ lease, settle: [{ attempt: attempt(3, 'failed', now + 60_000), status: 'pending', held: held[3] as NewDelivery }] });
          await outbox.commit({ lease, settle: [{ attempt: attempt(3, 'succeeded'), status: 'delivered', held: held[3] as NewDelivery }] });
          assert.equal(await row(3), undefined);
          assert.equal((await outbox.get('dlv_again_3'))?.status, 'pending');
          assert.deepEqual(await outbox.attempts(['dlv_hold_3']), []);

          // A hold its worker drops is gone, and no recovery touches it.
          const later = (await store.append([newEvent('order.created')])).map((r) => r.event);
          const next = await outbox.commit({
            lease,
            fanOut: { name: 'webhook', from: events[3]?.seq as number, to: later[0]?.seq as number, deliveries: [{ ...delivery(0), id: 'dlv_hold_5', eventSeq: later[0]?.seq as number, eventId: later[0]?.id as string }] },
          });
          assert.ok(next.hold);
          await outbox.commit({ lease, dropHolds: [next.hold as string] });
          assert.deepEqual(await outbox.expiredHolds('webhook', lease.until + 1), []);
        }),
    },
    {
      name: 'fans out once: a second node fanning out from the same position writes nothing',
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const { events, fanned, now } = await fannedOut(store, outbox, 5);
          const last = (events.at(-1) as HeraldEvent).seq;
          assert.deepEqual(fanned, { fannedOut: true, position: last, claimedInFanOut: [], claimed: [] });
          const again = await outbox.commit({
            lease: lease('other', now),
            fanOut: { name: 'webhook', from: 0, to: last, deliveries: [{ id: 'dlv_again', subscriptionId: 'sub_out', eventSeq: events[0]?.seq as number, eventId: 'x', nextAttemptAt: now }] },
          });
          assert.deepEqual(again, { fannedOut: false, position: last, claimedInFanOut: [], claimed: [] });
          assert.equal(await outbox.get('dlv_again'), undefined);
          assert.equal(await outbox.position('webhook', 0), last);
        }),
    },
    {
      name: 'concurrent claims by several workers never hand out a delivery twice',
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const { events, now } = await fannedOut(store, outbox, 60);
          const claims = await Promise.all(
            Array.from({ length: 8 }, (_, worker) => outbox.commit({ lease: lease(`wkr_${worker}`, now + 1), claim: [{ subscriptionId: 'sub_out', limit: 10 }] })),
          );
          const claimed = claims.flatMap((claim) => claim.claimed);
          assert.equal(new Set(claimed.map((c) => c.delivery.id)).size, claimed.length, 'a delivery was claimed twice');
          // Nobody waits for a claimed row (PostgreSQL: SKIP LOCKED), and together the workers took every free one.
          assert.equal(claimed.length, 60);
          const first = claimed[0];
          assert.equal(typeof first?.delivery.eventSeq, 'number');
          assert.equal(typeof first?.delivery.lockedUntil, 'number');
          assert.deepEqual(first?.event, events.find((event) => event.seq === first?.delivery.eventSeq));
          assert.equal(first?.subscription?.id, 'sub_out');
          assert.deepEqual(await outbox.due('webhook', now + 1, 10), []);
        }),
    },
    {
      name: "an endpoint's rate limit holds across workers: their claims spend one bucket, and say when it has a token again",
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const { now } = await fannedOut(store, outbox, 13);
          const claim = (worker: string, at: number) => ({ lease: lease(worker, at, 600_000), claim: [{ subscriptionId: 'sub_out', limit: 10, rateLimit: 5 }] });
          // A second's worth of tokens (5) among eight workers claiming at once; each one cut short is told when a token comes (in 200 ms).
          const first = await Promise.all(Array.from({ length: 8 }, (_, worker) => outbox.commit(claim(`wkr_${worker}`, now))));
          assert.equal(first.flatMap((result) => result.claimed).length, 5);
          const limited = first.filter((result) => result.rateLimited !== undefined);
          assert.ok(limited.length > 0, 'some claim was cut short by the rate limit');
          for (const result of limited) assert.deepEqual([...(result.rateLimited ?? [])], [['sub_out', now + 200]]);
          // 400 ms later the bucket has refilled by two.
          const later = await outbox.commit(claim('wkr_late', now + 400));
          assert.equal(later.claimed.length, 2);
          assert.deepEqual([...(later.rateLimited ?? [])], [['sub_out', now + 600]]);
          // Never more than a second's worth, however long it waited.
          const full = await outbox.commit(claim('wkr_idle', now + 60_000));
          assert.equal(full.claimed.length, 5);
          assert.deepEqual([...(full.rateLimited ?? [])], [['sub_out', now + 60_200]]);
          // Fewer due than tokens: the claim takes them all, and is not cut short.
          const rest = await outbox.commit(claim('wkr_rest', now + 120_000));
          assert.equal(rest.claimed.length, 1);
          assert.equal(rest.rateLimited, undefined);
        }),
    },
    {
      name: 'an expired lease can be claimed by another worker; settling records the attempt with numbers',
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const { now } = await fannedOut(store, outbox, 3);
          const [held] = (await outbox.commit({ lease: lease('wkr_dead', now, 1_000), claim: [{ subscriptionId: 'sub_out', limit: 1 }] })).claimed;
          assert.deepEqual(
            (await outbox.commit({ lease: lease('wkr_live', now + 500), claim: [{ subscriptionId: 'sub_out', ordered: true, limit: 1 }] })).claimed,
            [],
            'an ordered claim waits for the head of the line',
          );
          assert.deepEqual(await outbox.due('webhook', now + 1_001, 10), ['sub_out']);
          const later = now + 1_001;
          const taken = (await outbox.commit({ lease: lease('wkr_live', later), claim: [{ subscriptionId: 'sub_out', limit: 3 }] })).claimed;
          assert.ok(taken.some((c) => c.delivery.id === held?.delivery.id), 'the expired claim is taken again');
          assert.equal(taken.find((c) => c.delivery.id === held?.delivery.id)?.delivery.attempts, 2);

          const attempt: DeliveryAttempt = {
            deliveryId: held?.delivery.id as string,
            subscriptionId: 'sub_out',
            attempt: 2,
            startedAt: later,
            durationMs: 12.6,
            outcome: 'succeeded',
            responseStatus: 204,
          };
          // The dead worker's late settle is ignored; the live one's counts.
          await outbox.commit({ lease: lease('wkr_dead', later), settle: [{ attempt, status: 'delivered' }] });
          assert.equal((await outbox.get(attempt.deliveryId))?.status, 'pending');
          await outbox.commit({ lease: lease('wkr_live', later), settle: [{ attempt, status: 'delivered' }] });
          const settled = await outbox.get(attempt.deliveryId);
          assert.deepEqual(
            { status: settled?.status, lockedBy: settled?.lockedBy, lockedUntil: settled?.lockedUntil, nextAttemptAt: settled?.nextAttemptAt },
            { status: 'delivered', lockedBy: null, lockedUntil: null, nextAttemptAt: null },
          );
          assert.deepEqual((await outbox.attempts([attempt.deliveryId])).at(-1), { ...attempt, durationMs: 13 });

          const others = taken.filter((c) => c.delivery.id !== attempt.deliveryId).map((c) => c.delivery.id);
          await outbox.release('wkr_live', others);
          assert.equal((await outbox.get(others[0] as string))?.lockedBy, null);
        }),
    },
    {
      name: 'lists, retries, replays, abandons, purges and prunes',
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const { events, now } = await fannedOut(store, outbox, 4);
          const seq = (n: number) => events[n]?.seq as number;
          const failed: DeliveryAttempt = {
            deliveryId: `dlv_${seq(0)}`,
            subscriptionId: 'sub_out',
            attempt: 1,
            startedAt: now,
            durationMs: 5,
            outcome: 'failed',
            error: 'connection refused',
            nextAttemptAt: now + 60_000,
          };
          await outbox.commit({ lease: lease('w', now), claim: [{ subscriptionId: 'sub_out', limit: 1 }] });
          await outbox.commit({ lease: lease('w', now), settle: [{ attempt: failed, status: 'pending' }] });
          assert.equal(await outbox.failingSince('sub_out'), now);
          assert.deepEqual((await outbox.list('sub_out', { limit: 2 })).map((d) => d.eventSeq), [seq(3), seq(2)]);
          assert.deepEqual((await outbox.list('sub_out', { before: seq(2) })).map((d) => d.eventSeq), [seq(1), seq(0)]);
          const retried = await outbox.retry(failed.deliveryId, now + 1);
          assert.deepEqual({ status: retried?.status, attempts: retried?.attempts, nextAttemptAt: retried?.nextAttemptAt }, { status: 'pending', attempts: 0, nextAttemptAt: now + 1 });
          const replayed = await outbox.replay(
            events.map((event) => ({ id: `dlv_r${event.seq}`, subscriptionId: 'sub_out', eventSeq: event.seq, eventId: event.id, nextAttemptAt: now })),
            now + 2,
          );
          assert.equal(replayed, 4);
          assert.equal(await outbox.abandon('sub_out', now + 3), 4);
          assert.equal((await outbox.list('sub_out', { status: 'failed' })).length, 4);
          assert.equal(await outbox.prune('webhook', now + 4), 4);
          assert.deepEqual(await outbox.list('sub_out'), []);
          await outbox.replay([{ id: 'dlv_x', subscriptionId: 'sub_out', eventSeq: seq(0), eventId: events[0]?.id as string, nextAttemptAt: now }], now);
          await outbox.purge('sub_out');
          assert.deepEqual(await outbox.list('sub_out'), []);
          assert.deepEqual(await outbox.attempts([failed.deliveryId]), []);
        }),
    },
    {
      name: 'a replay of a delivery in flight sends it again: the in-flight attempt does not settle it',
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const { events, now } = await fannedOut(store, outbox, 1);
          const event = events[0] as HeraldEvent;
          const [taken] = (await outbox.commit({ lease: lease('w', now), claim: [{ subscriptionId: 'sub_out', limit: 1 }] })).claimed;
          assert.equal(taken?.delivery.eventSeq, event.seq);
          await outbox.replay([{ id: 'dlv_again', subscriptionId: 'sub_out', eventSeq: event.seq, eventId: event.id, nextAttemptAt: now }], now + 1);
          const delivered: DeliveryAttempt = { deliveryId: taken?.delivery.id as string, subscriptionId: 'sub_out', attempt: 1, startedAt: now, durationMs: 3, outcome: 'succeeded' };
          await outbox.commit({ lease: lease('w', now + 2), settle: [{ attempt: delivered, status: 'delivered' }] });
          const after = await outbox.get(taken?.delivery.id as string);
          assert.deepEqual({ status: after?.status, lockedBy: after?.lockedBy }, { status: 'pending', lockedBy: null });
          const again = await outbox.commit({ lease: lease('w2', now + 3), claim: [{ subscriptionId: 'sub_out', limit: 1 }] });
          assert.deepEqual(again.claimed.map((c) => c.delivery.id), [taken?.delivery.id]);
        }),
    },
    {
      name: "finds, counts and prunes a transport's deliveries, and those of deleted subscriptions, not another transport's",
      run: () =>
        withOutbox(harness, async (store, outbox) => {
          const events = (await store.append([newEvent('order.created'), newEvent('order.created')])).map((result) => result.event);
          const subscription = { consumer: 'acme', types: ['order.*'], status: 'active' as const, config: {}, cursor: 0 };
          await store.subscriptions.create({ id: 'sub_hook', transport: 'webhook', ...subscription });
          await store.subscriptions.create({ id: 'sub_queue', transport: 'amqp', ...subscription });
          const now = Date.now();
          const delivery = (subscriptionId: string, n: number): NewDelivery => ({
            id: `dlv_${subscriptionId}_${n}`,
            subscriptionId,
            eventSeq: events[n]?.seq as number,
            eventId: events[n]?.id as string,
            nextAttemptAt: now,
          });
          await outbox.replay([delivery('sub_hook', 0), delivery('sub_queue', 0), delivery('sub_queue', 1), delivery('sub_gone', 0)], now);
          assert.deepEqual((await outbox.due('webhook', now, 10)).sort(), ['sub_gone', 'sub_hook']);
          assert.deepEqual((await outbox.due('amqp', now, 10)).sort(), ['sub_gone', 'sub_queue']);
          assert.equal(await outbox.backlog('webhook'), 1);
          assert.equal(await outbox.backlog('amqp'), 2);
          for (const id of ['sub_hook', 'sub_queue', 'sub_gone']) await outbox.abandon(id, now);
          assert.equal(await outbox.prune('amqp', now + 1), 3, "amqp's two and the deleted subscription's");
          assert.deepEqual((await outbox.list('sub_hook')).map((d) => d.status), ['failed'], "webhook's is left");
          assert.equal(await outbox.prune('webhook', now + 1), 1);
        }),
    },
  ];
}

/** The conformance suite of an outbox (`@herald/outbox`'s seam), for vitest: `runOutboxSuite('SQLite', { create, outbox })`. */
export function runOutboxSuite(name: string, harness: OutboxHarness): void {
  describe(`outbox suite: ${name}`, () => {
    for (const check of outboxSuiteCases(harness)) it(check.name, check.run, 60_000);
  });
}
