import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate } from './migrations.js';
import { freshDatabase } from './postgres.test-support.js';
import type { HeraldDatabase } from './schema.js';
import { postgresFlavor, type SqlFlavor, sqliteFlavor } from './sql-flavor.js';
import { SqlStore } from './sql-store.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Backend {
  db: Kysely<HeraldDatabase>;
  flavor: SqlFlavor;
  /** The names of the indexes Herald made on the outbox's tables. */
  indexes(): Promise<string[]>;
  /** The columns of a table. */
  columns(table: string): Promise<string[]>;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-migrations-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const database = new Database(join(dir, 'herald.db'));
  return {
    db: new Kysely<HeraldDatabase>({ dialect: new SqliteDialect({ database }) }),
    flavor: sqliteFlavor,
    indexes: async () =>
      database.prepare(`select name from sqlite_master where type = 'index' and tbl_name like 'herald_deliver%' and sql is not null order by name`).pluck().all() as string[],
    columns: async (table) => database.prepare(`select name from pragma_table_info(?)`).pluck().all(table) as string[],
  };
}

async function postgresBackend(): Promise<Backend> {
  const { url, drop } = await freshDatabase();
  cleanups.push(drop);
  const db = new Kysely<HeraldDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
  const names = async (query: ReturnType<typeof sql<{ name: string }>>) => (await query.execute(db)).rows.map((row) => row.name);
  return {
    db,
    flavor: postgresFlavor,
    indexes: () =>
      names(sql`select indexname as name from pg_indexes where tablename like 'herald_deliver%' and indexname not like '%_pkey' and indexname not like '%_subscription_event' order by indexname`),
    columns: (table) => names(sql`select column_name as name from information_schema.columns where table_name = ${table}`),
  };
}

describe.each([
  ['SQLite', sqliteBackend],
  ['PostgreSQL', postgresBackend],
])('0003_lean_outbox on a %s database at 0002', (_, backend) => {
  it('keeps every delivery and attempt, and swaps the indexes', async () => {
    const { db, flavor, indexes, columns } = await backend();
    const store = new SqlStore(db, flavor);
    cleanups.push(() => store.close());

    await migrate(db as Kysely<unknown>, flavor, '0002_webhook_outbox');
    await sql`insert into herald_deliveries (id, subscription_id, event_seq, event_id, status, attempts, next_attempt_at, created_at, updated_at)
      values ('dlv_1', 'sub_1', 1, 'evt_1', 'pending', 2, 5000, 1000, 3000), ('dlv_2', 'sub_1', 2, 'evt_2', 'delivered', 1, null, 1000, 2000)`.execute(db);
    await sql`insert into herald_delivery_attempts (id, delivery_id, subscription_id, attempt, started_at, duration_ms, outcome, response_status, response_body, error, next_attempt_at)
      values ('att_1', 'dlv_1', 'sub_1', 1, 1000, 12, 'failed', 500, 'boom', 'the endpoint answered 500', 2000),
             ('att_2', 'dlv_1', 'sub_1', 2, 2000, 30000, 'failed', null, null, 'timed out after 30000 ms', 5000),
             ('att_3', 'dlv_2', 'sub_1', 1, 1500, 8, 'succeeded', 204, null, null, null)`.execute(db);

    await store.init();

    expect(await store.outbox.attempts(['dlv_1', 'dlv_2'])).toEqual([
      { deliveryId: 'dlv_1', subscriptionId: 'sub_1', attempt: 1, startedAt: 1000, durationMs: 12, outcome: 'failed', responseStatus: 500, responseBody: 'boom', error: 'the endpoint answered 500', nextAttemptAt: 2000 },
      { deliveryId: 'dlv_2', subscriptionId: 'sub_1', attempt: 1, startedAt: 1500, durationMs: 8, outcome: 'succeeded', responseStatus: 204 },
      { deliveryId: 'dlv_1', subscriptionId: 'sub_1', attempt: 2, startedAt: 2000, durationMs: 30000, outcome: 'failed', error: 'timed out after 30000 ms', nextAttemptAt: 5000 },
    ]);
    expect(await store.outbox.failingSince('sub_1')).toBe(2000);
    expect((await store.outbox.list('sub_1')).map((d) => [d.id, d.status])).toEqual([
      ['dlv_2', 'delivered'],
      ['dlv_1', 'pending'],
    ]);
    expect(await store.outbox.due(5000, 10)).toEqual(['sub_1']);
    expect(await store.outbox.prune(2500)).toBe(1);

    expect(await indexes()).toEqual([
      'herald_deliveries_due',
      'herald_deliveries_pending',
      'herald_deliveries_settled',
      'herald_delivery_attempts_delivery',
      'herald_delivery_attempts_subscription',
    ]);
    expect(await columns('herald_delivery_attempts')).toHaveLength(10);
    expect(await columns('herald_delivery_attempts')).not.toContain('id');
  });
});
