import { sqliteStore, StoreUnavailableError } from '@herald/core';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { newEvent } from '../../testkit/src/index.js';
import { describe, expect, it, onTestFinished } from 'vitest';
// By path, as the integration tests do: core's helpers for a lock held by another process and for stalls of the event loop.
import { holdSqliteLock } from '../../core/src/sql/sqlite.test-support.js';
import { longestStall } from '../../core/src/stall.test-support.js';
import type { NewDelivery, Outbox } from './outbox.js';
import { sqlOutbox } from './sql-outbox.js';

let counter = 0;

/** A store on a file, with an event, a subscription and a delivery, so that every outbox write has something to act on. */
async function withData(lockTimeout: number) {
  const path = tempDatabase();
  const store = sqliteStore({ path, lockTimeout });
  onTestFinished(() => store.close());
  await store.init();
  const outbox = await sqlOutbox(store);
  const [appended] = await store.append([newEvent('order.created')]);
  const event = { seq: appended?.event.seq as number, id: appended?.event.id as string };
  await store.subscriptions.create({ id: 'sub_gate', consumer: 'acme', transport: 'webhook', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
  await outbox.replay([delivery(1, event)], Date.now());
  return { path, store, outbox, event };
}

function delivery(n: number, event: { seq: number; id: string }): NewDelivery {
  return { id: `dlv_gate_${n}`, subscriptionId: 'sub_gate', eventSeq: event.seq, eventId: event.id, nextAttemptAt: Date.now() };
}

/** Every write of the outbox, each given something it would change. */
function everyWrite(outbox: Outbox, event: { seq: number; id: string }): Record<string, () => Promise<unknown>> {
  const now = Date.now();
  const lease = { worker: 'wrk_gate', now, until: now + 60_000 };
  return {
    position: () => outbox.position(`webhook-${counter++}`, 0),
    commit: () => outbox.commit({ lease, claim: [{ subscriptionId: 'sub_gate', limit: 10 }] }),
    recoverHold: () => outbox.recoverHold('hld_none', [], now),
    release: () => outbox.release('wrk_gate', ['dlv_gate_1']),
    retry: () => outbox.retry('dlv_gate_1', now),
    replay: () => outbox.replay([delivery(2, event)], now),
    abandon: () => outbox.abandon('sub_gate', now),
    purge: () => outbox.purge('sub_gate_gone'),
    prune: () => outbox.prune('webhook', now + 1),
  };
}

describe('the SQL outbox while another process holds the write lock', () => {
  it("refuses every write with the store's 503 after its lock timeout, never blocking the event loop; reads go on", async () => {
    const { path, store, outbox, event } = await withData(300);
    const holder = await holdSqliteLock(path);
    onTestFinished(() => holder.kill());

    const { result: outcomes, stall } = await longestStall(() =>
      Promise.all(Object.entries(everyWrite(outbox, event)).map(async ([name, write]) => ({ name, error: await write().then(() => undefined, (error: unknown) => error) }))),
    );
    for (const { name, error } of outcomes) {
      expect(error, name).toBeInstanceOf(StoreUnavailableError);
      expect({ name, status: (error as StoreUnavailableError).status, code: (error as StoreUnavailableError).code }).toEqual({ name, status: 503, code: 'store-locked' });
    }
    expect(stall, 'the longest stall of the event loop, in ms').toBeLessThan(100);
    expect(await outbox.backlog('webhook')).toBe(1);
    // The store knows it refuses writes, whichever of its writers found out.
    await expect(store.ping()).rejects.toMatchObject({ status: 503, code: 'store-locked' });

    await holder.release();
    await store.ping();
    for (const [name, write] of Object.entries(everyWrite(outbox, event))) await expect(write(), name).resolves.not.toThrow();
  });

  it('a commit waits out a lock shorter than its timeout on timers, and then commits once', async () => {
    const { path, outbox, store } = await withData(10_000);
    const holder = await holdSqliteLock(path);
    onTestFinished(() => holder.kill());
    const { result, stall } = await longestStall(async () => {
      const committed = outbox.commit({ lease: { worker: 'wrk_wait', now: Date.now(), until: Date.now() + 60_000 }, claim: [{ subscriptionId: 'sub_gate', limit: 10 }] });
      let done = false;
      const finished = () => {
        done = true;
      };
      void committed.then(finished, finished);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(done, 'it waits while the lock is held').toBe(false);
      await holder.release();
      return committed;
    });
    expect(stall).toBeLessThan(100);
    expect(result.claimed.map((claimed) => claimed.delivery.id)).toEqual(['dlv_gate_1']);
    expect((await outbox.get('dlv_gate_1'))?.lockedBy).toBe('wrk_wait');
    await store.ping();
  });
});
