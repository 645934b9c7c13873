import { statSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../temp-folder.test-support.js';
import { agedEvent, day, now, pruneAll, rules } from './log-prune.test-support.js';
import type { SqlStore } from './sql-store.js';
import { sqliteStore } from './sqlite-store.js';

const event = agedEvent;

// PostgreSQL prunes a partition at a time: its rules are tested in log-partitions.test.ts.
const stores: [string, () => Promise<SqlStore>][] = [
  [
    'SQLite',
    async () => {
      const store = sqliteStore({ path: tempDatabase() });
      onTestFinished(() => store.close());
      await store.init();
      return store;
    },
  ],
];

describe.each(stores)('pruning the log (%s)', (_name, open) => {
  it('keeps the newest HERALD_LOG_MAX_EVENTS events, and oldest says where the log starts', async () => {
    const store = await open();
    const appended = await store.append(Array.from({ length: 3000 }, () => event('order.created', 0)));
    const first = (appended[0]?.event.seq as number) - 1;
    expect(await pruneAll(store, rules({ maxEvents: 1000 }))).toBe(2000);
    const read = await store.read({ after: 0, limit: 5 });
    expect(read[0]?.seq).toBe(first + 2001);
    expect(await store.bounds()).toEqual({ oldest: first + 2001, latest: first + 3000 });
    expect((await store.logSize()).events).toBe(1000);
    // Nothing more to do: a round prunes nothing.
    expect(await store.prune(rules({ maxEvents: 1000 }), now)).toEqual({ pruned: 0, floor: first + 2000, more: false });
  });

  it('prunes by age, but never the newest event', async () => {
    const store = await open();
    await store.append([...Array.from({ length: 10 }, () => event('order.created', 40 * day)), ...Array.from({ length: 5 }, () => event('order.created', day))]);
    expect(await pruneAll(store, rules())).toBe(10);
    expect(await store.read({ after: 0, limit: 100 })).toHaveLength(5);
    const old = await open();
    await old.append(Array.from({ length: 3 }, () => event('order.created', 40 * day)));
    expect(await pruneAll(old, rules())).toBe(2);
    expect((await old.bounds()).latest).toBe((await old.read({ after: 0, limit: 10 }))[0]?.seq);
  });

  it('never prunes from the seq a hold needs (a pending push delivery)', async () => {
    const store = await open();
    const seqs = (await store.append(Array.from({ length: 100 }, () => event('order.created', 0)))).map((r) => r.event.seq);
    const held = seqs[30] as number;
    await store.extend({ name: 'test_hold', migrations: () => ({}), create: (context) => context.holdLog(async () => held) });
    await pruneAll(store, rules({ maxEvents: 10 }));
    expect((await store.read({ after: 0, limit: 1 }))[0]?.seq).toBe(held);
    expect((await store.bounds()).oldest).toBe(held);
  });

  it("keeps a type's events for its own retention, longer or shorter than the log's", async () => {
    const store = await open();
    await store.append([event('audit.logged', 60 * day), event('order.created', 40 * day), event('debug.traced', 2 * day), event('order.created', day), event('debug.traced', 0)]);
    const types = new Map([
      ['audit.logged', { maxAge: 90 * day }],
      ['debug.traced', { maxAge: day }],
    ]);
    expect(await pruneAll(store, rules({ types }))).toBe(2);
    expect((await store.read({ after: 0, limit: 10 })).map((e) => e.type)).toEqual(['audit.logged', 'order.created', 'debug.traced']);
    // The audit event, kept below the floor, goes once its own retention is over.
    expect(await pruneAll(store, rules({ types: new Map([...types, ['audit.logged', { maxAge: 50 * day }]]) }))).toBe(1);
  });

  it('compacts by subject: 100 subjects × 50 updates keep exactly the newest of each', async () => {
    const store = await open();
    const newest = new Map<string, number>();
    for (let round = 0; round < 50; round++) {
      const results = await store.append(Array.from({ length: 100 }, (_, s) => event('account.updated', 40 * day, `acct-${s}`)));
      for (const { event: e } of results) newest.set(e.subject as string, e.seq);
    }
    // One more event, so that the newest account update is not the head of the log (which is never pruned).
    await store.append([event('order.created', 0)]);
    const compacted = rules({ types: new Map([['account.updated', { compaction: 'subject' as const }]]) });
    expect(await pruneAll(store, compacted)).toBe(4900);
    const kept = await store.read({ after: 0, limit: 1000, types: ['account.updated'] });
    expect(kept.map((e) => e.seq)).toEqual([...newest.values()].sort((a, b) => a - b));
    // A newer update of one subject, once beyond the log's limits too, replaces its kept one.
    const [update] = await store.append([event('account.updated', 0, 'acct-7'), event('order.created', 0)]);
    await pruneAll(store, { ...compacted, maxEvents: 1 });
    const after = await store.read({ after: 0, limit: 1000, types: ['account.updated'] });
    expect(after).toHaveLength(100);
    expect(after.find((e) => e.subject === 'acct-7')?.seq).toBe(update?.event.seq);
  });
});

describe('pruning SQLite', () => {
  it('stops the file from growing: new events reuse the pages of pruned ones', async () => {
    const path = tempDatabase();
    const store = sqliteStore({ path });
    onTestFinished(() => store.close());
    await store.init();
    const limit = rules({ maxEvents: 2000 });
    const fileSize = () => statSync(path).size + statSync(`${path}-wal`).size;
    let steady = 0;
    // The write-ahead log grows up to its checkpoint (1,000 pages) once, then is written over from its start.
    for (let round = 0; round < 24; round++) {
      await store.append(Array.from({ length: 1000 }, () => event('order.created', 0)));
      await pruneAll(store, limit);
      if (round === 11) steady = fileSize();
    }
    expect(steady).toBeGreaterThan(0);
    expect(fileSize()).toBeLessThanOrEqual(steady * 1.2);
    expect((await store.logSize()).events).toBe(2000);
  });
});
