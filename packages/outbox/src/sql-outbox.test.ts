import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresStore, sqliteStore } from '@herald/core';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { newEvent, runOutboxSuite } from '../../testkit/src/index.js';
import { sql } from 'kysely';
import { describe, expect, it, onTestFinished } from 'vitest';
// By path, as the integration tests do: the one helper that makes PostgreSQL databases for tests.
import { freshDatabase } from '../../core/src/sql/postgres.test-support.js';
import { commitLevelsStore } from '../../core/src/sql/sqlite.test-support.js';
import type { Outbox } from './outbox.js';
import { sqlOutbox } from './sql-outbox.js';

runOutboxSuite('SQLite', {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-suite-'));
    const path = join(dir, 'herald.db');
    return { open: () => sqliteStore({ path }), dispose: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  outbox: sqlOutbox,
});

runOutboxSuite('PostgreSQL', {
  async create() {
    const { url, drop } = await freshDatabase();
    return { open: () => postgresStore({ url }), dispose: drop };
  },
  outbox: sqlOutbox,
});

describe('sqlOutbox', () => {
  it('is one outbox per store, made once however many push transports ask for it', async () => {
    const store = sqliteStore({ path: ':memory:' });
    onTestFinished(() => store.close());
    await store.init();
    const [first, second] = await Promise.all([sqlOutbox(store), sqlOutbox(store)]);
    expect(first).toBe(second);
    expect(await sqlOutbox(store)).toBe(first);
  });

  it('refuses a store that is not the SQL store, saying what to give instead', async () => {
    const store = sqliteStore({ path: ':memory:' });
    onTestFinished(() => store.close());
    // Any other Store: one without the SQL store's extensions.
    const other = new Proxy(store, { get: (target, key) => (key === 'extend' ? undefined : Reflect.get(target, key)) });
    await expect(sqlOutbox(other)).rejects.toThrow(/`outbox` of their own/);
  });
});

describe('the outbox on SQLite with synchronous=FULL', () => {
  it('commits unsynced (NORMAL), and the store is back to FULL after each commit, a failed one too', async () => {
    const { store, level, levels } = await commitLevelsStore(tempDatabase());
    onTestFinished(() => store.close());
    const outbox = await sqlOutbox(store);

    const [appended] = await store.append([newEvent('sync.one')]);
    const now = Date.now();
    const lease = { worker: 'wkr_sync', now, until: now + 60_000 };
    const from = await outbox.position('webhook', 0);
    levels.length = 0;
    await outbox.commit({ lease, fanOut: { name: 'webhook', from, to: appended?.event.seq as number, deliveries: [], subscriptionVersion: await store.subscriptions.version() } });
    await store.append([newEvent('sync.two')]);
    expect(levels).toEqual([1, 2]);
    expect(level()).toBe(2);

    const unbindable = { id: 'dlv_sync', subscriptionId: 'sub_sync', eventSeq: 1, eventId: {} as string, nextAttemptAt: now };
    await expect(outbox.commit({ lease, unhold: [unbindable] })).rejects.toThrow(/bind/);
    expect(level()).toBe(2);
    await store.append([newEvent('sync.three')]);
    expect(levels).toEqual([1, 2, 2]);
    expect(await outbox.position('webhook', 0)).toBe(appended?.event.seq);
  });

  it("commits a replay's batch unsynced too: a replay lives in this process, and one cut short is asked again", async () => {
    const { store, levels } = await commitLevelsStore(tempDatabase());
    onTestFinished(() => store.close());
    const outbox = await sqlOutbox(store);
    const [appended] = await store.append([newEvent('sync.replayed')]);
    const now = Date.now();
    const delivery = { id: 'dlv_replayed', subscriptionId: 'sub_sync', eventSeq: appended?.event.seq as number, eventId: appended?.event.id as string, nextAttemptAt: now };
    levels.length = 0;
    expect(await outbox.replay([delivery], now)).toBe(1);
    expect(levels).toEqual([1]);
    expect(await outbox.get('dlv_replayed')).toMatchObject({ status: 'pending', eventSeq: appended?.event.seq });
  });
});

/** A new store on a fresh SQLite file, and one on a fresh PostgreSQL database, each dropped after the test. */
const freshStores = [
  ['SQLite', async () => sqliteStore({ path: tempDatabase() })],
  [
    'PostgreSQL',
    async () => {
      const { url, drop } = await freshDatabase();
      onTestFinished(drop);
      return postgresStore({ url });
    },
  ],
] as const;

describe.each(freshStores)('stored deliveries on %s (issue 21)', (_name, open) => {
  /** A store whose outbox holds one stored delivery, due, of each of `count` events to sub_out. */
  async function withStored(count: number) {
    const store = await open();
    onTestFinished(() => store.close());
    await store.init();
    await store.subscriptions.create({ id: 'sub_out', transport: 'webhook', consumer: 'acme', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
    const outbox = await sqlOutbox(store);
    const events = (await store.append(Array.from({ length: count }, () => newEvent('order.created')))).map((result) => result.event);
    const now = Date.now();
    const deliveries = events.map((event, i) => ({ id: `dlv_${i}`, subscriptionId: 'sub_out', eventSeq: event.seq, eventId: event.id, nextAttemptAt: now }));
    expect(await outbox.replay(deliveries, now)).toBe(count);
    const rowsOf = async (table: 'herald_delivery_attempts' | 'herald_outbox_replay_holds') =>
      Number(((await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(store.database)).rows[0] as { n: number }).n);
    return { outbox, now, attemptRows: () => rowsOf('herald_delivery_attempts'), replayHolds: () => rowsOf('herald_outbox_replay_holds') };
  }
  /** The outbox's `replayClaiming`, which the seam leaves optional and the SQL outbox has. */
  function replayClaimingOf(outbox: Outbox): NonNullable<Outbox['replayClaiming']> {
    const replayClaiming = outbox.replayClaiming?.bind(outbox);
    if (!replayClaiming) throw new Error('the SQL outbox replays claiming');
    return replayClaiming;
  }
  const lease = (worker: string, now: number) => ({ worker, now, until: now + 60_000 });
  const attempt = (deliveryId: string, n: number, startedAt: number, outcome: 'succeeded' | 'failed') => ({
    deliveryId,
    subscriptionId: 'sub_out',
    attempt: n,
    startedAt,
    durationMs: 7,
    outcome,
    ...(outcome === 'succeeded' ? { responseStatus: 200, responseBody: 'thanks' } : { responseStatus: 500, error: 'the endpoint answered 500' }),
  });

  it("gives each claimed delivery its event's JSON from the stored text: the same as the event read, written again", async () => {
    const store = await open();
    onTestFinished(() => store.close());
    await store.init();
    await store.subscriptions.create({ id: 'sub_out', transport: 'webhook', consumer: 'acme', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
    const outbox = await sqlOutbox(store);
    const events = (
      await store.append([
        newEvent('order.created', { data: { n: 1, nested: { list: [1.5, -0.25, 1e21, null, true] }, text: 'quote " backslash \\ line\nbreak é 🎉 \u2028' } }),
        newEvent('order.created', {
          data: 'just a string',
          subject: 'order/42',
          consumer: 'acme',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          tracestate: 'vendor=1',
        }),
        newEvent('order.created', { data: null }),
      ])
    ).map((result) => result.event);
    const now = Date.now();
    const deliveries = events.map((event, i) => ({ id: `dlv_${i}`, subscriptionId: 'sub_out', eventSeq: event.seq, eventId: event.id, nextAttemptAt: now }));
    await outbox.replay(deliveries, now);
    const { claimed } = await outbox.commit({ lease: lease('w', now), claim: [{ subscriptionId: 'sub_out', limit: 3 }] });
    expect(claimed.map((c) => c.event)).toEqual(events);
    // Each claimed delivery is its row as the claim left it (made from what the claim read and wrote).
    for (const { delivery } of claimed) expect(delivery).toEqual(await outbox.get(delivery.id));
    // What the engine sent before: the event read, written again.
    expect(claimed.map((c) => c.body)).toEqual(claimed.map((c) => JSON.stringify(c.event)));
    // In the envelope's order, which the event read keeps: optional fields in their places, not at the end.
    expect(Object.keys(claimed[1]?.event ?? {})).toEqual([
      'specversion',
      'id',
      'seq',
      'type',
      'source',
      'subject',
      'time',
      'datacontenttype',
      'data',
      'consumer',
      'traceparent',
      'tracestate',
    ]);
  });

  it('keeps the delivering attempt on the row, in the write that settles it, and moves it out when a retry starts a new round', async () => {
    const { outbox, now, attemptRows } = await withStored(2);
    const claim = async (at: number) => (await outbox.commit({ lease: lease('w', at), claim: [{ subscriptionId: 'sub_out', limit: 2 }] })).claimed;
    expect((await claim(now)).map((c) => c.delivery.attempts)).toEqual([1, 1]);
    await outbox.commit({
      lease: lease('w', now + 1),
      settle: [
        { attempt: { ...attempt('dlv_0', 1, now, 'failed'), nextAttemptAt: now + 2 }, status: 'pending' },
        { attempt: attempt('dlv_1', 1, now, 'succeeded'), status: 'delivered' },
      ],
    });
    expect(await attemptRows()).toBe(1);
    expect((await claim(now + 2)).map((c) => [c.delivery.id, c.delivery.attempts])).toEqual([['dlv_0', 2]]);
    await outbox.commit({ lease: lease('w', now + 3), settle: [{ attempt: attempt('dlv_0', 2, now + 2, 'succeeded'), status: 'delivered' }] });
    // Two deliveries, three attempts, one attempt row: the delivering attempts are on their rows.
    expect(await attemptRows()).toBe(1);
    const shown = (attempts: Awaited<ReturnType<typeof outbox.attempts>>) => attempts.map((a) => [a.deliveryId, a.attempt, a.outcome, a.responseStatus]);
    expect(shown(await outbox.attempts(['dlv_0', 'dlv_1']))).toEqual([
      ['dlv_0', 1, 'failed', 500],
      ['dlv_1', 1, 'succeeded', 200],
      ['dlv_0', 2, 'succeeded', 200],
    ]);
    expect(await outbox.get('dlv_0')).toMatchObject({ status: 'delivered', attempts: 2, lockedBy: null, nextAttemptAt: null });

    // A retry keeps the round it ends among the attempts; the new round's delivering attempt is on the row.
    await outbox.retry('dlv_0', now + 4);
    expect(shown(await outbox.attempts(['dlv_0']))).toEqual([
      ['dlv_0', 1, 'failed', 500],
      ['dlv_0', 2, 'succeeded', 200],
    ]);
    expect((await claim(now + 5)).map((c) => [c.delivery.id, c.delivery.attempts])).toEqual([['dlv_0', 1]]);
    await outbox.commit({ lease: lease('w', now + 6), settle: [{ attempt: attempt('dlv_0', 1, now + 5, 'succeeded'), status: 'delivered' }] });
    expect(shown(await outbox.attempts(['dlv_0']))).toEqual([
      ['dlv_0', 1, 'failed', 500],
      ['dlv_0', 2, 'succeeded', 200],
      ['dlv_0', 1, 'succeeded', 200],
    ]);
    expect(await attemptRows()).toBe(2);
  });

  it("counts a retry's success kept on an older event's row when it says since when the subscription is failing", async () => {
    const { outbox, now } = await withStored(2);
    await outbox.commit({ lease: lease('w', now), claim: [{ subscriptionId: 'sub_out', limit: 2 }] });
    await outbox.commit({
      lease: lease('w', now + 1),
      settle: [
        { attempt: { ...attempt('dlv_0', 1, now + 10, 'failed'), nextAttemptAt: now + 11 }, status: 'pending' },
        { attempt: attempt('dlv_1', 1, now, 'succeeded'), status: 'delivered' },
      ],
    });
    expect(await outbox.failingSince('sub_out')).toBe(now + 10);
    // The older event's delivery is delivered by its retry, after the newer event's.
    await outbox.commit({ lease: lease('w', now + 20), claim: [{ subscriptionId: 'sub_out', limit: 2 }] });
    await outbox.commit({ lease: lease('w', now + 21), settle: [{ attempt: attempt('dlv_0', 2, now + 20, 'succeeded'), status: 'delivered' }] });
    expect(await outbox.failingSince('sub_out')).toBeUndefined();
    await outbox.purge('sub_out');
    expect(await outbox.failingSince('sub_out')).toBeUndefined();
  });

  it('settles only what the worker still holds: a delivering attempt under a lost lease leaves the row as it is', async () => {
    const { outbox, now, attemptRows } = await withStored(3);
    await outbox.commit({ lease: { worker: 'w', now, until: now + 10 }, claim: [{ subscriptionId: 'sub_out', limit: 3 }] });
    // The lease ran out and another worker claimed the first delivery; this worker's attempts settle all three at once.
    expect((await outbox.commit({ lease: lease('w2', now + 20), claim: [{ subscriptionId: 'sub_out', limit: 1 }] })).claimed).toHaveLength(1);
    await outbox.commit({
      lease: lease('w', now + 21),
      settle: ['dlv_0', 'dlv_1', 'dlv_2'].map((id) => ({ attempt: attempt(id, 1, now, 'succeeded'), status: 'delivered' as const })),
    });
    expect(await outbox.get('dlv_0')).toMatchObject({ status: 'pending', lockedBy: 'w2', attempts: 2 });
    for (const id of ['dlv_1', 'dlv_2']) expect(await outbox.get(id)).toMatchObject({ status: 'delivered', lockedBy: null, attempts: 1 });
    // The two it held keep their attempts on their rows; the one it lost has its attempt recorded beside it.
    expect(await attemptRows()).toBe(1);
    expect((await outbox.attempts(['dlv_0', 'dlv_1', 'dlv_2'])).map((a) => [a.deliveryId, a.outcome]).sort()).toEqual([
      ['dlv_0', 'succeeded'],
      ['dlv_1', 'succeeded'],
      ['dlv_2', 'succeeded'],
    ]);
  });

  it('replays claiming: holds the deliveries marked claimed under the lease, lets one in flight go, keeps the last round', async () => {
    const { outbox, now } = await withStored(3);
    const replayClaiming = replayClaimingOf(outbox);
    // dlv_0 is delivered (its attempt on the row), dlv_1 is in flight under another worker's lease, dlv_2 is pending.
    await outbox.commit({ lease: lease('w', now), claim: [{ subscriptionId: 'sub_out', limit: 1 }] });
    await outbox.commit({ lease: lease('w', now + 1), settle: [{ attempt: attempt('dlv_0', 1, now, 'succeeded'), status: 'delivered' }] });
    await outbox.commit({ lease: lease('other', now + 2), claim: [{ subscriptionId: 'sub_out', limit: 1 }] });
    const delivered = await outbox.get('dlv_0');
    const seqs = (await outbox.list('sub_out', { limit: 3 })).map((d) => [d.id, d.eventSeq, d.eventId] as const).reverse();
    const again = seqs.map(([, eventSeq, eventId], i) => ({ id: `dlv_new_${i}`, subscriptionId: 'sub_out', eventSeq, eventId, nextAttemptAt: now + 3, claimed: true }));
    const { replayed, claimed } = await replayClaiming(again, lease('w', now + 3));
    expect(replayed).toBe(3);
    // The rows keep their ids; the one in flight elsewhere is let go rather than claimed.
    expect(claimed.map(({ delivery: d, startsRound }) => [d.id, d.attempts, d.lockedBy, d.status, startsRound])).toEqual([
      ['dlv_0', 1, 'w', 'pending', true],
      ['dlv_2', 1, 'w', 'pending', undefined],
    ]);
    // The pending row is claimed as it says; the final one is left as it was, for its attempt's settle to write.
    expect(claimed[1]?.delivery).toEqual(await outbox.get('dlv_2'));
    expect(await outbox.get('dlv_0')).toEqual(delivered);
    expect(await outbox.get('dlv_1')).toMatchObject({ status: 'pending', attempts: 0, lockedBy: null, lockedUntil: null });
    expect((await outbox.attempts(['dlv_0'])).map((a) => [a.attempt, a.outcome])).toEqual([[1, 'succeeded']]);
  });

  it('keeps a replay hold of the final rows it hands over, and restarts those still unsent once its lease ends, once', async () => {
    const { outbox, now } = await withStored(4);
    const replayClaiming = replayClaimingOf(outbox);
    const ids = ['dlv_0', 'dlv_1', 'dlv_2', 'dlv_3'];
    await outbox.commit({ lease: lease('w', now), claim: [{ subscriptionId: 'sub_out', limit: 4 }] });
    await outbox.commit({ lease: lease('w', now + 1), settle: ids.map((id) => ({ attempt: attempt(id, 1, now, 'succeeded'), status: 'delivered' as const })) });
    const again = (await outbox.list('sub_out', { limit: 4 }))
      .reverse()
      .map(({ eventSeq, eventId }, i) => ({ id: `dlv_new_${i}`, subscriptionId: 'sub_out', eventSeq, eventId, nextAttemptAt: now + 10, claimed: true }));
    const { claimed, hold } = await replayClaiming(again, { worker: 'w', now: now + 10, until: now + 20 });
    expect(claimed.map(({ delivery, startsRound }) => [delivery.id, startsRound])).toEqual(ids.map((id) => [id, true]));
    expect(hold).toMatch(/^rhld_/);
    expect(await outbox.recoverReplayHolds?.(now + 20)).toEqual([]);
    // dlv_0's attempt settles its new round and dlv_1 is retried by hand; then the worker dies, dlv_2 and dlv_3 unsent.
    await outbox.commit({ lease: lease('w', now + 12), settle: [{ attempt: attempt('dlv_0', 1, now + 11, 'succeeded'), status: 'delivered', startsRound: true }] });
    await outbox.retry('dlv_1', now + 13);

    expect(await outbox.recoverReplayHolds?.(now + 21)).toEqual([{ id: hold, worker: 'w', restarted: 2 }]);
    for (const id of ['dlv_2', 'dlv_3']) {
      expect(await outbox.get(id)).toMatchObject({ status: 'pending', attempts: 0, lockedBy: null, nextAttemptAt: now + 21, updatedAt: now + 21 });
      // The last round's delivering attempt is kept among the attempts.
      expect((await outbox.attempts([id])).map((a) => [a.attempt, a.startedAt - now, a.outcome])).toEqual([[1, 0, 'succeeded']]);
    }
    expect(await outbox.get('dlv_0')).toMatchObject({ status: 'delivered', attempts: 1, updatedAt: now + 12 });
    expect(await outbox.get('dlv_1')).toMatchObject({ status: 'pending', nextAttemptAt: now + 13 });
    expect(await outbox.recoverReplayHolds?.(now + 22)).toEqual([]);
  });

  it('drops a replay hold with the commit of its worker that names it: nothing to recover then', async () => {
    const { outbox, now, replayHolds } = await withStored(2);
    const replayClaiming = replayClaimingOf(outbox);
    await outbox.commit({ lease: lease('w', now), claim: [{ subscriptionId: 'sub_out', limit: 2 }] });
    await outbox.commit({ lease: lease('w', now + 1), settle: ['dlv_0', 'dlv_1'].map((id) => ({ attempt: attempt(id, 1, now, 'succeeded'), status: 'delivered' as const })) });
    const rows = (await outbox.list('sub_out', { limit: 2 })).reverse();
    const again = rows.map(({ eventSeq, eventId }, i) => ({ id: `dlv_new_${i}`, subscriptionId: 'sub_out', eventSeq, eventId, nextAttemptAt: now + 10, claimed: true }));
    const { hold } = await replayClaiming(again, { worker: 'w', now: now + 10, until: now + 20 });
    expect(await replayHolds()).toBe(1);
    await outbox.commit({ lease: lease('other', now + 11), dropHolds: [hold as string] });
    expect(await replayHolds()).toBe(1);
    await outbox.commit({ lease: lease('w', now + 11), dropHolds: [hold as string] });
    expect(await replayHolds()).toBe(0);
    expect(await outbox.recoverReplayHolds?.(now + 21)).toEqual([]);
    expect((await outbox.list('sub_out', { limit: 2 })).reverse()).toEqual(rows);
  });

  it("writes a replay's final rows once, as their attempts settle: a new round, unless the row is pending again or gone", async () => {
    const { outbox, now, attemptRows } = await withStored(5);
    const replayClaiming = replayClaimingOf(outbox);
    // All five final: dlv_4 delivered long before the others, dlv_3 failed for good, the rest delivered.
    await outbox.commit({ lease: lease('w', now), claim: [{ subscriptionId: 'sub_out', limit: 5 }] });
    await outbox.commit({ lease: lease('w', now + 1), settle: [{ attempt: attempt('dlv_4', 1, now, 'succeeded'), status: 'delivered' }] });
    await outbox.commit({
      lease: lease('w', now + 10),
      settle: [
        ...['dlv_0', 'dlv_1', 'dlv_2'].map((id) => ({ attempt: attempt(id, 1, now, 'succeeded'), status: 'delivered' as const })),
        { attempt: attempt('dlv_3', 1, now, 'failed'), status: 'failed' },
      ],
    });
    expect(await attemptRows()).toBe(1);
    const rows = (await outbox.list('sub_out', { limit: 5 })).reverse();
    const again = rows.map(({ eventSeq, eventId }, i) => ({ id: `dlv_new_${i}`, subscriptionId: 'sub_out', eventSeq, eventId, nextAttemptAt: now + 20, claimed: true }));
    const { claimed } = await replayClaiming(again, lease('w', now + 20));
    expect(claimed.map(({ delivery, startsRound }) => [delivery.id, delivery.attempts, startsRound])).toEqual(
      ['dlv_0', 'dlv_1', 'dlv_2', 'dlv_3', 'dlv_4'].map((id) => [id, 1, true]),
    );
    // Until they settle, the outbox shows them as they were.
    expect((await outbox.list('sub_out', { limit: 5 })).reverse()).toEqual(rows);
    // Meanwhile dlv_1 is retried by hand and dlv_4 pruned.
    await outbox.retry('dlv_1', now + 21);
    expect(await outbox.prune('webhook', now + 5)).toBe(1);

    const settledAt = now + 30;
    await outbox.commit({
      lease: lease('w', settledAt),
      settle: [
        ...['dlv_0', 'dlv_1', 'dlv_3', 'dlv_4'].map((id) => ({ attempt: attempt(id, 1, now + 22, 'succeeded'), status: 'delivered' as const, startsRound: true as const })),
        { attempt: { ...attempt('dlv_2', 1, now + 22, 'failed'), nextAttemptAt: now + 40 }, status: 'pending', startsRound: true },
      ],
    });
    const shown = async (id: string) => (await outbox.attempts([id])).map((a) => [a.attempt, a.startedAt - now, a.outcome]);
    // A new round: its delivering attempt on the row, the last round's among the attempts.
    expect(await outbox.get('dlv_0')).toMatchObject({ status: 'delivered', attempts: 1, lockedBy: null, nextAttemptAt: null, updatedAt: settledAt });
    expect(await shown('dlv_0')).toEqual([
      [1, 0, 'succeeded'],
      [1, 22, 'succeeded'],
    ]);
    // The failed delivery is delivered by its new round.
    expect(await outbox.get('dlv_3')).toMatchObject({ status: 'delivered', attempts: 1, updatedAt: settledAt });
    expect(await shown('dlv_3')).toEqual([
      [1, 0, 'failed'],
      [1, 22, 'succeeded'],
    ]);
    // A new round that failed waits for its retry.
    expect(await outbox.get('dlv_2')).toMatchObject({ status: 'pending', attempts: 1, lockedBy: null, nextAttemptAt: now + 40, updatedAt: settledAt });
    expect(await shown('dlv_2')).toEqual([
      [1, 0, 'succeeded'],
      [1, 22, 'failed'],
    ]);
    // The row retried meanwhile keeps its own round; the replay's attempt is recorded beside it.
    expect(await outbox.get('dlv_1')).toMatchObject({ status: 'pending', attempts: 0, nextAttemptAt: now + 21 });
    expect(await shown('dlv_1')).toEqual([
      [1, 0, 'succeeded'],
      [1, 22, 'succeeded'],
    ]);
    // The pruned one records nothing: no attempt is left without its delivery.
    expect(await outbox.get('dlv_4')).toBeUndefined();
    expect(await shown('dlv_4')).toEqual([]);
    // dlv_3's failure, the four moved out (dlv_0, dlv_1 by its retry, dlv_2, none for dlv_3), dlv_1's and dlv_2's new attempts.
    expect(await attemptRows()).toBe(6);
  });
});

describe.each(freshStores)('replays recorded on %s, for every node', (_name, open) => {
  async function records() {
    const store = await open();
    onTestFinished(() => store.close());
    await store.init();
    await store.subscriptions.create({ id: 'sub_rpl', transport: 'webhook', consumer: 'acme', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
    const { replays } = await sqlOutbox(store);
    if (!replays) throw new Error('the SQL outbox records replays');
    return replays;
  }
  const now = Date.parse('2026-12-06T10:00:00.000Z');
  const lease = (worker: string, at: number) => ({ worker, now: at, until: at + 30_000 });
  const replay = (id: string) => ({
    id,
    subscriptionId: 'sub_rpl',
    status: 'running' as const,
    after: 0,
    until: 2_000,
    position: 0,
    replayed: 0,
    startedAt: new Date(now).toISOString(),
    finishedAt: null,
  });

  it('begins one running replay per subscription, however many workers start one at once', async () => {
    const replays = await records();
    const begun = await Promise.all(Array.from({ length: 8 }, (_, n) => replays.begin(replay(`rpl_${n}`), lease(`wkr_${n}`, now))));
    const winners = begun.flatMap((other, n) => (other === undefined ? [`rpl_${n}`] : []));
    expect(winners).toHaveLength(1);
    // Every other worker is shown the one that runs.
    for (const other of begun) if (other) expect(other.id).toBe(winners[0]);
    expect((await replays.latest('sub_rpl'))?.id).toBe(winners[0]);
    expect(await replays.latest('sub_other')).toBeUndefined();
  });

  it('records progress under its lease; is cancelled by any node; then makes way for the next', async () => {
    const replays = await records();
    const first = replay('rpl_first');
    expect(await replays.begin(first, lease('wkr_a', now))).toBeUndefined();
    expect(await replays.progress({ ...first, position: 500, replayed: 500 }, lease('wkr_a', now + 1_000))).toBe(true);
    // Another worker's progress is not written.
    expect(await replays.progress({ ...first, position: 900 }, lease('wkr_b', now + 1_000))).toBe(false);
    expect(await replays.latest('sub_rpl')).toMatchObject({ id: 'rpl_first', status: 'running', position: 500, replayed: 500 });

    const cancelled = await replays.cancel('sub_rpl', 'cancelled by request', now + 2_000);
    expect(cancelled).toMatchObject({ id: 'rpl_first', status: 'cancelled', error: 'cancelled by request', finishedAt: new Date(now + 2_000).toISOString(), position: 500 });
    // Its worker learns at its next progress, and writes nothing over the cancel; its finish neither.
    expect(await replays.progress({ ...first, position: 1_000 }, lease('wkr_a', now + 3_000))).toBe(false);
    await replays.finish({ ...first, status: 'completed', position: 2_000 }, 'wkr_a');
    expect(await replays.latest('sub_rpl')).toEqual(cancelled);
    expect(await replays.cancel('sub_rpl', 'again', now + 4_000)).toBeUndefined();

    const second = replay('rpl_second');
    expect(await replays.begin(second, lease('wkr_b', now + 5_000))).toBeUndefined();
    await replays.finish({ ...second, status: 'completed', position: 2_000, finishedAt: new Date(now + 6_000).toISOString() }, 'wkr_b');
    expect(await replays.latest('sub_rpl')).toMatchObject({ id: 'rpl_second', status: 'completed', position: 2_000 });
  });

  it("takes over, once, a replay whose lease ended, and only for the subscription's transport", async () => {
    const replays = await records();
    const dead = { ...replay('rpl_dead'), position: 1_000 };
    expect(await replays.begin(dead, lease('wkr_dead', now))).toBeUndefined();
    expect(await replays.takeOver('webhook', lease('wkr_live', now + 29_000))).toEqual([]);
    expect(await replays.takeOver('amqp', lease('wkr_live', now + 31_000))).toEqual([]);
    const [taken, ...more] = await Promise.all([replays.takeOver('webhook', lease('wkr_live', now + 31_000)), replays.takeOver('webhook', lease('wkr_other', now + 31_000))]);
    expect([...(taken ?? []), ...more.flat()].map((view) => view.id)).toEqual(['rpl_dead']);
    // The dead worker's late writes are refused; the new one's are not.
    const winner = taken?.length === 1 ? 'wkr_live' : 'wkr_other';
    expect(await replays.progress({ ...dead, position: 1_500 }, lease('wkr_dead', now + 32_000))).toBe(false);
    expect(await replays.progress({ ...dead, position: 1_500 }, lease(winner, now + 32_000))).toBe(true);
    // A worker that hands its replay over ends its lease at once.
    expect(await replays.progress({ ...dead, position: 1_600 }, { worker: winner, now: now + 33_000, until: 0 })).toBe(true);
    expect((await replays.takeOver('webhook', lease('wkr_next', now + 33_001))).map((view) => view.position)).toEqual([1_600]);
  });
});
