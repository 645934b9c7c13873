import { Kysely, PostgresDialect, type PostgresPool } from 'kysely';
import type { Logger } from '../logger.js';
import type { HeraldDatabase } from './schema.js';
import { postgresFlavor } from './sql-flavor.js';
import { SqlStore } from './sql-store.js';

export interface PostgresStoreOptions {
  /**
   * A `postgres://` connection string. The store then makes its own `pg` Pool on first use; `pg` is
   * an optional peer dependency of `@herald/core`, so install it next to it.
   */
  url?: string;
  /**
   * A pool to use instead of `url`: `pg`'s `Pool`, or anything kysely's `PostgresDialect` takes.
   * The store owns it from then on: `close()` ends it.
   */
  pool?: PostgresPool;
  /** Connections in the pool made from `url`. @default 10 */
  maxConnections?: number;
  /** Called with the errors of idle connections in the pool made from `url` (the pool replaces them). @default ignored */
  onPoolError?: (error: Error) => void;
  /** Told when the store starts refusing writes (with PostgreSQL's own error) and when it takes them again. @default silentLogger */
  logger?: Logger;
}

/**
 * The SQL store on PostgreSQL: the same kysely code as SQLite, for several Herald nodes sharing one
 * log and one outbox. Appends commit in `seq` order across nodes (an advisory lock in the append
 * transaction), and outbox claims use `FOR UPDATE SKIP LOCKED`. A write PostgreSQL refuses (a full disk,
 * a read-only server, a lost connection) is a 503 `StoreUnavailableError`, as on SQLite.
 */
export function postgresStore(options: PostgresStoreOptions): SqlStore {
  const { url, pool } = options;
  if ((url === undefined) === (pool === undefined)) throw new Error('postgresStore: give either `url` or `pool`');
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) throw new Error('postgresStore: `url` must start with postgres://');
  const dialect = new PostgresDialect({
    pool: pool ?? (() => createPool(url as string, options.maxConnections ?? 10, options.onPoolError)),
  });
  return new SqlStore(new Kysely<HeraldDatabase>({ dialect }), postgresFlavor, { logger: options.logger });
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
  return created;
}
