import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  PostgresDialect,
  type PostgresDialectConfig,
  PostgresDriver,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { StoreUnavailableError, ValidationError } from '../errors.js';
import { errorCode, postgresFlavor } from './sql-flavor.js';

const unstorableText = 'The request holds the character U+0000 (NUL), which the database takes in no text';

/** kysely's PostgreSQL dialect, on a {@link RefusingPostgresDriver}. */
export class RefusingPostgresDialect extends PostgresDialect {
  readonly #config: PostgresDialectConfig;

  constructor(config: PostgresDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new RefusingPostgresDriver(new PostgresDriver(this.#config));
  }
}

/**
 * A kysely driver for PostgreSQL whose statements, reads as well as writes, throw a
 * {@link StoreUnavailableError} (a 503) when the database refuses them for a reason other than a lock: a
 * lost connection, a server shutting down, a full disk. A write gets that from the {@link WriteGate}
 * anyway; a read passes no gate, and its driver's own error would otherwise be a 500. A lock held
 * elsewhere stays the driver's error, for the gate and the pruner to wait out. A statement with text that
 * holds U+0000, which input the routes did not check may bring, is a {@link ValidationError} (a 422).
 */
class RefusingPostgresDriver implements Driver {
  readonly #driver: Required<Driver>;

  constructor(driver: Required<Driver>) {
    this.#driver = driver;
  }

  init(): Promise<void> {
    return this.#driver.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new RefusingConnection(await refusing(this.#driver.acquireConnection()));
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return refusing(this.#driver.beginTransaction(inner(connection), settings));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return refusing(this.#driver.commitTransaction(inner(connection)));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return refusing(this.#driver.rollbackTransaction(inner(connection)));
  }

  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return refusing(this.#driver.savepoint(inner(connection), name, compile));
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return refusing(this.#driver.rollbackToSavepoint(inner(connection), name, compile));
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return refusing(this.#driver.releaseSavepoint(inner(connection), name, compile));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    // A refused connection may be one the database has ended, which pg's pool would hand out again until its
    // socket's end arrives. kysely's driver discards a connection whose rollback fails (outside a transaction,
    // a rollback on a live connection only warns).
    if (connection instanceof RefusingConnection && connection.refused) await this.#driver.rollbackTransaction(connection.inner).catch(() => {});
    return this.#driver.releaseConnection(inner(connection));
  }

  destroy(): Promise<void> {
    return this.#driver.destroy();
  }
}

/** `error`, or the StoreUnavailableError or ValidationError it is. */
function asRefusal(error: unknown): unknown {
  // character_not_in_repertoire: text with U+0000, which PostgreSQL takes in no text, not even to compare.
  if (errorCode(error) === '22021') return new ValidationError(unstorableText, [], 'validation-failed', error);
  const refusal = postgresFlavor.refusal(error);
  return refusal === undefined || refusal === 'locked' ? error : new StoreUnavailableError(refusal, error);
}

/** `work`, whose error is thrown as {@link asRefusal} makes it. */
async function refusing<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw asRefusal(error);
  }
}

/** The driver's own connection under a {@link RefusingConnection}, which the driver's methods take. */
function inner(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof RefusingConnection ? connection.inner : connection;
}

/** One use of a connection of the pool: `refused` once the database refused a statement on it. */
class RefusingConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  refused = false;

  constructor(connection: DatabaseConnection) {
    this.inner = connection;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(query);
    } catch (error) {
      throw this.#thrown(error);
    }
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(query, chunkSize);
    } catch (error) {
      throw this.#thrown(error);
    }
  }

  /** What to throw for `error`; a refusal marks the connection `refused`. */
  #thrown(error: unknown): unknown {
    const thrown = asRefusal(error);
    if (thrown instanceof StoreUnavailableError) this.refused = true;
    return thrown;
  }
}
