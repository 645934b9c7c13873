import assert from 'node:assert/strict';
import type { NewEvent, Store, SubscriptionListOptions, SubscriptionStatus } from '@herald/core';
import { describe, it } from 'vitest';
import { type StoreHarness, withStore } from './store-harness.js';
import type { SuiteCase } from './transport-suite.js';

export type { StoreHarness, StoreUnderTest } from './store-harness.js';

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
      name: 'lists subscriptions in id order, filtered by consumer, transport and status, a page at a time with after and limit',
      run: () =>
        withStore(harness, async (store) => {
          const made: [string, string, SubscriptionStatus][] = [
            ['sub_e', 'acme', 'active'],
            ['sub_b', 'acme', 'paused'],
            ['sub_d', 'globex', 'active'],
            ['sub_a', 'acme', 'disabled'],
            ['sub_c', 'acme', 'active'],
          ];
          for (const [id, consumer, status] of made) {
            await store.subscriptions.create({ id, consumer, transport: 'webhook', types: ['order.*'], status, config: {}, cursor: 0 });
          }
          const ids = async (options: SubscriptionListOptions) => (await store.subscriptions.list(options)).map(({ id }) => id);
          assert.deepEqual(await ids({}), ['sub_a', 'sub_b', 'sub_c', 'sub_d', 'sub_e']);
          assert.deepEqual(await ids({ limit: 2 }), ['sub_a', 'sub_b']);
          assert.deepEqual(await ids({ after: 'sub_b', limit: 2 }), ['sub_c', 'sub_d']);
          assert.deepEqual(await ids({ after: 'sub_d', limit: 2 }), ['sub_e']);
          assert.deepEqual(await ids({ after: 'sub_e' }), []);
          // `after` need not be an id that is stored: ids sort after it.
          assert.deepEqual(await ids({ after: 'sub_bb' }), ['sub_c', 'sub_d', 'sub_e']);
          assert.deepEqual(await ids({ status: 'active' }), ['sub_c', 'sub_d', 'sub_e']);
          assert.deepEqual(await ids({ status: 'pending' }), []);
          assert.deepEqual(await ids({ transport: 'sse' }), []);
          assert.deepEqual(await ids({ consumer: 'acme', status: 'active', transport: 'webhook', after: 'sub_a', limit: 1 }), ['sub_c']);
          assert.deepEqual(await ids({ consumer: 'acme', status: 'active', after: 'sub_c', limit: 1 }), ['sub_e']);
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
      name: "keeps a key's name and maker, moves its last use forward only, and keeps the last use when the key is replaced",
      run: () =>
        withStore(harness, async (store) => {
          const key = {
            id: 'key_labelled',
            role: 'consumer' as const,
            consumer: 'alpha',
            hash: 'cd'.repeat(32),
            name: 'Billing sync — ünïcødé ✓',
            createdBy: 'key_admin',
            createdAt: '2026-01-01T00:00:00.000Z',
          };
          await store.keys.put(key);
          assert.deepEqual(await store.keys.get(key.id), key);
          await store.keys.markUsed(key.id, '2026-01-02T00:00:00.000Z');
          await store.keys.markUsed(key.id, '2026-01-01T12:00:00.000Z');
          assert.equal((await store.keys.get(key.id))?.lastUsedAt, '2026-01-02T00:00:00.000Z', 'never back');
          await store.keys.markUsed(key.id, '2026-01-03T00:00:00.000Z');
          assert.deepEqual(await store.keys.list(), [{ ...key, lastUsedAt: '2026-01-03T00:00:00.000Z' }]);
          await store.keys.markUsed('key_missing', '2026-01-03T00:00:00.000Z');
          assert.equal(await store.keys.get('key_missing'), undefined, 'marking an unknown key stores none');
          const { name: _name, createdBy: _createdBy, ...unlabelled } = key;
          await store.keys.put({ ...unlabelled, hash: 'ef'.repeat(32), createdAt: '2026-02-01T00:00:00.000Z' });
          assert.deepEqual(
            await store.keys.get(key.id),
            { ...unlabelled, hash: 'ef'.repeat(32), lastUsedAt: '2026-01-03T00:00:00.000Z' },
            'a replaced key keeps when it was made and last used',
          );
          return store;
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
  ];
}

/** The conformance suite every store passes, for vitest. */
export function runStoreSuite(name: string, harness: StoreHarness): void {
  describe(`store suite: ${name}`, () => {
    for (const check of storeSuiteCases(harness)) it(check.name, check.run, 60_000);
  });
}
