import pg from 'pg';
import { sql } from 'kysely';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
// By path rather than by package name: @herald/testkit depends on @herald/core, so a dependency back would be a cycle.
import { runStoreSuite } from '../../../testkit/src/store-suite.js';
import type { HeraldEvent, NewEvent } from '../envelope.js';
import { StoreUnavailableError, ValidationError } from '../errors.js';
import { EventBus } from '../event-bus.js';
import { EventCatalog, eventTypeFromJsonSchema } from '../event-type-catalog.js';
import { recordingLogger } from '../../../testkit/src/recording-logger.js';
import { memoryBroker } from '../memory-broker.js';
import { postgresStore } from './postgres-store.js';
import { adminUrl, freshDatabase } from './postgres.test-support.js';
import { postgresFlavor } from './sql-flavor.js';
import type { SqlStore } from './sql-store.js';

async function database(): Promise<string> {
  const { url, drop } = await freshDatabase();
  onTestFinished(drop);
  return url;
}

/** An initialised store on `url`, closed after the test. */
async function open(url: string, maxConnections?: number): Promise<SqlStore> {
  const store = postgresStore({ url, ...(maxConnections !== undefined ? { maxConnections } : {}) });
  let closed = false;
  const close = store.close.bind(store);
  store.close = async () => {
    closed = true;
    await close();
  };
  onTestFinished(async () => {
    if (!closed) await store.close();
  });
  await store.init();
  return store;
}

