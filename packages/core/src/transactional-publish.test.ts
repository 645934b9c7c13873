import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import type { HeraldEvent } from './envelope.js';
import { ValidationError } from './errors.js';
import { EventBus } from './event-bus.js';
import { defineEventType, EventCatalog } from './event-type-catalog.js';
import { memoryBroker } from './memory-broker.js';
import { postgresStore } from './sql/postgres-store.js';
import { adminUrl, freshDatabase } from './sql/postgres.test-support.js';
import type { SqlStore } from './sql/sql-store.js';
import { sqliteStore } from './sql/sqlite-store.js';
import { tempDatabase } from './temp-folder.test-support.js';

const catalog = () =>
  new EventCatalog([
    defineEventType('order.created', z.object({ orderId: z.string(), total: z.number() })),
    defineEventType('load.tick', z.object({ writer: z.string(), n: z.number().int() })),
  ]);

type OrdersDatabase = {
  orders: { id: string; total: number };
};

/** A dialect under test: Herald's store, and the app's own database on the same file or database. */
interface Backend {
  name: 'SQLite' | 'PostgreSQL';
  /** A new store on a new database, and the app's kysely on that database. */
  open(): Promise<{ store: SqlStore; app: Kysely<OrdersDatabase>; another(): Promise<SqlStore> }>;
  /** The app's kysely on a database of its own, without Herald's tables. */
  elsewhere(): Promise<Kysely<OrdersDatabase>>;
}

const backends: Backend[] = [
  {
    name: 'SQLite',
    async open() {
      const store = sqliteStore({ path: tempDatabase() });
      onTestFinished(() => store.close());
      await store.init();
      // The app shares Herald's connection: its transactions and Herald's writes take turns on it.
      const app = store.database.withTables<OrdersDatabase>();
      await app.schema.createTable('orders').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('total', 'real').execute();
      return { store, app, another: async () => store };
    },
    async elsewhere() {
      const app = new Kysely<OrdersDatabase>({ dialect: new SqliteDialect({ database: new Database(tempDatabase()) }) });
      onTestFinished(() => app.destroy());
      return app;
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const { url, drop } = await freshDatabase();
      onTestFinished(drop);
      const open = async () => {
        const store = postgresStore({ url });
        onTestFinished(() => store.close());
        await store.init();
        return store;
      };
      const store = await open();
      // The app's own pool, as an app that has one already.
      const app = new Kysely<OrdersDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10 }) }) });
      onTestFinished(() => app.destroy());
      await app.schema.createTable('orders').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('total', 'real').execute();
      return { store, app, another: open };
    },
    async elsewhere() {
      const { url, drop } = await freshDatabase();
      const app = new Kysely<OrdersDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
      onTestFinished(async () => {
        await app.destroy();
        await drop();
      });
      return app;
    },
  },
];

/** A transaction held open until `commit()` or `rollback()`, for interleavings the test decides. */
function openTransaction<DB>(db: Kysely<DB>): { ready: Promise<Transaction<DB>>; commit(): Promise<void>; rollback(): Promise<void> } {
  let ready!: (trx: Transaction<DB>) => void;
  let end!: (outcome: 'commit' | 'rollback') => void;
  const trxReady = new Promise<Transaction<DB>>((resolve) => (ready = resolve));
  const ended = new Promise<'commit' | 'rollback'>((resolve) => (end = resolve));
  const done = db
    .transaction()
    .execute(async (trx) => {
      ready(trx);
      if ((await ended) === 'rollback') throw new RolledBack();
    })
    .catch((error: unknown) => {
      if (!(error instanceof RolledBack)) throw error;
    });
  return {
    ready: trxReady,
    commit: async () => {
      end('commit');
      await done;
    },
    rollback: async () => {
      end('rollback');
      await done;
    },
  };
}

class RolledBack extends Error {}

async function startBus(store: SqlStore, pollInterval = 1000): Promise<{ bus: EventBus; heard: HeraldEvent[] }> {
  const bus = new EventBus({ store, broker: memoryBroker(), catalog: catalog(), pollInterval });
  const heard: HeraldEvent[] = [];
  bus.onEvents((events) => heard.push(...events));
  await bus.start();
  onTestFinished(() => bus.stop());
  return { bus, heard };
}

