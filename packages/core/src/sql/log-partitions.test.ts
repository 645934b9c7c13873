import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it, onTestFailed, onTestFinished } from 'vitest';
import type { NewEvent } from '../envelope.js';
import type { LogHold } from './log-prune.js';
import { agedEvent, day, now, pruneAll, rules } from './log-prune.test-support.js';
import { postgresStore } from './postgres-store.js';
import { freshDatabase } from './postgres.test-support.js';
import type { HeraldDatabase } from './schema.js';
import { postgresFlavor } from './sql-flavor.js';
import type { SqlStore } from './sql-store.js';
import { migrate } from './migrations.js';

const event = agedEvent;
const many = (count: number, type = 'order.created', age = 0) => Array.from({ length: count }, () => event(type, age));

/** A fresh database, and a way to query it as an operator would. */
async function database() {
  const fresh = await freshDatabase();
  onTestFinished(fresh.drop);
  return {
    ...fresh,
    /** The log's partitions as PostgreSQL has them: their names, lowest first. */
    partitions: async () =>
      (
        await fresh.query<{ name: string }>(`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
          where i.inhparent = 'herald_events'::regclass order by c.relname`)
      )
        .map((row) => row.name)
        .sort((a, b) => Number(a.split('_').at(-1)) - Number(b.split('_').at(-1))),
    /** Whether a table of that name exists at all (dropped, not only detached). */
    exists: async (table: string) => (await fresh.query(`select 1 from pg_class where relname = '${table}'`)).length > 0,
    count: async (table: string) => Number((await fresh.query<{ n: string }>(`select count(*) as n from ${table}`))[0]?.n),
  };
}

/** A store with partitions of 1,000 seqs (the smallest allowed), closed after the test. */
async function open(url: string, logPartitionSize = 1000): Promise<SqlStore> {
  const store = postgresStore({ url, logPartitionSize });
  onTestFinished(() => store.close());
  await store.init();
  return store;
}

