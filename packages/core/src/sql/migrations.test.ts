import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../temp-folder.test-support.js';
import { migrate } from './migrations.js';
import { freshDatabase } from './postgres.test-support.js';
import type { HeraldDatabase } from './schema.js';
import type { SqlStoreExtension } from './sql-extension.js';
import { postgresFlavor, type SqlFlavor, sqliteFlavor } from './sql-flavor.js';
import { SqlStore } from './sql-store.js';
import { sqliteStore } from './sqlite-store.js';

interface Backend {
  db: Kysely<HeraldDatabase>;
  flavor: SqlFlavor;
  /** The names of Herald's tables. */
  tables(): Promise<string[]>;
}

async function sqliteBackend(): Promise<Backend> {
  const database = new Database(tempDatabase());
  return {
    db: new Kysely<HeraldDatabase>({ dialect: new SqliteDialect({ database }) }),
    flavor: sqliteFlavor,
    tables: async () => database.prepare(`select name from sqlite_master where type = 'table' and name like 'herald%' order by name`).pluck().all() as string[],
  };
}

async function postgresBackend(): Promise<Backend> {
  const { url, drop } = await freshDatabase();
  onTestFinished(drop);
  const db = new Kysely<HeraldDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
  return {
    db,
    flavor: postgresFlavor,
    tables: async () =>
      (await sql<{ name: string }>`select tablename as name from pg_tables where tablename like 'herald%' order by tablename`.execute(db)).rows.map((row) => row.name),
  };
}

