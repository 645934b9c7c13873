import { type HeraldDatabase, postgresFlavor, type SqlFlavor, SqlStore, sqliteFlavor } from '@herald/core';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freshDatabase } from '../../core/src/sql/postgres.test-support.js';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { legacyMigrate } from './legacy-migrations.test-support.js';
import { sqlOutbox } from './sql-outbox.js';

interface Backend {
  db: Kysely<HeraldDatabase>;
  flavor: SqlFlavor;
  /** The names of the indexes Herald made on the outbox's tables. */
  indexes(): Promise<string[]>;
  /** The columns of a table, sorted. */
  columns(table: string): Promise<string[]>;
}

async function sqliteBackend(): Promise<Backend> {
  const database = new Database(tempDatabase());
  return {
    db: new Kysely<HeraldDatabase>({ dialect: new SqliteDialect({ database }) }),
    flavor: sqliteFlavor,
    indexes: async () =>
      database
        .prepare(`select name from sqlite_master where type = 'index' and (tbl_name like 'herald_deliver%' or tbl_name like 'herald_outbox%') and sql is not null order by name`)
        .pluck()
        .all() as string[],
    columns: async (table) => (database.prepare(`select name from pragma_table_info(?) order by name`).pluck().all(table) as string[]).sort(),
  };
}

async function postgresBackend(): Promise<Backend> {
  const { url, drop } = await freshDatabase();
  onTestFinished(drop);
  const db = new Kysely<HeraldDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
  const names = async (query: ReturnType<typeof sql<{ name: string }>>) => (await query.execute(db)).rows.map((row) => row.name);
  return {
    db,
    flavor: postgresFlavor,
    indexes: () =>
      names(
        sql`select indexname as name from pg_indexes where (tablename like 'herald_deliver%' or tablename like 'herald_outbox%') and indexname not like '%_pkey' and indexname not like '%_subscription_event' order by indexname`,
      ),
    columns: async (table) => (await names(sql`select column_name as name from information_schema.columns where table_name = ${table}`)).sort(),
  };
}

/** The store on `db`, initialised, and its outbox: the upgrade. */
async function upgraded(db: Kysely<HeraldDatabase>, flavor: SqlFlavor) {
  const store = new SqlStore(db, flavor);
  onTestFinished(() => store.close());
  await store.init();
  return { store, outbox: await sqlOutbox(store) };
}

/** The outbox's schema as it stands: its tables' columns and its indexes. */
async function schema({ columns, indexes }: Backend) {
  const tables = ['herald_outbox_positions', 'herald_deliveries', 'herald_delivery_attempts', 'herald_outbox_holds'];
  return { columns: Object.fromEntries(await Promise.all(tables.map(async (table) => [table, await columns(table)]))), indexes: await indexes() };
}

const appliedMigrations = async (db: Kysely<HeraldDatabase>, table: string) =>
  (await sql<{ name: string }>`select name from ${sql.table(table)} order by name`.execute(db)).rows.map((row) => row.name);

