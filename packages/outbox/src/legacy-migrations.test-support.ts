/**
 * The store's migrations as they were before the outbox became @herald/outbox (main at 95fe060), frozen:
 * they make the databases an upgrade starts from. Never change them.
 */
import { type Kysely, type Migration, Migrator, sql } from 'kysely';
import type { SqlFlavor } from '@herald/core';

/** The columns of herald_delivery_attempts besides 0002's `id`, as 0003 copies them. */
const attemptColumns = [
  'delivery_id',
  'subscription_id',
  'attempt',
  'started_at',
  'duration_ms',
  'outcome',
  'response_status',
  'response_body',
  'error',
  'next_attempt_at',
];

/** herald_delivery_attempts as 0002 made it (with a key of its own) and as 0003 made it again (without). */
async function createAttempts(db: Kysely<unknown>, withId: boolean): Promise<void> {
  let table = db.schema.createTable('herald_delivery_attempts');
  if (withId) table = table.addColumn('id', 'text', (c) => c.primaryKey());
  await table
    .addColumn('delivery_id', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('response_status', 'integer')
    .addColumn('response_body', 'text')
    .addColumn('error', 'text')
    .addColumn('next_attempt_at', 'bigint')
    .execute();
}

async function createAttemptIndexes(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('herald_delivery_attempts_delivery').on('herald_delivery_attempts').columns(['delivery_id', 'started_at']).execute();
  await db.schema
    .createIndex('herald_delivery_attempts_subscription')
    .on('herald_delivery_attempts')
    .columns(['subscription_id', 'outcome', 'started_at'])
    .execute();
}

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
    '0002_webhook_outbox': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('herald_outbox_positions')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('herald_deliveries')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('event_seq', 'bigint', (c) => c.notNull())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'bigint')
          .addColumn('locked_by', 'text')
          .addColumn('locked_until', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('herald_deliveries_subscription_event', ['subscription_id', 'event_seq'])
          .execute();
        await db.schema
          .createIndex('herald_deliveries_subscription_status')
          .on('herald_deliveries')
          .columns(['subscription_id', 'status', 'event_seq'])
          .execute();
        await db.schema.createIndex('herald_deliveries_due').on('herald_deliveries').columns(['status', 'next_attempt_at']).execute();
        await db.schema.createIndex('herald_deliveries_updated').on('herald_deliveries').columns(['status', 'updated_at']).execute();

        await createAttempts(db, true);
        await createAttemptIndexes(db);
      },
    },
    '0003_lean_outbox': {
      // Fewer index writes per delivery: pending deliveries are indexed only while pending, settled ones
      // only once settled, and attempts, append-only, lose their own key (a second index per row).
      async up(db: Kysely<unknown>) {
        for (const index of ['herald_deliveries_subscription_status', 'herald_deliveries_due', 'herald_deliveries_updated']) {
          await db.schema.dropIndex(index).execute();
        }
        await db.schema
          .createIndex('herald_deliveries_pending')
          .on('herald_deliveries')
          .columns(['subscription_id', 'event_seq'])
          .where(sql.ref('status'), '=', 'pending')
          .execute();
        await db.schema.createIndex('herald_deliveries_due').on('herald_deliveries').column('next_attempt_at').where(sql.ref('status'), '=', 'pending').execute();
        await db.schema
          .createIndex('herald_deliveries_settled')
          .on('herald_deliveries')
          .column('updated_at')
          .where(sql.ref('status'), '!=', 'pending')
          .execute();

        await db.schema.alterTable('herald_delivery_attempts').renameTo('herald_delivery_attempts_0002').execute();
        await db.schema.dropIndex('herald_delivery_attempts_delivery').execute();
        await db.schema.dropIndex('herald_delivery_attempts_subscription').execute();
        await createAttempts(db, false);
        const columns = sql.join(attemptColumns.map((column) => sql.ref(column)));
        await sql`insert into herald_delivery_attempts (${columns}) select ${columns} from herald_delivery_attempts_0002`.execute(db);
        await db.schema.dropTable('herald_delivery_attempts_0002').execute();
        await createAttemptIndexes(db);
      },
    },
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
    '0005_outbox_holds': {
      // A fan-out gives a worker deliveries to send as one row rather than one row each (see `Hold`).
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('herald_outbox_holds')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('worker', 'text', (c) => c.notNull())
          .addColumn('locked_until', 'bigint', (c) => c.notNull())
          .addColumn('from_seq', 'bigint', (c) => c.notNull())
          .addColumn('to_seq', 'bigint', (c) => c.notNull())
          .addColumn('subscription_ids', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0006_delivering_attempt_on_row': {
      // A held delivery delivered by its first attempt keeps that attempt on its row: no attempt row.
      async up(db: Kysely<unknown>) {
        for (const [column, type] of [
          ['attempt_started_at', 'bigint'],
          ['attempt_duration_ms', 'integer'],
          ['attempt_response_status', 'integer'],
          ['attempt_response_body', 'text'],
        ] as const) {
          await db.schema.alterTable('herald_deliveries').addColumn(column, type).execute();
        }
      },
    },
    '0007_write_probe': {
      // While the store refuses writes, `ping` writes a row here and deletes it, to learn when it takes them again.
      async up(db: Kysely<unknown>) {
        await db.schema.createTable('herald_write_probe').addColumn('pad', 'text', (c) => c.notNull()).execute();
      },
    },
  };
}

/** Brings the schema up to where the migrations of Herald before @herald/outbox did, or up to the one named `to`. */
export async function legacyMigrate(db: Kysely<unknown>, flavor: SqlFlavor, to?: string): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(flavor) },
    migrationTableName: 'herald_migration',
    migrationLockTableName: 'herald_migration_lock',
  });
  const { error } = await (to === undefined ? migrator.migrateToLatest() : migrator.migrateTo(to));
  if (error) throw error;
}
