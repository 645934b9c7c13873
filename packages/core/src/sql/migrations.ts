import { type Kysely, type Migration, Migrator, sql } from 'kysely';
import { appendHorizonMigration, appendTicketsMigration, readHorizonOneLookMigration } from './append-tickets.js';
import { logPartitionsMigration } from './log-partitions.js';
import type { SqlFlavor } from './sql-flavor.js';

/** A migration whose work moved to an extension of the store. */
const moved: Migration = { async up() {} };

function migrations(flavor: SqlFlavor): Record<string, Migration> {
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>) {
        await flavor
          .addSeqColumn(db.schema.createTable('herald_events'))
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('subject', 'text')
          .addColumn('time', 'text', (c) => c.notNull())
          .addColumn('datacontenttype', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('consumer', 'text')
          .execute();
        await db.schema.createIndex('herald_events_type_seq').on('herald_events').columns(['type', 'seq']).execute();

        await db.schema
          .createTable('herald_event_types')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('description', 'text')
          .addColumn('schema', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('herald_subscriptions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('consumer', 'text', (c) => c.notNull())
          .addColumn('transport', 'text', (c) => c.notNull())
          .addColumn('types', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('config', 'text', (c) => c.notNull())
          .addColumn('cursor', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('disabled_reason', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('herald_subscriptions_consumer')
          .on('herald_subscriptions')
          .columns(['consumer', 'created_at'])
          .execute();

        await db.schema
          .createTable('herald_api_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('consumer', 'text')
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .addColumn('expires_at', 'text')
          .addColumn('parent_id', 'text')
          .addColumn('types', 'text')
          .execute();
      },
    },
    // The outbox's tables, which these made, are @herald/outbox's now (its first migration adopts them):
    // kept, empty, so that the history of a database they ran on stays valid.
    '0002_webhook_outbox': moved,
    '0003_lean_outbox': moved,
    '0004_subscription_version': {
      // Counts the changes to what subscriptions match, so that a webhook fan-out can tell that it matched against all of them.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('herald_counters')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('value', 'bigint', (c) => c.notNull())
          .execute();
        await sql`insert into herald_counters (name, value) values ('subscriptions', 0)`.execute(db);
      },
    },
    '0005_outbox_holds': moved,
    '0006_delivering_attempt_on_row': moved,
    '0007_write_probe': {
      // While the store refuses writes, `ping` writes a row here and deletes it, to learn when it takes them again.
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('herald_write_probe').addColumn('pad', 'text', (c) => c.notNull()).execute();
      },
    },
    '0008_subscription_filter': {
      // A subscription's payload filter, as JSON; null for none.
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('herald_subscriptions').addColumn('filter', 'text').execute();
      },
    },
    '0009_log_retention': {
      // A type's own retention and compaction; the newest event of a subject found without a scan (compaction); and
      // the log's floor: every event up to it was pruned (but those a retention or compaction of their type keeps).
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('herald_event_types').addColumn('retention', 'text').execute();
        await db.schema.alterTable('herald_event_types').addColumn('compaction', 'text').execute();
        await db.schema
          .createIndex('herald_events_subject')
          .on('herald_events')
          .columns(['type', 'subject', 'seq'])
          .where(sql.ref('subject'), 'is not', null)
          .execute();
        await sql`insert into herald_counters (name, value) values ('log_floor', 0)`.execute(db);
      },
    },
    // PostgreSQL appends draw their seqs with a ticket, and readers keep to the rows before the oldest transaction in flight.
    '0011_append_tickets': appendTicketsMigration(flavor.name),
    '0020_event_trace_context': {
      // The CloudEvents distributed-tracing extension: each event keeps the trace context of its publish.
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('herald_events').addColumn('traceparent', 'text').execute();
        await db.schema.alterTable('herald_events').addColumn('tracestate', 'text').execute();
      },
    },
    // PostgreSQL: the log partitioned by range of seq, its ids kept unique in a table of their own.
    '0021_log_partitions': logPartitionsMigration(flavor.name),
    // PostgreSQL: readers wait only for the appends in flight in this database, not every transaction of the cluster.
    '0022_append_horizon': appendHorizonMigration(flavor.name),
    // PostgreSQL: the readers' horizon reads the lock table once, so that an append ending meanwhile is never missed.
    '0023_read_horizon_one_look': readHorizonOneLookMigration(flavor.name),
    '0024_key_labels_and_last_use': {
      // What a key is for, the admin key that made it, and when it last authenticated a request; none for the keys made before.
      async up(db: Kysely<unknown>) {
        for (const column of ['name', 'created_by', 'last_used_at']) {
          await db.schema.alterTable('herald_api_keys').addColumn(column, 'text').execute();
        }
      },
    },
  };
}

/** Where a history of migrations is recorded, and the lock taken while they run. */
export interface MigrationTables {
  table: string;
  lockTable: string;
}

/**
 * Runs `migrations` up to date, or up to the one named `to`, recording them in `tables` (the store's own:
 * `herald_migration`, `herald_migration_lock`); throws when one fails. An extension of the store has
 * tables of its own.
 */
export async function runMigrations(
  db: Kysely<unknown>,
  migrations: Record<string, Migration>,
  tables: MigrationTables = { table: 'herald_migration', lockTable: 'herald_migration_lock' },
  to?: string,
): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: tables.table,
    migrationLockTableName: tables.lockTable,
  });
  const { error } = await (to === undefined ? migrator.migrateToLatest() : migrator.migrateTo(to));
  if (error) throw error;
}

/** Brings the store's schema up to date, or up to the migration named `to`. */
export function migrate(db: Kysely<unknown>, flavor: SqlFlavor, to?: string): Promise<void> {
  return runMigrations(db, migrations(flavor), undefined, to);
}