describe('the partitioned log (PostgreSQL)', () => {
  it('validates logPartitionSize', () => {
    for (const size of [0, 999, 1.5, 100_000_001, Number.NaN]) {
      expect(() => postgresStore({ url: 'postgres://127.0.0.1/none', logPartitionSize: size })).toThrow(/logPartitionSize must be a whole number from 1,000/);
    }
  });

  it('makes partitions ahead of the appends, and one that an append finds missing', async () => {
    const db = await database();
    const store = await open(db.url);
    expect(await db.partitions()).toEqual(['herald_events_from_1', 'herald_events_from_1001']);
    await store.append(many(1500));
    // Past half of the last partition: the next one is made in the background.
    await expect.poll(db.partitions).toEqual(['herald_events_from_1', 'herald_events_from_1001', 'herald_events_from_2001']);
    // 3,000 rows at once go past every partition made: the append makes them first.
    const results = await store.append(many(3000));
    expect(results.map((r) => r.event.seq)).toEqual(Array.from({ length: 3000 }, (_, at) => 1501 + at));
    await expect.poll(db.partitions).toContain('herald_events_from_5001');
    // A partition gone from under the store (an operator dropped it): the append that finds none makes it, and goes on.
    await db.query('drop table herald_events_from_5001');
    const after = await store.append(many(600));
    expect(after.every((result) => result.created)).toBe(true);
    expect(await db.partitions()).toContain('herald_events_from_5001');
    const log = await store.read({ after: 4500, limit: 1000 });
    expect(log.map((e) => e.id)).toEqual(after.map((r) => r.event.id));
  });

  it('drops whole partitions beyond HERALD_LOG_MAX_EVENTS; reads, oldest, and an id published again after its event was pruned', async () => {
    const db = await database();
    const store = await open(db.url);
    const appended = await store.append(many(5000));
    expect(appended.map((r) => r.event.seq)).toEqual(Array.from({ length: 5000 }, (_, at) => at + 1));
    // The newest 1,500 are kept: seqs 3501 to 5000. Partitions 1-1000, 1001-2000 and 2001-3000 are wholly beyond that.
    expect(await pruneAll(store, rules({ maxEvents: 1500 }))).toBe(3000);
    for (const gone of ['herald_events_from_1', 'herald_events_from_1001', 'herald_events_from_2001']) expect(await db.exists(gone)).toBe(false);
    expect((await db.partitions())[0]).toBe('herald_events_from_3001');
    // 3001-3500 are beyond the limit too, but share their partition with events within it: they stay until it goes.
    expect((await store.read({ after: 0, limit: 1 }))[0]?.seq).toBe(3001);
    expect(await store.bounds()).toEqual({ oldest: 3001, latest: 5000 });
    expect((await store.logSize()).events).toBe(2000);
    expect(await db.count('herald_event_ids')).toBe(2000);
    // A resume from before the floor reads on from the oldest event there is.
    expect((await store.read({ after: 1200, limit: 3 })).map((e) => e.seq)).toEqual([3001, 3002, 3003]);

    // The id of a pruned event is free again: publishing it appends a new event (as on SQLite).
    const [again] = await store.append([appended[0]?.event as NewEvent]);
    expect(again?.created).toBe(true);
    expect(again?.event.seq).toBeGreaterThan(5000);
    // The id of an event still in the log is not: the same event comes back.
    const [kept] = await store.append([{ ...(appended[4000]?.event as NewEvent), data: { changed: true } }]);
    expect(kept).toEqual({ created: false, event: { ...appended[4000]?.event, data: appended[4000]?.event.data } });
    // Nothing more to do.
    expect(await store.prune(rules({ maxEvents: 1500 }), now)).toEqual({ pruned: 0, floor: 3000, more: false });
  });

  it('two nodes pruning the same log at once drop each partition once', async () => {
    const db = await database();
    const [one, two] = [await open(db.url), await open(db.url)];
    await one.append(many(5000));
    const pruned = await Promise.all([pruneAll(one as SqlStore, rules({ maxEvents: 1500 })), pruneAll(two as SqlStore, rules({ maxEvents: 1500 }))]);
    expect(pruned[0] + pruned[1]).toBe(3000);
    expect((await db.partitions())[0]).toBe('herald_events_from_3001');
    expect(await two.bounds()).toEqual({ oldest: 3001, latest: 5000 });
    expect(await db.count('herald_event_ids')).toBe(2000);
  });

  it('prunes by age a partition at a time, never the newest event', async () => {
    const db = await database();
    const store = await open(db.url);
    await store.append([...many(1500, 'order.created', 40 * day), ...many(600)]);
    // 1-1500 are older than 30 days; only the partition 1-1000 is wholly so.
    expect(await pruneAll(store, rules())).toBe(1000);
    expect(await db.partitions()).not.toContain('herald_events_from_1');
    expect((await store.bounds()).oldest).toBe(1001);
    expect(await store.read({ after: 0, limit: 10_000 })).toHaveLength(1100);

    const old = await open((await database()).url);
    await old.append(many(2000, 'order.created', 40 * day));
    // All of them are old, but the newest is the head of the log: its partition stays.
    expect(await pruneAll(old, rules())).toBe(1000);
    expect((await old.bounds()).latest).toBe(2000);
  });

  it('never drops a partition from the seq a hold needs (a pending push delivery)', async () => {
    const db = await database();
    const store = await open(db.url);
    await store.append(many(3500));
    let held: number | undefined = 1500;
    const hold: LogHold = async () => held;
    await store.extend({ name: 'test_hold', migrations: () => ({}), create: (context) => context.holdLog(hold) });
    expect(await pruneAll(store, rules({ maxEvents: 10 }))).toBe(1000);
    expect(await db.partitions()).toContain('herald_events_from_1001');
    expect((await store.read({ after: 0, limit: 1 }))[0]?.seq).toBe(1001);
    held = undefined;
    expect(await pruneAll(store, rules({ maxEvents: 10 }))).toBe(2000);
    expect((await store.bounds()).oldest).toBe(3001);
  });

  it("sweeps a partition that holds events their type keeps, and drops it once it holds none", async () => {
    const db = await database();
    const store = await open(db.url);
    const old = 40 * day;
    // Partition 1-1000: an audit event (kept 90 days), account updates (compacted by subject), the rest plain.
    const first = [event('audit.logged', old), event('account.updated', old, 'acct-1'), event('account.updated', old, 'acct-2'), event('account.updated', old, 'acct-2')];
    await store.append([...first, ...many(996, 'order.created', old)]);
    // Partition 1001-2000: a newer update of acct-1, the rest plain; then fresh events.
    const newer = await store.append([event('account.updated', old, 'acct-1'), ...many(999, 'order.created', old)]);
    // The next partition, made in the background, before the appends reach it (else their first seqs drawn stay gaps).
    await expect.poll(db.partitions).toContain('herald_events_from_2001');
    await store.append(many(500));
    const types = new Map<string, { maxAge?: number; compaction?: 'subject' }>([
      ['audit.logged', { maxAge: 90 * day }],
      ['account.updated', { compaction: 'subject' }],
    ]);
    expect(await pruneAll(store, rules({ types }))).toBe(2000 - 3);
    const keptSeqs = [1, 4, newer[0]?.event.seq];
    expect((await store.read({ after: 0, limit: 4 })).map((e) => e.seq)).toEqual([...keptSeqs, 2001]);
    expect(await store.bounds()).toEqual({ oldest: 2001, latest: 2500 });
    // Swept, not dropped: they still hold kept events.
    expect(await db.partitions()).toEqual(expect.arrayContaining(['herald_events_from_1', 'herald_events_from_1001']));
    expect(await db.count('herald_event_ids')).toBe(503);

    // The audit event's own retention ends; a newer update of acct-2 replaces the kept one.
    const [update] = await store.append([event('account.updated', 0, 'acct-2')]);
    const shorter = new Map([...types, ['audit.logged', { maxAge: 35 * day }]]);
    for (let round = 0; round < 3; round++) await store.prune(rules({ types: shorter }), now);
    expect(await db.exists('herald_events_from_1')).toBe(false);
    expect(await db.exists('herald_events_from_1001')).toBe(true);
    expect((await store.read({ after: 0, limit: 2 })).map((e) => e.seq)).toEqual([newer[0]?.event.seq, 2001]);
    expect((await store.read({ after: 0, limit: 1000, types: ['account.updated'] })).map((e) => e.seq)).toEqual([newer[0]?.event.seq, update?.event.seq]);
  });

  it('goes on when another maker, not taking its lock, made the same partition meanwhile (a node of an earlier version)', async () => {
    const db = await database();
    const store = await open(db.url);
    // A node of an earlier version took another lock to make partitions: it makes the next one in a transaction still open.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    onTestFinished(() => other.end());
    await other.query('begin');
    await other.query('create table herald_events_from_2001 (like herald_events)');
    await other.query('alter table herald_events attach partition herald_events_from_2001 for values from (2001) to (3001)');
    // 3,000 rows go past both partitions made at start: the append makes 2001 on, and waits on the other's table.
    const appended = store.append(many(3000));
    await expect
      .poll(async () => (await db.query(`select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like 'create table herald_events_from_2001%'`)).length)
      .toBe(1);
    await other.query('commit');
    const results = await appended;
    expect(results.map((r) => r.event.seq)).toEqual(Array.from({ length: 3000 }, (_, at) => 1 + at));
    // The other's partition kept, and the store's next one made after it.
    expect(await db.partitions()).toEqual(['herald_events_from_1', 'herald_events_from_1001', 'herald_events_from_2001', 'herald_events_from_3001']);
    expect(await db.count('herald_events')).toBe(3_000);
  });

  it('makes partitions while an app transaction that published is open: the other appends never wait for it', async () => {
    const db = await database();
    const store = await open(db.url);
    const app = new Kysely<HeraldDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db.url, max: 1 }) }) });
    onTestFinished(() => app.destroy());
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let published = () => {};
    const publishedIn = new Promise<void>((resolve) => {
      published = resolve;
    });
    const appTransaction = app.transaction().execute(async (trx) => {
      await store.appendIn(trx, many(1));
      published();
      await released;
    });
    onTestFinished(async () => {
      release();
      await appTransaction;
    });
    await publishedIn;
    // Past the two partitions made at start: the store makes more, while the app's transaction holds its append open.
    const appends = (async () => {
      for (let n = 0; n < 25; n++) await store.append(many(100));
    })();
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('stalled'), 20_000);
    });
    expect(await Promise.race([appends.then(() => 'appended'), stalled])).toBe('appended');
    clearTimeout(timer);
    expect(await db.partitions()).toContain('herald_events_from_2001');
    release();
    await appTransaction;
    expect(await db.count('herald_events')).toBe(2_501);
  }, 60_000);

  it('appends from several stores at once across partition boundaries: every event once, in seq order, no reader skips one', async () => {
    const db = await database();
    const stores = [await open(db.url), await open(db.url), await open(db.url)];
    const tailed: number[] = [];
    let appending = true;
    let appended = 0;
    // Should it ever hang (it failed so once, in a loaded CI run), say where it was.
    onTestFailed(() => console.error(`appended ${appended} of 4500 events; the tail read ${tailed.length}, up to seq ${tailed.at(-1)}`));
    const tail = (async () => {
      const reader = stores[0] as SqlStore;
      let appendedAt: number | undefined;
      while (appending || tailed.length < 4500) {
        // Every append in, the tail has 20 s to read them all; if it does not, the expectations below say whether it skipped one or stopped.
        if (!appending && Date.now() - (appendedAt ??= Date.now()) > 20_000) break;
        const read = await reader.read({ after: tailed.at(-1) ?? 0, limit: 500 });
        tailed.push(...read.map((e) => e.seq));
      }
    })();
    const published = await Promise.all(
      stores.flatMap((store) => Array.from({ length: 5 }, async () => {
        const results = [];
        for (let batch = 0; batch < 30; batch++) {
          results.push(...(await store.append(many(10))));
          appended += 10;
        }
        return results;
      })),
    );
    appending = false;
    await tail;
    const log = await stores[1]?.read({ after: 0, limit: 10_000 });
    expect(log).toHaveLength(4500);
    expect(new Set(log?.map((e) => e.id))).toEqual(new Set(published.flat().map((r) => r.event.id)));
    expect(tailed).toEqual(log?.map((e) => e.seq));
    expect((await db.partitions()).length).toBeGreaterThanOrEqual(5);
  }, 60_000);

  it('converts a log made before partitions: every event, seq and id kept, ids still idempotent', async () => {
    const db = await database();
    const kysely = new Kysely<HeraldDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db.url, max: 2 }) }) });
    await migrate(kysely as Kysely<unknown>, postgresFlavor, '0020_event_trace_context');
    // Rows as the store wrote them then: some before append tickets (no ticket), some drawn with one; a pruned gap.
    for (let n = 1; n <= 30; n++) {
      await sql`insert into herald_events (id, type, source, time, datacontenttype, data) values (${`evt_old_${n}`}, 'order.created', '/test', '2026-05-31T00:00:00.000Z', 'application/json', ${JSON.stringify({ n })})`.execute(kysely);
    }
    await sql`insert into herald_events (seq, ticket, id, type, source, time, datacontenttype, data)
      select seq, ticket, 'evt_ticketed', 'order.created', '/test', '2026-05-31T00:00:00.000Z', 'application/json', '{}' from herald_claim_seqs(1)`.execute(kysely);
    await sql`delete from herald_events where seq between 5 and 9`.execute(kysely);
    const before = (await sql<{ seq: string; id: string }>`select seq, id from herald_events order by seq`.execute(kysely)).rows;
    await kysely.destroy();

    const store = await open(db.url);
    expect((await store.read({ after: 0, limit: 100 })).map((e) => ({ seq: String(e.seq), id: e.id }))).toEqual(before);
    expect(await db.partitions()).toEqual(['herald_events_from_0', 'herald_events_from_32', 'herald_events_from_1001']);
    expect(await db.query("select 1 from pg_indexes where tablename = 'herald_events_from_0' and indexdef like '%(id)%'")).toEqual([]);
    // An id logged before the conversion is still the same event.
    const [old] = await store.append([{ ...event('order.created', 0), id: 'evt_old_3' }]);
    expect(old).toMatchObject({ created: false, event: { id: 'evt_old_3', seq: 3, data: { n: 3 } } });
    const [next] = await store.append([event('order.created', 0)]);
    // 32 was drawn for evt_old_3, and stays a gap.
    expect(next?.event.seq).toBe(33);
    // The old table is a partition like the others: pruned whole.
    expect(await pruneAll(store, rules({ maxEvents: 1 }))).toBe(before.length);
    expect(await db.exists('herald_events_from_0')).toBe(false);
    expect(await store.read({ after: 0, limit: 100 })).toEqual([{ ...next?.event, specversion: '1.0' }]);
  });
});