describe.each([
  ['SQLite', sqliteBackend],
  ['PostgreSQL', postgresBackend],
])('upgrading a %s database made before @herald/outbox', (_, makeBackend) => {
  it('keeps every delivery, attempt, hold and fan-out position of a database at the last release (0007)', async () => {
    const backend = await makeBackend();
    const { db, flavor } = backend;
    await legacyMigrate(db as Kysely<unknown>, flavor);
    await sql`insert into herald_subscriptions (id, consumer, transport, types, status, config, cursor, created_at, updated_at)
      values ('sub_1', 'acme', 'webhook', '["order.*"]', 'active', '{}', 0, '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')`.execute(db);
    for (const n of [1, 2, 3]) {
      await sql`insert into herald_events (id, type, source, time, datacontenttype, data)
        values (${`evt_${n}`}, 'order.created', '/test', '2025-01-01T00:00:00.000Z', 'application/json', ${JSON.stringify({ n })})`.execute(db);
    }
    await sql`insert into herald_outbox_positions (name, seq) values ('webhook', 2)`.execute(db);
    await sql`insert into herald_deliveries (id, subscription_id, event_seq, event_id, status, attempts, next_attempt_at, created_at, updated_at,
        attempt_started_at, attempt_duration_ms, attempt_response_status, attempt_response_body)
      values ('dlv_1', 'sub_1', 1, 'evt_1', 'delivered', 1, null, 900, 1000, 1000, 8, 204, 'ok'),
             ('dlv_2', 'sub_1', 2, 'evt_2', 'pending', 2, 5000, 900, 3000, null, null, null, null)`.execute(db);
    await sql`insert into herald_delivery_attempts (delivery_id, subscription_id, attempt, started_at, duration_ms, outcome, response_status, response_body, error, next_attempt_at)
      values ('dlv_2', 'sub_1', 1, 1100, 12, 'failed', 500, 'boom', 'the endpoint answered 500', 2000),
             ('dlv_2', 'sub_1', 2, 2000, 15000, 'failed', null, null, 'timed out after 15000 ms', 5000)`.execute(db);
    await sql`insert into herald_outbox_holds (id, name, worker, locked_until, from_seq, to_seq, subscription_ids)
      values ('hld_1', 'webhook', 'wkr_dead', 1500, 2, 3, '["sub_1"]')`.execute(db);
    const before = await schema(backend);

    const { outbox } = await upgraded(db, flavor);

    expect(await outbox.attempts(['dlv_1', 'dlv_2'])).toEqual([
      { deliveryId: 'dlv_1', subscriptionId: 'sub_1', attempt: 1, startedAt: 1000, durationMs: 8, outcome: 'succeeded', responseStatus: 204, responseBody: 'ok' },
      { deliveryId: 'dlv_2', subscriptionId: 'sub_1', attempt: 1, startedAt: 1100, durationMs: 12, outcome: 'failed', responseStatus: 500, responseBody: 'boom', error: 'the endpoint answered 500', nextAttemptAt: 2000 },
      { deliveryId: 'dlv_2', subscriptionId: 'sub_1', attempt: 2, startedAt: 2000, durationMs: 15000, outcome: 'failed', error: 'timed out after 15000 ms', nextAttemptAt: 5000 },
    ]);
    expect((await outbox.list('sub_1')).map((d) => [d.id, d.status, d.attempts, d.nextAttemptAt])).toEqual([
      ['dlv_2', 'pending', 2, 5000],
      ['dlv_1', 'delivered', 1, null],
    ]);
    expect(await outbox.failingSince('sub_1')).toBe(1100);
    expect(await outbox.position('webhook', 0)).toBe(2);
    expect(await outbox.expiredHolds('webhook', 2000)).toEqual([
      { id: 'hld_1', name: 'webhook', worker: 'wkr_dead', lockedUntil: 1500, from: 2, to: 3, subscriptionIds: ['sub_1'] },
    ]);
    expect(await outbox.due('webhook', 5000, 10)).toEqual(['sub_1']);
    // The tables are the outbox's now, as they were (with the index of 0005_replays); the store's history is as it was, and the outbox has one of its own.
    expect(await schema(backend)).toEqual({ ...before, indexes: [...before.indexes, 'herald_outbox_replays_running'] });
    expect(await appliedMigrations(db, 'herald_migration')).toEqual([
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
    expect(await appliedMigrations(db, 'herald_outbox_migration')).toEqual(['0001_adopt', '0002_successes', '0003_replay_holds', '0004_rate_limits', '0005_replays']);
  });

  it('finishes what the store had not done to a database at 0002: every delivery and attempt kept, the indexes swapped', async () => {
    const backend = await makeBackend();
    const { db, flavor } = backend;
    await legacyMigrate(db as Kysely<unknown>, flavor, '0002_webhook_outbox');
    await sql`insert into herald_deliveries (id, subscription_id, event_seq, event_id, status, attempts, next_attempt_at, created_at, updated_at)
      values ('dlv_1', 'sub_1', 1, 'evt_1', 'pending', 2, 5000, 1000, 3000), ('dlv_2', 'sub_1', 2, 'evt_2', 'delivered', 1, null, 1000, 2000)`.execute(db);
    await sql`insert into herald_delivery_attempts (id, delivery_id, subscription_id, attempt, started_at, duration_ms, outcome, response_status, response_body, error, next_attempt_at)
      values ('att_1', 'dlv_1', 'sub_1', 1, 1000, 12, 'failed', 500, 'boom', 'the endpoint answered 500', 2000),
             ('att_2', 'dlv_1', 'sub_1', 2, 2000, 30000, 'failed', null, null, 'timed out after 30000 ms', 5000),
             ('att_3', 'dlv_2', 'sub_1', 1, 1500, 8, 'succeeded', 204, null, null, null)`.execute(db);

    const { outbox } = await upgraded(db, flavor);

    expect(await outbox.attempts(['dlv_1', 'dlv_2'])).toEqual([
      { deliveryId: 'dlv_1', subscriptionId: 'sub_1', attempt: 1, startedAt: 1000, durationMs: 12, outcome: 'failed', responseStatus: 500, responseBody: 'boom', error: 'the endpoint answered 500', nextAttemptAt: 2000 },
      { deliveryId: 'dlv_2', subscriptionId: 'sub_1', attempt: 1, startedAt: 1500, durationMs: 8, outcome: 'succeeded', responseStatus: 204 },
      { deliveryId: 'dlv_1', subscriptionId: 'sub_1', attempt: 2, startedAt: 2000, durationMs: 30000, outcome: 'failed', error: 'timed out after 30000 ms', nextAttemptAt: 5000 },
    ]);
    expect(await outbox.failingSince('sub_1')).toBe(2000);
    expect((await outbox.list('sub_1')).map((d) => [d.id, d.status])).toEqual([
      ['dlv_2', 'delivered'],
      ['dlv_1', 'pending'],
    ]);
    // A subscription no longer there: its due deliveries are found by any push transport, to be purged.
    expect(await outbox.due('webhook', 5000, 10)).toEqual(['sub_1']);
    expect(await outbox.prune('webhook', 2500)).toBe(1);

    expect(await backend.indexes()).toEqual([
      'herald_deliveries_due',
      'herald_deliveries_pending',
      'herald_deliveries_settled',
      'herald_delivery_attempts_delivery',
      'herald_delivery_attempts_subscription',
      'herald_outbox_replays_running',
    ]);
    expect(await backend.columns('herald_delivery_attempts')).toHaveLength(10);
    expect(await backend.columns('herald_delivery_attempts')).not.toContain('id');
    expect(await backend.columns('herald_deliveries')).toContain('attempt_started_at');
  });

  it('makes on a new database the very tables an upgraded one has', async () => {
    const upgradedBackend = await makeBackend();
    await legacyMigrate(upgradedBackend.db as Kysely<unknown>, upgradedBackend.flavor);
    await upgraded(upgradedBackend.db, upgradedBackend.flavor);
    const fresh = await makeBackend();
    await upgraded(fresh.db, fresh.flavor);
    expect(await schema(fresh)).toEqual(await schema(upgradedBackend));
    expect((await schema(fresh)).indexes).toEqual([
      'herald_deliveries_due',
      'herald_deliveries_pending',
      'herald_deliveries_settled',
      'herald_delivery_attempts_delivery',
      'herald_delivery_attempts_subscription',
      'herald_outbox_replays_running',
    ]);
  });
});
