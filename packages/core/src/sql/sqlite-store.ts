import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  type QueryCompiler,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
  type SqliteStatement,
  type TransactionSettings,
} from 'kysely';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { HeraldDatabase } from './schema.js';
import { reasonOf } from './error-reason.js';
import { asStoreRefusal, RefusingDriver } from './refusing-driver.js';
import { type SqlFlavor, sqliteFlavor, syncedSqliteFlavor } from './sql-flavor.js';
import { SqlStore, type SqlStoreOptions } from './sql-store.js';
import { retryWhileLocked } from './write-gate.js';

export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. The file's folder is made by `init()` when missing. @default './data/herald.db' */
  path?: string;
  /**
   * A better-sqlite3 database to use instead of opening `path`. The store sets its pragmas (WAL mode,
   * `synchronous`, no busy wait, temporary storage in memory) and owns it from then on: `close()` closes it.
   */
  database?: Database.Database;
  /**
   * SQLite's `synchronous` setting in WAL mode. `full` syncs every commit but the webhook outbox's
   * (`SqlFlavor.unsyncedTransaction`), so acknowledged events survive a power loss; `normal` survives
   * a killed process but may lose the last commits on power loss.
   * @default 'full'
   */
  synchronous?: 'full' | 'normal';
  /**
   * How long a write waits, in ms, while another process (or connection) holds the database's write
   * lock, before it fails with a 503 `StoreUnavailableError`. It waits on timers: the event loop is never
   * blocked by a lock. Reads are not held up by a writer in WAL mode.
   * @default 1000
   */
  lockTimeout?: number;
  /**
   * Told when the store starts refusing writes (with SQLite's own error) and when it takes them again; and of the
   * statements SQLite refuses, reads too (see `RefusingDriver`): the first, at most a line a minute after, and when
   * one succeeds again. @default silentLogger
   */
  logger?: Logger;
}

/**
 * The SQL store on an embedded SQLite database (better-sqlite3, WAL mode): Herald's default. better-sqlite3
 * is loaded when the store first reaches its database (`init`), so that an app on another store never loads it.
 * A statement SQLite refuses for a reason other than a lock (an I/O error, a damaged or vanished file, a full
 * disk), a read as well as a write, the app's own on `database` included, throws a 503 `StoreUnavailableError`.
 */
export function sqliteStore(options: SqliteStoreOptions = {}): SqlStore {
  const given = options.database;
  const path = options.path ?? './data/herald.db';
  const where = given ? 'the database it was given' : path;
  let database: Database.Database | undefined;
  const open = async (): Promise<SqliteDatabase> => {
    const opened = given ?? (await openDatabase(path));
    try {
      opened.pragma('journal_mode = WAL');
      opened.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      // A lock held elsewhere fails at once, and the store waits it out on timers (see WriteGate).
      opened.pragma('busy_timeout = 0');
      // Statement journals (an UPDATE … RETURNING, a write of many rows, in a transaction) in memory rather than in temporary files.
      opened.pragma('temp_store = MEMORY');
    } catch (error) {
      // Opened again when the store next reaches for it (a lock held elsewhere is waited out).
      if (!given) opened.close();
      throw sqliteFlavor.refusal(error) === 'locked' ? error : cannotOpen(where, error);
    }
    database = opened;
    return keepingStatements(opened);
  };
  const flavor = options.synchronous === 'normal' ? sqliteFlavor : syncedSqliteFlavor;
  const lockTimeout = options.lockTimeout ?? 1000;
  const config: SqliteDialectConfig = { database: open };
  const lockFirst = new LockFirstSqliteDriver(config, () => database?.inTransaction ?? false);
  const driver = new RefusingDriver(lockFirst, (error) => asStoreRefusal(sqliteFlavor, error), { logger: options.logger });
  const dialect = new OneDriverSqliteDialect(config, driver);
  return new SqliteSqlStore(new Kysely<HeraldDatabase>({ dialect }), dialect, flavor, { lockTimeout, logger: options.logger }, where);
}

/**
 * The SQL store on SQLite, whose `database` (the app's) is Herald's connection through a driver whose
 * transactions wait out a lock held by another process, on timers, up to `lockTimeout`, rather than fail
 * with "database is locked". Herald's own transactions fail at once on it, and the {@link WriteGate}
 * runs them again with the connection free for reads.
 */
class SqliteSqlStore extends SqlStore {
  readonly #appDatabase: Kysely<Record<never, never>>;
  /** The file, for a failed start to say. */
  readonly #where: string;

  constructor(db: Kysely<HeraldDatabase>, dialect: OneDriverSqliteDialect, flavor: SqlFlavor, options: SqlStoreOptions & { lockTimeout: number }, where: string) {
    super(db, flavor, options);
    const driver = new LockWaitingDriver(dialect.driver, () => db.destroy(), options.lockTimeout);
    this.#appDatabase = new Kysely({ config: { dialect }, dialect, driver, executor: db.getExecutor() });
    this.#where = where;
  }

  override async init(): Promise<void> {
    try {
      await super.init();
    } catch (error) {
      // A refused start (a damaged file, a lock held all along) is said as it is, not as a 503 "unavailable for now".
      throw error instanceof StoreUnavailableError ? cannotOpen(this.#where, error.cause) : error;
    }
  }

  override get database(): Kysely<Record<never, never>> {
    return this.#appDatabase;
  }
}

async function openDatabase(path: string): Promise<Database.Database> {
  let Sqlite: typeof Database;
  try {
    ({ default: Sqlite } = await import('better-sqlite3'));
  } catch (error) {
    throw new Error('sqliteStore() needs the `better-sqlite3` package, which @herald/core depends on: reinstall your dependencies', { cause: error });
  }
  try {
    if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true });
    return new Sqlite(path);
  } catch (error) {
    throw cannotOpen(path, error);
  }
}

