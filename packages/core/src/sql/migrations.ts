import { type Kysely, type Migration, Migrator } from 'kysely';
import type { SqlFlavor } from './sql-flavor.js';

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

        await db.schema
          .createTable('herald_delivery_attempts')
          .addColumn('id', 'text', (c) => c.primaryKey())
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
        await db.schema
          .createIndex('herald_delivery_attempts_delivery')
          .on('herald_delivery_attempts')
          .columns(['delivery_id', 'started_at'])
          .execute();
        await db.schema
          .createIndex('herald_delivery_attempts_subscription')
          .on('herald_delivery_attempts')
          .columns(['subscription_id', 'outcome', 'started_at'])
          .execute();
      },
    },
  };
}

/** Brings the schema up to date; throws when a migration fails. */
export async function migrate(db: Kysely<unknown>, flavor: SqlFlavor): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(flavor) },
    migrationTableName: 'herald_migration',
    migrationLockTableName: 'herald_migration_lock',
  });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}
