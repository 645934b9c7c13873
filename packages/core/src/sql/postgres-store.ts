import { EventEmitter } from 'node:events';
import { Kysely, type PostgresPool } from 'kysely';
import type { Logger } from '../logger.js';
import type { HeraldDatabase } from './schema.js';
import { RefusingPostgresDialect } from './postgres-refusing-dialect.js';
import { StoreUnavailableError } from '../errors.js';
import { reasonOf } from './error-reason.js';
import { shownUrl } from '../shown-url.js';
import { postgresFlavor } from './sql-flavor.js';
import { SqlStore, type SqlStoreOptions } from './sql-store.js';

export interface PostgresStoreOptions {
  /**
   * A `postgres://` connection string. The store then makes its own `pg` Pool on first use; `pg` is
   * an optional peer dependency of `@herald/core`, so install it next to it.
   */
  url?: string;
  /**
   * A pool to use instead of `url`: `pg`'s `Pool`, or anything kysely's `PostgresDialect` takes.
   * The store owns it from then on: `close()` ends it, and each connection it opens gets a listener for
   * its `error` (a connection the database ends while in use then fails its statements, not the process).
   */
  pool?: PostgresPool;
  /** Connections in the pool made from `url`. @default 10 */
  maxConnections?: number;
  /** Called with the errors of idle connections in the pool made from `url` (the pool replaces them). @default ignored */
  onPoolError?: (error: Error) => void;
  /**
   * Told when the store starts refusing writes (with PostgreSQL's own error) and when it takes them again; and of
   * the statements PostgreSQL refuses, reads too (see `RefusingDriver`): the first, at most a line a minute after,
   * and when one succeeds again. @default silentLogger
   */
  logger?: Logger;
  /**
   * Seqs per partition of the log (from 1,000 to 100,000,000): pruning drops a partition once all of it
   * is beyond the retention and no hold needs it. See docs/guides/retention.md, "PostgreSQL: partitions". @default 100_000
   */
  logPartitionSize?: number;
}

/**
 * The SQL store on PostgreSQL: the same kysely code as SQLite, for several Herald nodes sharing one
 * log and one outbox. Appends draw their `seq`s in order across nodes and readers keep to the prefix of the
 * log that is decided (see `append-tickets.ts`); the log is partitioned by range of `seq` (see
 * `log-partitions.ts`), and outbox claims use `FOR UPDATE SKIP LOCKED`. A write PostgreSQL refuses (a full disk,
 * a read-only server, a lost connection) is a 503 `StoreUnavailableError`, as on SQLite; so is a read on a lost
 * connection or a server shutting down, the app's own statements on `database` included.
 */
export function postgresStore(options: PostgresStoreOptions): SqlStore {
  const { url, pool } = options;
  if ((url === undefined) === (pool === undefined)) throw new Error('postgresStore: give either `url` or `pool`');
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) throw new Error('postgresStore: `url` must start with postgres://');
  if (pool) listenToConnections(pool);
  const dialect = new RefusingPostgresDialect(
    { pool: pool ?? (() => createPool(url as string, options.maxConnections ?? 10, options.onPoolError)) },
    options.logger,
  );
  const where = url !== undefined ? `the database at ${shownUrl(url)}` : 'the database of the pool it was given';
  return new PostgresSqlStore(
    new Kysely<HeraldDatabase>({ dialect }),
    {
      logger: options.logger,
      ...(options.logPartitionSize !== undefined ? { logPartitionSize: options.logPartitionSize } : {}),
    },
    where,
  );
}

/** The SQL store on PostgreSQL, whose failure to start says where it was to start, and why. */
class PostgresSqlStore extends SqlStore {
  readonly #where: string;

  constructor(db: Kysely<HeraldDatabase>, options: SqlStoreOptions, where: string) {
    super(db, postgresFlavor, options);
    this.#where = where;
  }

  override async init(): Promise<void> {
    try {
      await super.init();
    } catch (error) {
      // A refused start is said as it is, not as a 503 "unavailable for now", whose cause says why.
      throw new Error(`postgresStore cannot start on ${this.#where}: ${reasonOf(error instanceof StoreUnavailableError ? error.cause : error)}`);
    }
  }
}

async function createPool(url: string, max: number, onError: ((error: Error) => void) | undefined): Promise<PostgresPool> {
  let Pool: typeof import('pg').Pool;
  try {
    ({ Pool } = await import('pg'));
  } catch (error) {
    throw new Error('postgresStore({ url }) needs the `pg` package: add it to your dependencies', { cause: error });
  }
  const created = new Pool({ connectionString: url, max });
  // Without a listener, an idle connection that breaks (a database restart) would crash the process.
  created.on('error', (error) => onError?.(error));
  listenToConnections(created);
  return created;
}

/**
 * A connection in use (a transaction's, between its statements) that breaks, the database restarting or an
 * operator ending it, emits `error` on its client, which `pg`'s pool listens to only while the connection is
 * idle: without a listener of its own, the process would crash. Its statements fail anyway (the next one as
 * not queryable), and the pool drops it when it is released. A pool that is no EventEmitter (not `pg`'s) is left as it is.
 */
function listenToConnections(pool: PostgresPool): void {
  if (pool instanceof EventEmitter) pool.on('connect', (client: EventEmitter) => client.on('error', () => {}));
}
