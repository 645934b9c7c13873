import assert from 'node:assert/strict';
import type { NewDelivery, NewEvent, Store } from '@herald/core';
import { describe, it } from 'vitest';
import type { SuiteCase } from './transport-suite.js';

/** A fresh, empty database that can be opened, closed and opened again. */
export interface StoreUnderTest {
  /** A new Store on this database (not yet initialised). */
  open(): Store;
  /** Drops the database. */
  dispose(): Promise<void>;
}

export interface StoreHarness {
  /** Makes a new empty database. */
  create(): Promise<StoreUnderTest>;
}

let counter = 0;
/** A valid new event of `type` for a test, with a unique id and a numbered `data`; `fields` override any of it. */
export function newEvent(type: string, fields: Partial<NewEvent> = {}): NewEvent {
  counter += 1;
  return {
    specversion: '1.0',
    id: `evt_suite_${process.pid}_${counter}`,
    type,
    source: '/testkit',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { n: counter, text: 'ünïcødé ✓' },
    ...fields,
  };
}

async function withStore(harness: StoreHarness, check: (store: Store, database: StoreUnderTest) => Promise<Store>): Promise<void> {
  const database = await harness.create();
  let store = database.open();
  try {
    await store.init();
    store = await check(store, database);
  } finally {
    await store.close().catch(() => {});
    await database.dispose();
  }
}