/**
 * SQLite's error on opening `path`, saying which file. Not a refused write (the store has not started): said as
 * it is, not as a 503, so without its `code`; nor with it as `cause`, whose message a logger such as pino would
 * write again after this one's.
 */
function cannotOpen(path: string, error: unknown): Error {
  const reason = reasonOf(error);
  return new Error(`sqliteStore cannot open the database at ${path}: ${notBuilt.test(reason) ? notBuiltReason : reason}`);
}

/** What the `bindings` package says when better-sqlite3's native module was never built. */
const notBuilt = /^Could not locate the bindings file/;
/** pnpm (since version 10) runs no dependency's build script it was not told to; it then lists tried paths, not this. */
const notBuiltReason =
  'better-sqlite3 is installed without its native module (its build script did not run): allow it and install again (pnpm: `pnpm approve-builds`; npm: `npm rebuild better-sqlite3`)';

/** kysely's SQLite dialect on one driver made beforehand, which the app's view of the store shares. */
class OneDriverSqliteDialect extends SqliteDialect {
  readonly driver: RefusingDriver;

  constructor(config: SqliteDialectConfig, driver: RefusingDriver) {
    super(config);
    this.driver = driver;
  }

  override createDriver(): Driver {
    return this.driver;
  }
}

/**
 * kysely's SQLite driver, whose transactions take the write lock as they begin (`begin immediate`): a
 * lock held elsewhere then fails a transaction before it has done anything, and Herald's writes run
 * again from the {@link WriteGate}, which waits with the connection free for reads. After an error that
 * SQLite answers by rolling back itself (SQLITE_FULL, SQLITE_IOERR), the rollback is skipped, so that the
 * error thrown is that one and not "no transaction is active".
 */
class LockFirstSqliteDriver extends SqliteDriver {
  /** Whether the database is in a transaction now. */
  readonly #inTransaction: () => boolean;

  constructor(config: SqliteDialectConfig, inTransaction: () => boolean) {
    super(config);
    this.#inTransaction = inTransaction;
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.#inTransaction()) await super.rollbackTransaction(connection);
  }
}

/**
 * The driver of the app's transactions on `herald.database`: Herald's driver, on its one connection
 * (which the store's kysely instance provides), whose transactions begin again after a wait on a timer
 * while another process holds the write lock, until `lockTimeout` after they began. Herald's own writes
 * do not wait in here, with the connection held: the app's view is the only way in.
 */
class LockWaitingDriver implements Driver {
  readonly #driver: RefusingDriver;
  readonly #destroy: () => Promise<void>;
  readonly #lockTimeout: number;

  constructor(driver: RefusingDriver, destroy: () => Promise<void>, lockTimeout: number) {
    this.#driver = driver;
    this.#destroy = destroy;
    this.#lockTimeout = lockTimeout;
  }

  /** The store's kysely instance initializes the driver as it first provides the connection. */
  async init(): Promise<void> {}

  acquireConnection(): Promise<DatabaseConnection> {
    return this.#driver.acquireConnection();
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return retryWhileLocked(sqliteFlavor, () => this.#driver.beginTransaction(connection, settings), Date.now(), this.#lockTimeout);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#driver.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#driver.rollbackTransaction(connection);
  }

  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return this.#driver.savepoint(connection, name, compile);
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return this.#driver.rollbackToSavepoint(connection, name, compile);
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return this.#driver.releaseSavepoint(connection, name, compile);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#driver.releaseConnection(connection);
  }

  /** Destroying the app's view closes the store's connection, as it did when both were one instance. */
  destroy(): Promise<void> {
    return this.#destroy();
  }
}

/** Prepared statements kept, by SQL text, at most this many. */
const keptStatements = 200;

/**
 * better-sqlite3 with its prepared statements kept by SQL text: kysely prepares every query it
 * runs, and publishing runs the same few (`begin`, the insert for a group of N, `commit`) over and over.
 * Kysely runs one query at a time on its one connection, so a statement is never in use twice at once.
 */
function keepingStatements(database: Database.Database): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(sql) {
      // A pragma acts when it is prepared; a kept one, run again, does not reliably act again.
      if (sql.startsWith('pragma')) return database.prepare(sql);
      let statement = statements.get(sql);
      if (statement) {
        // Least recently used first: move it to the end.
        statements.delete(sql);
      } else {
        statement = withRowObjects(database.prepare(sql));
        if (statements.size >= keptStatements) statements.delete(statements.keys().next().value as string);
      }
      statements.set(sql, statement);
      return statement;
    },
  };
}

/**
 * A statement whose rows are read as arrays and made into objects by a function compiled for its
 * columns, so that every row has one shape: better-sqlite3's own row objects take about twice as long.
 */
function withRowObjects(statement: Database.Statement): SqliteStatement {
  if (!statement.reader) return statement;
  statement.raw(true);
  const fields = statement.columns().map((column, index) => `${JSON.stringify(column.name)}: values[${index}]`);
  const toRow = new Function('values', `return { ${fields.join(', ')} };`) as (values: unknown[]) => unknown;
  return {
    reader: true,
    all: (parameters) => (statement.all(parameters) as unknown[][]).map(toRow),
    run: (parameters) => statement.run(parameters),
    *iterate(parameters) {
      for (const values of statement.iterate(parameters) as IterableIterator<unknown[]>) yield toRow(values);
    },
  };
}