describe.each(backends)('publishing in the app’s transaction on $name', (backend) => {
  it('commits the order and the event together; afterCommit delivers at once', async () => {
    const { store, app } = await backend.open();
    const { bus, heard } = await startBus(store, 60_000);
    const published = await app.transaction().execute(async (trx) => {
      await trx.insertInto('orders').values({ id: 'ord_1', total: 12 }).execute();
      return bus.publish({ type: 'order.created', data: { orderId: 'ord_1', total: 12 } }, { transaction: trx });
    });
    expect(published.created).toBe(true);
    expect(await app.selectFrom('orders').selectAll().execute()).toEqual([{ id: 'ord_1', total: 12 }]);
    expect((await store.read({ after: 0, limit: 10 })).map((event) => event.id)).toEqual([published.event.id]);
    published.afterCommit();
    // The poll is a minute away: only afterCommit can have rung.
    await expect.poll(() => heard.map((event) => event.id), { timeout: 5000 }).toEqual([published.event.id]);
    expect(heard[0]).toEqual(published.event);
  });

  it('is delivered by the poll without afterCommit', async () => {
    const { store, app } = await backend.open();
    const { bus, heard } = await startBus(store, 50);
    const published = await app
      .transaction()
      .execute((trx) => bus.publish({ type: 'order.created', data: { orderId: 'ord_2', total: 1 } }, { transaction: trx }));
    await expect.poll(() => heard.map((event) => event.seq), { timeout: 5000 }).toEqual([published.event.seq]);
  });

  it('a rollback after the publish leaves neither the order nor the event, and delivers nothing', async () => {
    const { store, app } = await backend.open();
    const { bus, heard } = await startBus(store, 20);
    let afterCommit: (() => void) | undefined;
    await expect(
      app.transaction().execute(async (trx) => {
        await trx.insertInto('orders').values({ id: 'ord_3', total: 5 }).execute();
        ({ afterCommit } = await bus.publish({ type: 'order.created', data: { orderId: 'ord_3', total: 5 } }, { transaction: trx }));
        throw new Error('payment declined');
      }),
    ).rejects.toThrow('payment declined');
    afterCommit?.();
    // Herald's own publish after it is delivered, alone.
    const after = await bus.publish({ type: 'order.created', data: { orderId: 'ord_4', total: 1 } });
    await expect.poll(() => heard.map((event) => event.id), { timeout: 5000 }).toEqual([after.event.id]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard.map((event) => event.id)).toEqual([after.event.id]);
    expect(await app.selectFrom('orders').selectAll().execute()).toEqual([]);
    expect((await store.read({ after: 0, limit: 10 })).map((event) => event.id)).toEqual([after.event.id]);
  });

  it("a transaction on another database is said to be one, and nothing is stored", async () => {
    const { store } = await backend.open();
    const { bus } = await startBus(store);
    const app = await backend.elsewhere();
    await app.schema.createTable('orders').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('total', 'real').execute();
    const attempt = app.transaction().execute(async (trx) => {
      await trx.insertInto('orders').values({ id: 'ord_9', total: 9 }).execute();
      await bus.publish({ type: 'order.created', data: { orderId: 'ord_9', total: 9 } }, { transaction: trx });
    });
    await expect(attempt).rejects.toThrow(/^The transaction given to publish is not on Herald's database \(.*herald_.*\): publish in a transaction of herald\.database/);
    expect(await app.selectFrom('orders').selectAll().execute()).toEqual([]);
    expect(await store.bounds()).toEqual({ oldest: null, latest: 0 });
  });

  it('invalid data throws before anything is written; the app rolls back and nothing is stored', async () => {
    const { store, app } = await backend.open();
    const { bus } = await startBus(store);
    const attempt = app.transaction().execute(async (trx) => {
      await trx.insertInto('orders').values({ id: 'ord_5', total: 5 }).execute();
      await bus.publishMany(
        [
          { type: 'order.created', data: { orderId: 'ord_5', total: 5 } },
          { type: 'order.created', data: { orderId: 'ord_5', total: 'five' } },
        ],
        { transaction: trx },
      );
    });
    await expect(attempt).rejects.toBeInstanceOf(ValidationError);
    expect(await app.selectFrom('orders').selectAll().execute()).toEqual([]);
    expect(await store.bounds()).toEqual({ oldest: null, latest: 0 });
  });

  it('a type the catalog lacks is refused at once: the catalog is not reloaded from the store inside the app’s transaction', async () => {
    const { store, app } = await backend.open();
    const lacking = catalog();
    // As a server's catalog reloads: from the store, which on SQLite is the connection the transaction holds.
    lacking.reloadOnMiss(async () => void (await store.eventTypes.list()));
    const bus = new EventBus({ store, broker: memoryBroker(), catalog: lacking });
    await bus.start();
    onTestFinished(() => bus.stop());
    const attempt = app.transaction().execute((trx) => bus.publish({ type: 'parcel.sent', data: {} }, { transaction: trx }));
    await expect(attempt).rejects.toMatchObject({ code: 'unknown-event-type' });
  });

  it('publishMany in a transaction: idempotent on id, in order', async () => {
    const { store, app } = await backend.open();
    const { bus } = await startBus(store);
    const first = await bus.publish({ type: 'order.created', id: 'evt_same', data: { orderId: 'a', total: 1 } });
    const results = await app.transaction().execute((trx) =>
      bus.publishMany(
        [
          { type: 'order.created', data: { orderId: 'b', total: 2 } },
          { type: 'order.created', id: 'evt_same', data: { orderId: 'c', total: 3 } },
        ],
        { transaction: trx },
      ),
    );
    expect(results.map((result) => result.created)).toEqual([true, false]);
    expect(results[1]?.event).toEqual(first.event);
    expect((await store.read({ after: 0, limit: 10 })).map((event) => event.data)).toEqual([
      { orderId: 'a', total: 1 },
      { orderId: 'b', total: 2 },
    ]);
  });

  it(
    '8 app transactions and Herald’s own publishes at once, some rolled back: readers see every committed event once, in seq order',
    async () => {
      const { store, app, another } = await backend.open();
      const { bus, heard } = await startBus(store, 20);
      // Another node: its bus hears no ring from this one, and finds the events by polling.
      const { heard: heardElsewhere } = await startBus(await another(), 10);

      let writing = true;
      const tailed: number[] = [];
      const tail = (async () => {
        let last = 0;
        for (let idle = 0; writing || idle < 2; ) {
          const page = await store.read({ after: last, limit: 100 });
          if (page.length === 0) idle += writing ? 0 : 1;
          tailed.push(...page.map((event) => event.seq));
          last = page.at(-1)?.seq ?? last;
          if (backend.name === 'SQLite') await new Promise((resolve) => setImmediate(resolve));
        }
      })();

      const committed = new Set<string>();
      const rolledBack = new Set<string>();
      const rounds = 12;
      const appWriters = Array.from({ length: 8 }, async (_, writer) => {
        for (let n = 0; n < rounds; n++) {
          const rollback = (writer + n) % 3 === 0;
          const ids: string[] = [];
          try {
            await app.transaction().execute(async (trx) => {
              await trx.insertInto('orders').values({ id: `ord_${writer}_${n}`, total: n }).execute();
              const results = await bus.publishMany(
                [
                  { type: 'load.tick', data: { writer: `app${writer}`, n } },
                  { type: 'load.tick', data: { writer: `app${writer}`, n: -n } },
                ],
                { transaction: trx },
              );
              ids.push(...results.map((result) => result.event.id));
              // Hold the transaction a moment, so that commits overtake each other.
              await new Promise((resolve) => setTimeout(resolve, (writer * 7 + n * 3) % 11));
              if (rollback) throw new RolledBack();
            });
            for (const id of ids) committed.add(id);
          } catch (error) {
            if (!(error instanceof RolledBack)) throw error;
            for (const id of ids) rolledBack.add(id);
          }
        }
      });
      const heraldWriters = Array.from({ length: 2 }, async (_, writer) => {
        for (let n = 0; n < rounds * 2; n++) {
          const { event } = await bus.publish({ type: 'load.tick', data: { writer: `herald${writer}`, n } });
          committed.add(event.id);
        }
      });
      await Promise.all([...appWriters, ...heraldWriters]);
      writing = false;
      await tail;

      const log = await store.read({ after: 0, limit: 10_000 });
      expect(new Set(log.map((event) => event.id))).toEqual(committed);
      expect(rolledBack.size).toBeGreaterThan(0);
      const logSeqs = log.map((event) => event.seq);
      expect(tailed).toEqual(logSeqs);
      await expect.poll(() => heard.length, { timeout: 15_000 }).toBe(log.length);
      expect(heard.map((event) => event.seq)).toEqual(logSeqs);
      await expect.poll(() => heardElsewhere.length, { timeout: 15_000 }).toBe(log.length);
      expect(heardElsewhere.map((event) => event.seq)).toEqual(logSeqs);
      expect(await app.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst()).toEqual({
        n: backend.name === 'SQLite' ? committed.size / 2 - rounds * 2 : String(committed.size / 2 - rounds * 2),
      });
    },
    120_000,
  );
});

describe('PostgreSQL commits that finish out of seq order (issue 21)', () => {
  it('no reader reads past a seq whose transaction is still in flight, and none skips it once committed', async () => {
    const { store, app, another } = await backends[1]!.open();
    const { bus, heard } = await startBus(await another(), 10);
    const a = openTransaction(app);
    const trx = await a.ready;
    const inFlight = await bus.publish({ type: 'order.created', data: { orderId: 'slow', total: 1 } }, { transaction: trx });
    // Herald's own publish draws a later seq and commits first.
    const fast = await store.append([newTick('fast')]);
    expect(fast[0]!.event.seq).toBeGreaterThan(inFlight.event.seq);
    // It is committed: a plain query sees it...
    const committedRows = await sql<{ seq: string }>`select seq from herald_events`.execute(app);
    expect(committedRows.rows.map((row) => Number(row.seq))).toEqual([fast[0]!.event.seq]);
    // ...but no reader goes past the seq still in flight.
    expect(await store.read({ after: 0, limit: 10 })).toEqual([]);
    expect((await store.bounds()).latest).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard).toEqual([]);

    await a.commit();
    const seqs = [inFlight.event.seq, fast[0]!.event.seq];
    expect((await store.read({ after: 0, limit: 10 })).map((event) => event.seq)).toEqual(seqs);
    await expect.poll(() => heard.map((event) => event.seq), { timeout: 5000 }).toEqual(seqs);
  });

  it('a rolled-back seq is passed over once its transaction is gone', async () => {
    const { store, app } = await backends[1]!.open();
    const { bus, heard } = await startBus(store, 10);
    const a = openTransaction(app);
    const gone = await bus.publish({ type: 'order.created', data: { orderId: 'gone', total: 1 } }, { transaction: await a.ready });
    const kept = await bus.publish({ type: 'order.created', data: { orderId: 'kept', total: 1 } });
    expect(kept.event.seq).toBeGreaterThan(gone.event.seq);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard).toEqual([]);
    await a.rollback();
    await expect.poll(() => heard.map((event) => event.seq), { timeout: 5000 }).toEqual([kept.event.seq]);
  });

  it('an open transaction that appended nothing, in this database or another, holds no reader back', async () => {
    const { store, app } = await backends[1]!.open();
    // Both older than the append, both with a transaction id: an app transaction that wrote an order, and one in another database.
    const here = openTransaction(app);
    onTestFinished(() => here.rollback());
    await (await here.ready).insertInto('orders').values({ id: 'unrelated', total: 1 }).execute();
    const elsewhere = new pg.Client({ connectionString: adminUrl });
    await elsewhere.connect();
    onTestFinished(() => elsewhere.end());
    await elsewhere.query('begin');
    await elsewhere.query('select pg_current_xact_id()');

    const { heard } = await startBus(store, 10);
    const [appended] = await store.append([newTick('while others are open')]);
    expect((await store.read({ after: 0, limit: 10 })).map((event) => event.seq)).toEqual([appended!.event.seq]);
    expect((await store.bounds()).latest).toBe(appended!.event.seq);
    await expect.poll(() => heard.map((event) => event.seq), { timeout: 5000 }).toEqual([appended!.event.seq]);

    await elsewhere.query('rollback');
    await here.commit();
  });
});

let ticks = 0;
function newTick(writer: string) {
  ticks += 1;
  return {
    specversion: '1.0' as const,
    id: `evt_tick_${process.pid}_${ticks}`,
    type: 'load.tick',
    source: '/test',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { writer, n: ticks },
  };
}