/** Every check of the store suite, each on a fresh database. */
export function storeSuiteCases(harness: StoreHarness): SuiteCase[] {
  return [
    {
      name: 'appends idempotently on id',
      run: () =>
        withStore(harness, async (store) => {
          const first = newEvent('order.created');
          const [created] = await store.append([first]);
          assert.equal(created?.created, true);
          const again = { ...first, data: { changed: true } };
          const [repeat] = await store.append([again]);
          assert.equal(repeat?.created, false);
          assert.equal(repeat?.event.seq, created?.event.seq);
          assert.deepEqual(repeat?.event.data, first.data);
          const twiceInOneCall = newEvent('order.created');
          const results = await store.append([twiceInOneCall, twiceInOneCall]);
          assert.deepEqual(
            results.map((result) => result.created),
            [true, false],
          );
          assert.equal(results[0]?.event.seq, results[1]?.event.seq);
          assert.equal((await store.read({ after: 0, limit: 100 })).length, 2);
          return store;
        }),
    },
    {
      name: 'assigns strictly increasing seq, also to concurrent appends',
      run: () =>
        withStore(harness, async (store) => {
          const batches = Array.from({ length: 50 }, (_, i) => [newEvent(i % 2 ? 'order.created' : 'invoice.paid'), newEvent('order.shipped')]);
          const results = (await Promise.all(batches.map((batch) => store.append(batch)))).flat();
          const seqs = results.map((result) => result.event.seq);
          assert.equal(new Set(seqs).size, 100, 'every event has its own seq');
          const log = await store.read({ after: 0, limit: 1000 });
          assert.equal(log.length, 100);
          for (let i = 1; i < log.length; i++) assert.ok((log[i]?.seq as number) > (log[i - 1]?.seq as number));
          for (const result of results) {
            assert.equal(log.find((event) => event.seq === result.event.seq)?.id, result.event.id);
          }
          return store;
        }),
    },
    {
      name: 'reads after a seq, in order, by type and visibility',
      run: () =>
        withStore(harness, async (store) => {
          const events = [
            newEvent('order.created'),
            newEvent('order.line.added'),
            newEvent('invoice.paid', { consumer: 'alpha' }),
            newEvent('order.shipped', { consumer: 'beta' }),
            newEvent('user_x.signed_up'),
            newEvent('userxx.signed_up'),
          ];
          const stored = (await store.append(events)).map((result) => result.event);
          const read = async (options: Parameters<Store['read']>[0]) => (await store.read(options)).map((event) => event.type);
          assert.deepEqual(await read({ after: stored[1]?.seq as number, limit: 2 }), ['invoice.paid', 'order.shipped']);
          assert.deepEqual(await read({ after: 0, limit: 10, types: ['order.*'] }), ['order.created', 'order.shipped']);
          assert.deepEqual(await read({ after: 0, limit: 10, types: ['order.**'] }), ['order.created', 'order.line.added', 'order.shipped']);
          assert.deepEqual(await read({ after: 0, limit: 10, types: ['user_x.*'] }), ['user_x.signed_up']);
          assert.deepEqual(await read({ after: 0, limit: 10, types: ['*.paid', 'order.created'] }), ['order.created', 'invoice.paid']);
          assert.deepEqual(await read({ after: 0, limit: 10, visibleTo: 'alpha', types: ['order.*', 'invoice.*'] }), [
            'order.created',
            'invoice.paid',
          ]);
          assert.deepEqual(await read({ after: stored.at(-1)?.seq as number, limit: 10 }), []);
          const bounds = await store.bounds();
          assert.deepEqual(bounds, { oldest: stored[0]?.seq, latest: stored.at(-1)?.seq });
          return store;
        }),
    },
    {
      name: 'keeps everything across close and reopen',
      run: () =>
        withStore(harness, async (store, database) => {
          const stored = (await store.append([newEvent('order.created'), newEvent('invoice.paid', { subject: 'inv-1' })])).map(
            (result) => result.event,
          );
          await store.eventTypes.insert({ name: 'order.created', schema: { type: 'object' }, createdAt: new Date().toISOString() });
          const subscription = await store.subscriptions.create({
            id: 'sub_suite',
            consumer: 'alpha',
            transport: 'memory',
            types: ['order.*'],
            status: 'active',
            config: { nested: { ok: true } },
            cursor: 0,
          });
          await store.keys.put({ id: 'key_suite', role: 'consumer', consumer: 'alpha', hash: 'ab'.repeat(32), createdAt: new Date().toISOString() });
          await store.close();

          const reopened = database.open();
          await reopened.init();
          assert.deepEqual(await reopened.read({ after: 0, limit: 10 }), stored);
          assert.deepEqual(await reopened.subscriptions.get('sub_suite'), subscription);
          assert.equal((await reopened.keys.get('key_suite'))?.consumer, 'alpha');
          assert.deepEqual(
            (await reopened.eventTypes.list()).map((type) => type.name),
            ['order.created'],
          );
          const [next] = await reopened.append([newEvent('order.created')]);
          assert.ok((next?.event.seq as number) > (stored.at(-1)?.seq as number), 'seq goes on increasing after reopen');
          return reopened;
        }),
    },
    {
      name: 'versions the subscriptions: creates, deletes and changes move it, cursors do not',
      run: () =>
        withStore(harness, async (store) => {
          const versions: number[] = [await store.subscriptions.version()];
          const moved = async () => {
            versions.push(await store.subscriptions.version());
            return (versions.at(-1) as number) > (versions.at(-2) as number);
          };
          const fields = { consumer: 'alpha', transport: 'memory', types: ['order.*'], status: 'active' as const, config: {}, cursor: 0 };
          await store.subscriptions.create({ id: 'sub_version', ...fields });
          assert.ok(await moved(), 'a create moves it');
          await store.subscriptions.update('sub_version', { cursor: 42 });
          assert.ok(!(await moved()), 'a cursor does not');
          assert.equal(await store.subscriptions.advanceCursor('sub_version', 43), true);
          assert.ok(!(await moved()), 'an advanced cursor does not');
          await store.subscriptions.update('sub_version', { types: ['order.*', 'invoice.*'] });
          assert.ok(await moved(), 'a change of types moves it');
          await store.subscriptions.update('sub_version', { status: 'paused' });
          assert.ok(await moved(), 'a change of status moves it');
          await store.subscriptions.update('missing', { status: 'paused' });
          assert.ok(!(await moved()), 'an update of nothing does not');
          assert.equal(await store.subscriptions.delete('sub_version'), true);
          assert.ok(await moved(), 'a delete moves it');
          assert.equal(await store.subscriptions.delete('sub_version'), false);
          assert.ok(!(await moved()), 'a delete of nothing does not');
          return store;
        }),
    },
    {
      name: 'advances a cursor forward only',
      run: () =>
        withStore(harness, async (store) => {
          const fields = { consumer: 'alpha', transport: 'memory', types: ['order.*'], status: 'active' as const, config: {}, cursor: 5 };
          const created = await store.subscriptions.create({ id: 'sub_cursor', ...fields });
          assert.equal(await store.subscriptions.advanceCursor('sub_cursor', 9), true);
          assert.equal((await store.subscriptions.get('sub_cursor'))?.cursor, 9);
          assert.equal(await store.subscriptions.advanceCursor('sub_cursor', 7), false, 'never back');
          assert.equal(await store.subscriptions.advanceCursor('sub_cursor', 9), false, 'not to where it is');
          assert.equal(await store.subscriptions.advanceCursor('missing', 9), false);
          const stored = await store.subscriptions.get('sub_cursor');
          assert.equal(stored?.cursor, 9);
          assert.deepEqual({ ...stored, cursor: 5, updatedAt: created.updatedAt }, created, 'nothing else changed');
          return store;
        }),
    },
    {
      name: 'fans out under a lease: deliveries marked claimed are held, not stored, unless they existed',
      run: () =>
        withStore(harness, async (store) => {
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
          assert.equal(await store.outbox.replay([{ ...delivery(2, false), id: 'dlv_replayed' }], now), 1);
          const from = await store.outbox.position('webhook', 0);
          const version = await store.subscriptions.version();
          const result = await store.outbox.commit({
            lease,
            fanOut: { name: 'webhook', from, to: events[2]?.seq as number, deliveries: [delivery(0, true), delivery(1, false), delivery(2, true)], subscriptionVersion: version },
            claim: [{ subscriptionId: 'sub_fan', limit: 10 }],
          });
          assert.equal(result.fannedOut, true);
          assert.deepEqual(result.claimedInFanOut, ['dlv_fan_0']);
          assert.ok(result.hold, 'the held delivery is in a hold');
          // The claim in the same batch takes the others; the held one has no row to claim.
          assert.deepEqual(result.claimed.map((c) => c.delivery.id).sort(), ['dlv_fan_1', 'dlv_replayed']);
          assert.equal(await store.outbox.get('dlv_fan_0'), undefined);
          assert.equal(await store.outbox.get('dlv_fan_2'), undefined);
          assert.deepEqual(await store.outbox.expiredHolds('webhook', lease.until), [], 'the hold runs until the lease ends');
          const [expired] = await store.outbox.expiredHolds('webhook', lease.until + 1);
          assert.deepEqual(
            { ...expired, id: undefined },
            { id: undefined, name: 'webhook', worker: 'wkr_fan', lockedUntil: lease.until, from, to: events[2]?.seq, subscriptionIds: ['sub_fan'] },
          );

          // A fan-out matched against subscriptions that changed since writes nothing.
          const more = (await store.append([newEvent('order.created')])).map((r) => r.event);
          await store.subscriptions.update('sub_fan', { types: ['order.**'] });
          const stale = await store.outbox.commit({
            lease,
            fanOut: { name: 'webhook', from: events[2]?.seq as number, to: more[0]?.seq as number, deliveries: [], subscriptionVersion: version },
          });
          assert.deepEqual({ fannedOut: stale.fannedOut, position: stale.position }, { fannedOut: false, position: events[2]?.seq });
          return store;
        }),
    },
    {
      name: 'creates held deliveries as they settle or come back, and recovers an expired hold once',
      run: () =>
        withStore(harness, async (store) => {
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
          const from = await store.outbox.position('webhook', 0);
          const held = [0, 1, 2, 3].map(delivery);
          const fanned = await store.outbox.commit({ lease, fanOut: { name: 'webhook', from, to: events[3]?.seq as number, deliveries: held } });
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
          await store.outbox.commit({
            lease: { ...lease, now: now + 10 },
            settle: [
              { attempt: attempt(0, 'succeeded'), status: 'delivered', held: held[0] as NewDelivery },
              { attempt: attempt(1, 'failed', now + 5_000), status: 'pending', held: held[1] as NewDelivery },
            ],
            unhold: [held[2] as NewDelivery],
          });
          const row = async (n: number) => {
            const found = await store.outbox.get(`dlv_hold_${n}`);
            return found && { status: found.status, attempts: found.attempts, nextAttemptAt: found.nextAttemptAt, lockedBy: found.lockedBy };
          };
          assert.deepEqual(await row(0), { status: 'delivered', attempts: 1, nextAttemptAt: null, lockedBy: null });
          assert.deepEqual(await row(1), { status: 'pending', attempts: 1, nextAttemptAt: now + 5_000, lockedBy: null });
          assert.deepEqual(await row(2), { status: 'pending', attempts: 0, nextAttemptAt: now, lockedBy: null });
          assert.equal(await row(3), undefined);
          // Both attempts read back as made, the delivering one kept on its delivery's row.
          assert.deepEqual(await store.outbox.attempts(['dlv_hold_0', 'dlv_hold_1']), [attempt(0, 'succeeded'), attempt(1, 'failed', now + 5_000)]);
          assert.equal(await store.outbox.failingSince('sub_hold'), now + 1, 'failing since the failure after the success on the row');

          // The lease ends: a recovery creates what has no row (the fourth), pending, and the rows made stay as they are.
          const [hold] = await store.outbox.expiredHolds('webhook', lease.until + 1);
          assert.ok(hold);
          const recovered = [0, 1, 2, 3].map((n) => ({ ...delivery(n), id: `dlv_again_${n}`, claimed: false }));
          assert.equal(await store.outbox.recoverHold(hold.id, recovered, lease.until + 1), true);
          assert.equal(await store.outbox.recoverHold(hold.id, recovered, lease.until + 1), false, 'once');
          assert.deepEqual(await store.outbox.expiredHolds('webhook', lease.until + 1), []);
          const listed = await store.outbox.list('sub_hold');
          assert.deepEqual(listed.map((d) => d.id).sort(), ['dlv_again_3', 'dlv_hold_0', 'dlv_hold_1', 'dlv_hold_2']);
          assert.deepEqual(await row(0), { status: 'delivered', attempts: 1, nextAttemptAt: null, lockedBy: null });
          const again = await store.outbox.get('dlv_again_3');
          assert.deepEqual({ status: again?.status, attempts: again?.attempts, nextAttemptAt: again?.nextAttemptAt }, { status: 'pending', attempts: 0, nextAttemptAt: now });
          // The lost worker's attempts, settled late, change nothing: the recovered row is the delivery now.
          await store.outbox.commit({ lease, settle: [{ attempt: attempt(3, 'failed', now + 60_000), status: 'pending', held: held[3] as NewDelivery }] });
          await store.outbox.commit({ lease, settle: [{ attempt: attempt(3, 'succeeded'), status: 'delivered', held: held[3] as NewDelivery }] });
          assert.equal(await row(3), undefined);
          assert.equal((await store.outbox.get('dlv_again_3'))?.status, 'pending');
          assert.deepEqual(await store.outbox.attempts(['dlv_hold_3']), []);

          // A hold its worker drops is gone, and no recovery touches it.
          const later = (await store.append([newEvent('order.created')])).map((r) => r.event);
          const next = await store.outbox.commit({
            lease,
            fanOut: { name: 'webhook', from: events[3]?.seq as number, to: later[0]?.seq as number, deliveries: [{ ...delivery(0), id: 'dlv_hold_5', eventSeq: later[0]?.seq as number, eventId: later[0]?.id as string }] },
          });
          assert.ok(next.hold);
          await store.outbox.commit({ lease, dropHolds: [next.hold as string] });
          assert.deepEqual(await store.outbox.expiredHolds('webhook', lease.until + 1), []);
          return store;
        }),
    },
  ];
}

/** The conformance suite every store passes, for vitest. */
export function runStoreSuite(name: string, harness: StoreHarness): void {
  describe(`store suite: ${name}`, () => {
    for (const check of storeSuiteCases(harness)) it(check.name, check.run, 60_000);
  });
}
