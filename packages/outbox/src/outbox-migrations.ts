import type { SqlFlavor } from '@herald/core';
import { type Kysely, type Migration, sql } from 'kysely';

// The outbox's tables were made by the store's own migrations 0002, 0003, 0005 and 0006 until the outbox
// became a package of its own. Those migrations are empty now; the first migration here brings a database
// from wherever they left it (from nothing, for a new one) to the same tables, each step as it was.

/** The columns of herald_delivery_attempts besides the key it had at first, as the lean step copies them. */
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

/** herald_delivery_attempts as it was made at first (with a key of its own) and again by the lean step (without). */
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

/** The store's 0002: fan-out positions, deliveries, attempts. */
async function createOutbox(db: Kysely<unknown>): Promise<void> {
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
}

/**
 * The store's 0003. Fewer index writes per delivery: pending deliveries are indexed only while pending,
 * final ones only once final, and attempts, append-only, lose their own key (a second index per row).
 */
async function leanOutbox(db: Kysely<unknown>): Promise<void> {
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
}

/** The store's 0005. A fan-out gives a worker deliveries to send as one row rather than one row each (see `Hold`). */
async function createHolds(db: Kysely<unknown>): Promise<void> {
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
}

/** The store's 0006. A held delivery delivered by its first attempt keeps that attempt on its row: no attempt row. */
async function addAttemptOnRow(db: Kysely<unknown>): Promise<void> {
  for (const [column, type] of [
    ['attempt_started_at', 'bigint'],
    ['attempt_duration_ms', 'integer'],
    ['attempt_response_status', 'integer'],
    ['attempt_response_body', 'text'],
  ] as const) {
    await db.schema.alterTable('herald_deliveries').addColumn(column, type).execute();
  }
}

/** The outbox's migrations, recorded in `herald_outbox_migration`. */
export function outboxMigrations(_flavor: SqlFlavor): Record<string, Migration> {
  return {
    '0001_adopt': {
      // Takes the tables as the store's migrations left them, and makes what they had not made yet.
      async up(db: Kysely<unknown>) {
        const tables = new Map((await db.introspection.getTables()).map((table) => [table.name, new Set(table.columns.map((column) => column.name))]));
        const deliveries = tables.get('herald_deliveries');
        const attempts = tables.get('herald_delivery_attempts');
        if (!deliveries) await createOutbox(db);
        if (!deliveries || attempts?.has('id')) await leanOutbox(db);
        if (!tables.has('herald_outbox_holds')) await createHolds(db);
        if (!deliveries?.has('attempt_started_at')) await addAttemptOnRow(db);
      },
    },
    '0002_successes': {
      // A stored delivery's delivering attempt is kept on its row too: when each subscription last had one.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('herald_outbox_successes')
          .addColumn('subscription_id', 'text', (c) => c.primaryKey())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0003_replay_holds': {
      // The deliveries a replay hands a worker without writing their final rows, for any worker to restart should it die.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('herald_outbox_replay_holds')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('worker', 'text', (c) => c.notNull())
          .addColumn('locked_until', 'bigint', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('delivery_ids', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0004_rate_limits': {
      // An endpoint's rate limit holds across the cluster: one token bucket per subscription, spent by every worker's claims.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('herald_outbox_rate_limits')
          .addColumn('subscription_id', 'text', (c) => c.primaryKey())
          .addColumn('tokens', 'double precision', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0005_replays': {
      // Replays where every node sees them: each subscription's running or last one, under its worker's lease.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('herald_outbox_replays')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('worker', 'text', (c) => c.notNull())
          .addColumn('locked_until', 'bigint', (c) => c.notNull())
          .addColumn('view', 'text', (c) => c.notNull())
          .execute();
        // At most one running replay per subscription, whichever node starts it.
        await db.schema
          .createIndex('herald_outbox_replays_running')
          .on('herald_outbox_replays')
          .column('subscription_id')
          .unique()
          .where(sql.ref('status'), '=', 'running')
          .execute();
      },
    },
  };
}