let counter = 0;
function newEvent(type: string, data: unknown = {}): NewEvent {
  counter += 1;
  return {
    specversion: '1.0',
    id: `evt_pg_${process.pid}_${counter}`,
    type,
    source: '/test',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

runStoreSuite('PostgreSQL', {
  async create() {
    const { url, drop } = await freshDatabase();
    return { open: () => postgresStore({ url }), dispose: drop };
  },
});

describe('postgresStore', () => {
  it("stores a subscription's filter, changes it and removes it with null", async () => {
    const store = await open(await database());
    const filter = { 'data.total': { $gte: 100 }, $or: [{ subject: { $startsWith: 'eu-' } }, { 'data.tags': 'vip' }] };
    const fields = { consumer: 'acme', transport: 'webhook', types: ['order.*'], status: 'active' as const, config: {}, cursor: 0 };
    await store.subscriptions.create({ id: 'sub_filter', ...fields, filter });
    expect((await store.subscriptions.get('sub_filter'))?.filter).toEqual(filter);
    await store.subscriptions.update('sub_filter', { filter: { type: 'order.created' } });
    expect((await store.subscriptions.get('sub_filter'))?.filter).toEqual({ type: 'order.created' });
    await store.subscriptions.update('sub_filter', { filter: null });
    expect(await store.subscriptions.get('sub_filter')).not.toHaveProperty('filter');
  });

  it('takes a url or a pool, not both and not neither', async () => {
    expect(() => postgresStore({})).toThrow(/either `url` or `pool`/);
    expect(() => postgresStore({ url: adminUrl, pool: new pg.Pool() })).toThrow(/either `url` or `pool`/);
    expect(() => postgresStore({ url: 'mysql://localhost/db' })).toThrow(/postgres:\/\//);
  });

  it('says where it cannot start and why, without the password, rather than "unavailable for now"', async () => {
    const logger = recordingLogger();
    const refused = postgresStore({ url: 'postgres://herald:s3cret@127.0.0.1:1/herald', logger });
    await expect(refused.init()).rejects.toThrow(
      new Error('postgresStore cannot start on the database at postgres://***@127.0.0.1:1/herald: connect ECONNREFUSED 127.0.0.1:1'),
    );
    // Its start says it, alone: no "the store refuses writes … try again shortly" before it.
    expect(logger.entries).toEqual([]);
    await refused.close();
    const unknown = new URL(adminUrl);
    unknown.pathname = '/herald_no_such_database';
    const missing = postgresStore({ pool: new pg.Pool({ connectionString: unknown.href }) });
    await expect(missing.init()).rejects.toThrow(
      new Error('postgresStore cannot start on the database of the pool it was given: database "herald_no_such_database" does not exist (3D000)'),
    );
    await missing.close();
  });

  it('runs on a pg Pool it is given, and ends it on close', async () => {
    const url = await database();
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const store = postgresStore({ pool });
    await store.init();
    const [result] = await store.append([newEvent('order.created', { big: 2 ** 40 })]);
    expect(result?.event.seq).toBe(1);
    expect(typeof result?.event.seq).toBe('number');
    expect((await store.read({ after: 0, limit: 5 }))[0]?.data).toEqual({ big: 2 ** 40 });
    await store.close();
    expect(pool.ended).toBe(true);
  });

  it('init is safe on an already migrated database, also from several nodes at once', async () => {
    const url = await database();
    const stores = await Promise.all(Array.from({ length: 3 }, () => open(url, 2)));
    await stores[0]?.append([newEvent('order.created')]);
    const again = await open(url, 2);
    await expect.poll(() => again.bounds()).toEqual({ oldest: 1, latest: 1 });
  });

  it('draws the seqs of every append under the append lock, and does not hold it to the commit', async () => {
    const url = await database();
    const store = await open(url);
    // Hold the lock from outside: an append must wait for it to draw its seqs.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    onTestFinished(() => holder.end());
    await holder.query('begin');
    await holder.query('select pg_advisory_xact_lock($1)', [0x6865_7261_6c64]);
    let appended = false;
    const append = store.append([newEvent('order.created')]).then((results) => {
      appended = true;
      return results;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(appended).toBe(false);
    await holder.query('commit');
    expect((await append)[0]?.created).toBe(true);
    // Once an append has drawn, the lock is free again though its transaction is still open.
    await holder.query('begin');
    expect((await holder.query('select seq from herald_claim_seqs(1)')).rowCount).toBe(1);
    expect((await store.append([newEvent('order.created')]))[0]?.created).toBe(true);
    await holder.query('rollback');
  });
});

describe('resume across concurrent writers', () => {
  const catalog = new EventCatalog();
  catalog.add(eventTypeFromJsonSchema('tick', { type: 'object' }), 'api');

  it(
    'a reader tailing "after the last seq seen" sees every seq exactly once while 8 nodes append at once',
    async () => {
      const url = await database();
      const writers = await Promise.all(Array.from({ length: 8 }, () => open(url, 2)));
      const readerStore = await open(url, 2);
      // An EventBus on its own store and broker hears no ring from the writers: it finds their events by polling.
      const bus = new EventBus({ store: readerStore, broker: memoryBroker(), catalog, pollInterval: 5, batchSize: 50 });
      await bus.start();
      onTestFinished(() => bus.stop());
      const heardByBus: number[] = [];
      bus.onEvents((events) => heardByBus.push(...events.map((event) => event.seq)));

      let writing = true;
      const seenByReader: number[] = [];
      const tail = (async () => {
        let last = 0;
        for (let idle = 0; writing || idle < 2; ) {
          const page = await readerStore.read({ after: last, limit: 100 });
          if (page.length === 0) idle += writing ? 0 : 1;
          for (const event of page) seenByReader.push(event.seq);
          last = page.at(-1)?.seq ?? last;
        }
      })();

      const perLoop = 60;
      const acknowledged: HeraldEvent[] = [];
      await Promise.all(
        writers.flatMap((store, node) =>
          Array.from({ length: 4 }, async (_, loop) => {
            for (let n = 0; n < perLoop; n++) {
              const batch = n % 5 === 4 ? [newEvent('tick', { node, loop, n }), newEvent('tick', { node, loop, n: -n })] : [newEvent('tick', { node, loop, n })];
              for (const result of await store.append(batch)) acknowledged.push(result.event);
            }
          }),
        ),
      );
      writing = false;
      await tail;

      const log = (await readerStore.read({ after: 0, limit: 100_000 })).map((event) => event.seq);
      expect(log.length).toBe(acknowledged.length);
      expect(new Set(acknowledged.map((event) => event.seq)).size).toBe(acknowledged.length);
      expect(seenByReader).toEqual(log);
      await expect.poll(() => heardByBus.length, { timeout: 15_000 }).toBe(log.length);
      expect(heardByBus).toEqual(log);
    },
    60_000,
  );

  it(
    'a reader never reads past an append that is ending: 24 appenders for 8 s, and not one seq skipped',
    async () => {
      // Before the horizon read the lock table once and asked ended transactions their status, a reader skipped a
      // committing append's rows about once every 8 s of this load (its marker was gone, its id lock still shown).
      const url = await database();
      const stores = await Promise.all(Array.from({ length: 4 }, () => open(url, 2)));
      const reader = stores[0] as SqlStore;
      let appending = true;
      const skips: string[] = [];
      let last = 0;
      const tail = (async () => {
        for (let idle = 0; appending || idle < 2; ) {
          const page = await reader.read({ after: last, limit: 500 });
          if (page.length === 0) idle += appending ? 0 : 1;
          for (const event of page) {
            if (event.seq !== last + 1) skips.push(`after ${last} came ${event.seq}`);
            last = event.seq;
          }
        }
      })();
      const until = Date.now() + 8_000;
      let appended = 0;
      await Promise.all(
        stores.flatMap((store) =>
          Array.from({ length: 6 }, async () => {
            while (Date.now() < until) {
              const results = await store.append([newEvent('tick'), newEvent('tick')]);
              appended += results.length;
            }
          }),
        ),
      );
      appending = false;
      await tail;
      // Every append here succeeds, so the log has no gaps: a jump in what the reader saw is a skip.
      expect(skips).toEqual([]);
      expect(last).toBe(appended);
    },
    60_000,
  );

  it('two nodes appending the same id at once store it once, and both get its first result', async () => {
    const url = await database();
    const [a, b] = await Promise.all([open(url, 2), open(url, 2)]);
    for (let round = 0; round < 20; round++) {
      const event = newEvent('tick', { round });
      const [fromA, fromB] = await Promise.all([a?.append([event]), b?.append([{ ...event, data: { other: true } }])]);
      expect([fromA?.[0]?.created, fromB?.[0]?.created].sort()).toEqual([false, true]);
      expect(fromA?.[0]?.event).toEqual(fromB?.[0]?.event);
      expect(fromA?.[0]?.event.data).toEqual(fromA?.[0]?.created ? { round } : { other: true });
    }
    await expect.poll(async () => (await a?.read({ after: 0, limit: 100 }))?.length).toBe(20);
  });
});

describe('PostgreSQL refusing writes (issue 13)', () => {
  it('a write refused by a read-only database is a 503 with its error as the cause; ping fails until writes succeed', async () => {
    const { url, query, drop } = await freshDatabase();
    onTestFinished(drop);
    const name = new URL(url).pathname.slice(1);
    const migrated = postgresStore({ url });
    await migrated.init();
    const [kept] = await migrated.append([newEvent('order.created')]);
    await migrated.close();

    await query(`alter database ${name} set default_transaction_read_only = on`);
    const logger = recordingLogger();
    let poolErrors = 0;
    const store = postgresStore({ url, maxConnections: 1, logger, onPoolError: () => void poolErrors++ });
    onTestFinished(() => store.close());
    await store.ping();

    const refused = await store.append([newEvent('order.created')]).then(
      () => expect.fail('the append was stored'),
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StoreUnavailableError);
    expect(refused).toMatchObject({ status: 503, code: 'store-unavailable', cause: { code: '25006' } });
    await expect(store.subscriptions.advanceCursor('sub_none', 1)).rejects.toMatchObject({ status: 503 });
    await expect(store.ping()).rejects.toMatchObject({ status: 503, cause: { code: '25006' } });
    expect(logger.entries).toEqual([{ level: 'error', fields: { err: expect.objectContaining({ code: '25006' }), refusal: 'unavailable' }, message: `the store refuses writes: ${(refused as Error).message}` }]);
    expect((await store.read({ after: 0, limit: 10 })).map((e) => e.id)).toEqual([kept?.event.id]);

    // Writable again, for new sessions (asked from another database: this one's are read-only): the pool's
    // one connection is ended, and the next one takes writes.
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`alter database ${name} reset default_transaction_read_only`);
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1`, [name]);
    } finally {
      await admin.end();
    }
    await vi.waitFor(() => expect(poolErrors, 'the pool saw its connection end').toBeGreaterThan(0));
    await store.ping();
    expect(logger.entries.at(-1)).toMatchObject({ level: 'info', message: 'the store accepts writes again' });
    const [stored] = await store.append([newEvent('order.created')]);
    expect(stored?.created).toBe(true);
  });
});

describe('PostgreSQL ending a connection in use', () => {
  /** An initialised store of two connections on a fresh database, made from its url or given a pg Pool; closed after the test. */
  async function storeMadeWith(made: 'url' | 'pool'): Promise<{ url: string; store: SqlStore }> {
    const url = await database();
    const store = made === 'url' ? postgresStore({ url, maxConnections: 2 }) : postgresStore({ pool: new pg.Pool({ connectionString: url, max: 2 }) });
    onTestFinished(() => store.close());
    await store.init();
    return { url, store };
  }

  it.each(['url', 'pool'] as const)(
    'a transaction whose connection PostgreSQL ends between two statements fails; the process and the store go on (store made with %s)',
    async (made) => {
      const { store } = await storeMadeWith(made);
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      onTestFinished(() => admin.end());
      // An app's transaction on Herald's pool, held between two statements while PostgreSQL ends its connection
      // (a restart, a failover, an operator): the client then has no query to fail, and emits `error` alone.
      const transaction = store.database.transaction().execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        await admin.query('select pg_terminate_backend($1)', [rows[0]?.pid]);
        await vi.waitFor(async () => expect((await admin.query('select 1 from pg_stat_activity where pid = $1', [rows[0]?.pid])).rowCount).toBe(0));
        await new Promise((resolve) => setTimeout(resolve, 200));
        await sql`select 1`.execute(trx);
      });
      await expect(transaction).rejects.toBeInstanceOf(StoreUnavailableError);
      const [stored] = await store.append([newEvent('order.created')]);
      expect(stored?.created).toBe(true);
    },
  );

  it.each(['url', 'pool'] as const)(
    'a read whose connection PostgreSQL ends under it is a 503 with the error as its cause; the store reads and stays ready (store made with %s)',
    async (made) => {
      const { url, store } = await storeMadeWith(made);
      const [kept] = await store.append([newEvent('order.created')]);
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      onTestFinished(() => admin.end());
      // Each read waits for a lock another session holds, and PostgreSQL ends its connection meanwhile.
      const endedUnder = async <T>(read: () => Promise<T>, table: string): Promise<unknown> => {
        await admin.query('begin');
        await admin.query(`lock table ${table} in access exclusive mode`);
        const reading = read().then(() => expect.fail("the read finished"), (error: unknown) => error);
        const waiting = await vi.waitFor(async () => {
          // pg_locks, not pg_stat_activity, whose figures stay as first read for the rest of a transaction.
          const { rows } = await admin.query<{ pid: number }>('select pid from pg_locks where not granted and relation = $1::regclass', [table]);
          expect(rows).toHaveLength(1);
          return rows[0]?.pid;
        });
        await admin.query('select pg_terminate_backend($1)', [waiting]);
        const error = await reading;
        await admin.query('rollback');
        return error;
      };
      for (const error of [await endedUnder(() => store.subscriptions.list(), 'herald_subscriptions'), await endedUnder(() => store.read({ after: 0, limit: 10 }), 'herald_events')]) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error).toMatchObject({ status: 503, code: 'store-unavailable', cause: { code: '57P01' } });
      }
      // A read refused is no refused write: the store stays ready, and reads as before.
      await store.ping();
      expect(await store.subscriptions.list()).toEqual([]);
      expect((await store.read({ after: 0, limit: 10 })).map((event) => event.id)).toEqual([kept?.event.id]);
    },
  );
});

describe('a write PostgreSQL rolls back to end a deadlock', () => {
  it('runs again at once, and succeeds once the other transaction is through', async () => {
    const url = await database();
    const store = await open(url);
    const subscription = await store.subscriptions.create({ id: 'sub_deadlocked', consumer: 'acme', transport: 'memory', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    onTestFinished(() => other.end());
    // The other transaction holds the subscriptions' version row, which the store's change moves last; it
    // looks for deadlocks later than the store's session does, so that the store's change is the one rolled back.
    await other.query('begin');
    await other.query(`set local deadlock_timeout = '30s'`);
    await other.query(`update herald_counters set value = value where name = 'subscriptions'`);
    const changing = store.subscriptions.update(subscription.id, { status: 'paused' });
    await vi.waitFor(async () => expect((await other.query(`select 1 from pg_locks where not granted and locktype = 'transactionid'`)).rowCount).toBe(1));
    // It waits for the subscription's row, which the store's change holds: a deadlock, found by the store's session.
    await other.query(`update herald_subscriptions set updated_at = updated_at where id = $1`, [subscription.id]);
    await other.query('commit');
    expect(await changing).toMatchObject({ id: subscription.id, status: 'paused' });
    expect((await store.subscriptions.get(subscription.id))?.status).toBe('paused');
  });
});

describe('text with U+0000, which PostgreSQL takes in no column', () => {
  it('a statement with it is a 422 with PostgreSQL’s error as the cause, a write as well as a read; the store stays ready', async () => {
    const store = await open(await database());
    const refusedBy = (work: Promise<unknown>) => work.then(() => expect.fail('the statement ran'), (error: unknown) => error);
    const refused = [
      await refusedBy(store.subscriptions.list({ transport: 'a\u0000b' })),
      await refusedBy(store.eventTypes.insert({ name: 'odd.type', description: 'a\u0000b', createdAt: new Date().toISOString() })),
      await refusedBy(sql`select ${'a\u0000b'}::text`.execute(store.database)),
    ];
    for (const error of refused) {
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ status: 422, code: 'validation-failed', cause: { code: '22021' } });
    }
    await store.ping();
    expect(await store.eventTypes.list()).toEqual([]);
  });

  it('an append with it fails alone: the appends committed in the same group are stored', async () => {
    const store = await open(await database());
    const [first, bad, last] = [newEvent('order.created'), { ...newEvent('order.created'), subject: 'a\u0000b' }, newEvent('order.created')];
    // Asked in the same tick: one group, one statement.
    const settled = await Promise.allSettled([store.append([first]), store.append([bad]), store.append([last])]);
    expect(settled.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
    expect((await store.read({ after: 0, limit: 10 })).map((event) => event.id)).toEqual([first.id, last.id]);
  });
});

describe("pg's errors for a lost connection, which carry no SQLSTATE", () => {
  it('are refusals of the store (a 503), as PostgreSQL’s own connection errors are', async () => {
    const client = new pg.Client({ connectionString: adminUrl });
    client.on('error', () => {});
    await client.connect();
    onTestFinished(() => client.end());
    // The socket gone under a running statement, as when the network drops or the server dies without a word.
    const running = client.query('select pg_sleep(5)');
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const ended = await running.then(() => expect.fail('the statement finished'), (error: unknown) => error);
    expect(ended).toMatchObject({ message: 'Connection terminated unexpectedly' });
    const after = await client.query('select 1').then(() => expect.fail('the statement ran'), (error: unknown) => error);
    expect(after).toMatchObject({ message: 'Client has encountered a connection error and is not queryable' });
    for (const error of [ended, after]) {
      expect((error as { code?: unknown }).code).toBeUndefined();
      expect(postgresFlavor.refusal(error)).toBe('unavailable');
    }
    expect(postgresFlavor.refusal(new Error('Connection to the moon terminated'))).toBeUndefined();
  });
});
