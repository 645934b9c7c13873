import { type CreateTableBuilder, type Kysely, type RawBuilder, type SelectQueryBuilder, sql, type Transaction } from 'kysely';
import type { StoreRefusal } from '../errors.js';
import { decidedRow } from './append-tickets.js';
import { appendPostgresRows, postgresAppendChunk } from './postgres-append.js';

export { appendLockKey } from './append-tickets.js';
import type { EventRow, HeraldDatabase } from './schema.js';

/** The few things SQLite and PostgreSQL must be told apart for; everything else is shared kysely code. */
export interface SqlFlavor {
  readonly name: 'sqlite' | 'postgres';
  /** Adds `seq`: an ever-increasing key that is never reused. */
  addSeqColumn<T extends string>(table: CreateTableBuilder<T>): CreateTableBuilder<T>;
  /**
   * Locks the rows an outbox claim selects, for the rest of its transaction. `skip`: concurrent claims
   * pass over them (PostgreSQL: `FOR UPDATE SKIP LOCKED`); `wait`: they wait for them (`FOR UPDATE`).
   * SQLite runs one writing statement at a time, so its claims need no lock.
   */
  lockForClaim<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>, mode: 'skip' | 'wait'): SelectQueryBuilder<DB, TB, O>;
  /**
   * Appends rows of distinct ids, at most `appendChunk` of them, in one statement that draws their `seq`s
   * with the ticket they record (PostgreSQL, whose appends commit in any order: see `append-tickets.ts`)
   * and skips the ids already logged; returns the rows inserted. Absent: an INSERT with the table's own
   * autoincrement, SQLite's, whose single writer commits in `seq` order.
   */
  appendRows?(db: Kysely<HeraldDatabase>, rows: readonly EventRow[]): Promise<{ id: string; seq: number | string }[]>;
  /** Rows per `appendRows` at most. */
  readonly appendChunk?: number;
  /**
   * Whether a row of the log may be read: whether every smaller `seq` is decided (committed or rolled
   * back), so that a reader that has seen a `seq` has seen every smaller one. The rows that may be read
   * are a prefix of the log. Absent: every committed row may be.
   */
  readonly decidedRow?: RawBuilder<boolean>;
  /**
   * Runs `work` in a transaction whose commit is not waited to disk: a killed process keeps it, a power
   * loss or an OS crash may undo it (and what committed after it, never what came before). For writes
   * that are safe to lose that way, such as those of the push transports' outbox, whose loss only sends
   * a delivery again. Absent: an ordinary transaction.
   */
  unsyncedTransaction?<DB, T>(db: Kysely<DB>, work: (trx: Transaction<DB>) => Promise<T>): Promise<T>;
  /**
   * Why the database refused a statement, a write or a read, when it did: `locked` (another connection
   * holds the lock: the write may simply run again), `full`, `unavailable` (it serves no statement for
   * now). Undefined for every other error (bad input, a bug), which is thrown as it is.
   */
  refusal(error: unknown): StoreRefusal | undefined;
  /**
   * Whether the database rolled the transaction back to end a conflict with another one (a deadlock, a
   * serialization failure): running it again at once is the remedy, and its refusal is `locked`. Absent:
   * never (SQLite's single writer has its lock instead).
   */
  conflicted?(error: unknown): boolean;
}

/** The `code` of a database driver's error (a SQLSTATE, SQLite's `SQLITE_…`, Node's `E…`); '' when it has none. */
export const errorCode = (error: unknown): string => String((error as { code?: unknown } | null)?.code ?? '');

export const sqliteFlavor: SqlFlavor = {
  name: 'sqlite',
  addSeqColumn: (table) => table.addColumn('seq', 'integer', (column) => column.primaryKey().autoIncrement()),
  lockForClaim: (query) => query,
  // better-sqlite3's SqliteError carries SQLite's extended result code by name, e.g. SQLITE_BUSY_SNAPSHOT.
  refusal(error) {
    const code = errorCode(error);
    if (/^SQLITE_(BUSY|LOCKED)/.test(code)) return 'locked';
    if (code === 'SQLITE_FULL') return 'full';
    // The file, or what is under it, fails: I/O, a read-only or unopenable file, a damaged one (CORRUPT,
    // NOTADB), memory, the WAL's shared-memory locks (PROTOCOL), file permissions, a file too large (NOLFS).
    if (/^SQLITE_(IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|NOMEM|PROTOCOL|PERM|NOLFS)/.test(code)) return 'unavailable';
    return undefined;
  },
};

/**
 * SQLite with `synchronous=FULL`, whose unsynced transactions commit under `synchronous=NORMAL`: in WAL
 * mode the commit is written to the WAL but not fsynced, and the next synced commit (or checkpoint)
 * makes it durable. The setting cannot change inside a transaction, so the connection is held around it.
 */
export const syncedSqliteFlavor: SqlFlavor = {
  ...sqliteFlavor,
  unsyncedTransaction: (db, work) =>
    db.connection().execute(async (connection) => {
      await sql`pragma synchronous = normal`.execute(connection);
      try {
        return await connection.transaction().execute(work);
      } finally {
        await sql`pragma synchronous = full`.execute(connection);
      }
    }),
};

export const postgresFlavor: SqlFlavor = {
  name: 'postgres',
  addSeqColumn: (table) => table.addColumn('seq', 'bigserial', (column) => column.primaryKey()),
  lockForClaim: (query, mode) => (mode === 'skip' ? query.forUpdate().skipLocked() : query.forUpdate()),
  appendRows: appendPostgresRows,
  appendChunk: postgresAppendChunk,
  decidedRow,
  // PostgreSQL's asynchronous commit: the WAL is flushed by the WAL writer shortly after, not waited for.
  unsyncedTransaction: (db, work) =>
    db.transaction().execute(async (trx) => {
      await sql`set local synchronous_commit = off`.execute(trx);
      return work(trx);
    }),
  conflicted: (error) => conflictCodes.includes(errorCode(error)),
  // SQLSTATEs from pg's errors, and Node's from a connection that failed.
  refusal(error) {
    const code = errorCode(error);
    if (code === '55P03') return 'locked'; // lock_not_available, after the session's lock_timeout
    if (conflictCodes.includes(code)) return 'locked';
    if (code === '53100') return 'full'; // disk_full
    // insufficient resources, connection exceptions, shutting down or starting up, a read-only server
    if (/^(53|08|57P0)/.test(code) || code === '25006') return 'unavailable';
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code)) return 'unavailable';
    // pg's own, without a code: the connection ended under a statement, or a statement came after it ended.
    if (code === '' && connectionLost.test(String((error as { message?: unknown } | null)?.message))) return 'unavailable';
    return undefined;
  },
};

/** deadlock_detected, serialization_failure: the transaction was rolled back for another's sake. */
const conflictCodes = ['40P01', '40001'];
const connectionLost = /^(Connection terminated|Client has encountered a connection error and is not queryable)/;
