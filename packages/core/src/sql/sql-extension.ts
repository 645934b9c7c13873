import type { Kysely, Migration, Selectable } from 'kysely';
import type { HeraldEvent } from '../envelope.js';
import type { Subscription } from '../subscription.js';
import type { EventsTable, HeraldDatabase, SubscriptionsTable } from './schema.js';
import type { SqlFlavor } from './sql-flavor.js';
import type { LogHold } from './log-prune.js';
import type { WriteGate } from './write-gate.js';

/** How the store turns its rows into Herald's objects. */
export interface RowReaders {
  event(row: Selectable<EventsTable>): HeraldEvent;
  subscription(row: Selectable<SubscriptionsTable>): Subscription;
}

/** What an extension of the SQL store builds on. */
export interface SqlStoreContext {
  /** The store's database, its own tables typed; an extension adds its tables with `db.withTables<...>()`. */
  readonly db: Kysely<HeraldDatabase>;
  /** What differs between SQLite and PostgreSQL. */
  readonly flavor: SqlFlavor;
  /**
   * Every write goes through it, the extension's as the store's own: a write that finds the database
   * locked elsewhere waits on timers, and one the database refuses is a 503 `StoreUnavailableError`.
   */
  readonly gate: WriteGate;
  /** The store's rows as Herald's objects, for an extension that reads the log or the subscriptions. */
  readonly rows: RowReaders;
  /**
   * Keeps the log from being pruned from the `seq` that `hold` answers on (e.g. the oldest event a pending
   * push delivery still needs); undefined holds nothing. Asked before every round of pruning.
   */
  holdLog(hold: LogHold): void;
}

/**
 * Tables of its own on the SQL store, and what works on them (the push transports' outbox is one): made
 * once per store by `SqlStore.extend`, after its migrations have run with a history of their own.
 */
export interface SqlStoreExtension<T> {
  /** Names its migration history: the tables `herald_<name>_migration` and `herald_<name>_migration_lock`. */
  readonly name: string;
  /** Its migrations by name, run in the order of their names; a name, once released, is never renamed or removed. */
  migrations(flavor: SqlFlavor): Record<string, Migration>;
  /** What it offers, on the store's database. */
  create(context: SqlStoreContext): T;
}