/** An extension with a table of its own, whose second migration fails while `failing` is set. */
function thingsExtension() {
  const state = { failing: true, created: 0 };
  const extension: SqlStoreExtension<{ count(): Promise<number> }> = {
    name: 'things',
    migrations: () => ({
      '0001_things': {
        async up(db) {
          await db.schema.createTable('herald_things').addColumn('id', 'text', (c) => c.primaryKey()).execute();
        },
      },
      '0002_first_thing': {
        async up(db) {
          if (state.failing) throw new Error('the migration failed');
          await sql`insert into herald_things (id) values ('first')`.execute(db);
        },
      },
    }),
    create({ db }) {
      state.created += 1;
      const things = db.withTables<{ herald_things: { id: string } }>();
      return { count: async () => Number((await things.selectFrom('herald_things').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n) };
    },
  };
  return { extension, state };
}

describe.each([
  ['SQLite', sqliteBackend],
  ['PostgreSQL', postgresBackend],
])('the store on a %s database', (_, backend) => {
  it("makes the store's tables, records every migration name (those whose tables moved to @herald/outbox too), and no outbox table", async () => {
    const { db, flavor, tables } = await backend();
    const store = new SqlStore(db, flavor);
    onTestFinished(() => store.close());
    await store.init();
    // PostgreSQL: the ids of the partitioned log, and its first two partitions (100,000 seqs each).
    const partitioned = flavor.name === 'postgres' ? ['herald_event_ids', 'herald_events_from_1', 'herald_events_from_100001'] : [];
    expect(await tables()).toEqual(
      [
        'herald_api_keys',
        'herald_counters',
        'herald_event_types',
        'herald_events',
        'herald_migration',
        'herald_migration_lock',
        'herald_subscriptions',
        'herald_write_probe',
        ...partitioned,
      ].sort(),
    );
    const applied = await sql<{ name: string }>`select name from herald_migration order by name`.execute(db);
    expect(applied.rows.map((row) => row.name)).toEqual([
      '0001_initial',
      '0002_webhook_outbox',
      '0003_lean_outbox',
      '0004_subscription_version',
      '0005_outbox_holds',
      '0006_delivering_attempt_on_row',
      '0007_write_probe',
      '0008_subscription_filter',
      '0009_log_retention',
      '0011_append_tickets',
      '0020_event_trace_context',
      '0021_log_partitions',
      '0022_append_horizon',
      '0023_read_horizon_one_look',
      '0024_key_labels_and_last_use',
    ]);
  });

  it('keeps every key of a database at the last release (0023): no name, maker or last use, until the server records them', async () => {
    const { db, flavor } = await backend();
    await migrate(db as Kysely<unknown>, flavor, '0023_read_horizon_one_look');
    // Rows as that release wrote them: an admin and a consumer key, a revoked one, and a stream token of the consumer key.
    await sql`insert into herald_api_keys (id, role, consumer, hash, created_at, revoked_at, expires_at, parent_id, types) values
      ('key_admin', 'admin', null, 'h-admin', '2026-01-01T00:00:00.000Z', null, null, null, null),
      ('key_acme', 'consumer', 'acme', 'h-acme', '2026-01-02T00:00:00.000Z', null, null, null, null),
      ('key_gone', 'consumer', 'globex', 'h-gone', '2026-01-03T00:00:00.000Z', '2026-01-04T00:00:00.000Z', null, null, null),
      ('stk_acme', 'consumer', 'acme', 'h-stk', '2026-01-05T00:00:00.000Z', null, '2026-01-05T00:05:00.000Z', 'key_acme', '["order.*"]')`.execute(db);

    const store = new SqlStore(db, flavor);
    onTestFinished(() => store.close());
    await store.init();
    const before = [
      { id: 'key_admin', role: 'admin', hash: 'h-admin', createdAt: '2026-01-01T00:00:00.000Z' },
      { id: 'key_acme', role: 'consumer', consumer: 'acme', hash: 'h-acme', createdAt: '2026-01-02T00:00:00.000Z' },
      { id: 'key_gone', role: 'consumer', consumer: 'globex', hash: 'h-gone', createdAt: '2026-01-03T00:00:00.000Z', revokedAt: '2026-01-04T00:00:00.000Z' },
      {
        id: 'stk_acme',
        role: 'consumer',
        consumer: 'acme',
        hash: 'h-stk',
        createdAt: '2026-01-05T00:00:00.000Z',
        expiresAt: '2026-01-05T00:05:00.000Z',
        parentId: 'key_acme',
        types: ['order.*'],
      },
    ];
    expect(await store.keys.list()).toEqual(before);
    // The old keys take the new fields from then on.
    await store.keys.markUsed('key_acme', '2026-02-01T00:00:00.000Z');
    expect(await store.keys.get('key_acme')).toEqual({ ...before[1], lastUsedAt: '2026-02-01T00:00:00.000Z' });
    const labelled = { id: 'key_new', role: 'consumer' as const, consumer: 'acme', hash: 'h-new', name: 'billing', createdBy: 'key_admin', createdAt: '2026-02-02T00:00:00.000Z' };
    await store.keys.put(labelled);
    expect(await store.keys.get('key_new')).toEqual(labelled);
  });

  it("runs an extension's migrations with a history of their own, makes it once, and runs them again after one failed", async () => {
    const { db, flavor, tables } = await backend();
    const store = new SqlStore(db, flavor);
    onTestFinished(() => store.close());
    await store.init();
    const { extension, state } = thingsExtension();
    await expect(store.extend(extension)).rejects.toThrow('the migration failed');
    expect(state.created).toBe(0);

    state.failing = false;
    const things = await store.extend(extension);
    expect(await store.extend(extension)).toBe(things);
    expect(state.created).toBe(1);
    expect(await things.count()).toBe(1);
    expect(await tables()).toEqual(expect.arrayContaining(['herald_things', 'herald_things_migration', 'herald_things_migration_lock']));
    const applied = await sql<{ name: string }>`select name from herald_things_migration order by name`.execute(db);
    expect(applied.rows.map((row) => row.name)).toEqual(['0001_things', '0002_first_thing']);
  });
});

describe('two processes starting on one new SQLite file at once', () => {
  it('migrate it one after the other: both start, and each migration is recorded once', async () => {
    // Two connections of their own, as two processes have; ten fresh files, since an unguarded race is lost only now and then.
    for (let round = 0; round < 10; round++) {
      const path = tempDatabase();
      const stores = [sqliteStore({ path }), sqliteStore({ path })];
      for (const store of stores) onTestFinished(() => store.close());
      await Promise.all(stores.map((store) => store.init()));
      const { extension, state } = thingsExtension();
      state.failing = false;
      await Promise.all(stores.map((store) => store.extend(extension)));
      const [first] = stores as [SqlStore];
      const applied = await sql<{ name: string }>`select name from herald_things_migration`.execute(first.database);
      expect(applied.rows).toHaveLength(2);
    }
  });
});
