import { CompiledQuery, type DatabaseConnection, type Driver, type QueryCompiler, type QueryResult, type TransactionSettings } from 'kysely';
import { StoreUnavailableError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { RepeatedFailure } from '../repeated-failure.js';
import type { SqlFlavor } from './sql-flavor.js';

/**
 * The statement of a store's `ping`. It reads nothing of the database (SQLite answers it from a damaged file),
 * so its success does not end a run of refused statements, which a readiness check would otherwise end at each try.
 */
export const pingStatement = CompiledQuery.raw('select 1');

/**
 * `error`, or the {@link StoreUnavailableError} it is when `flavor` says the database refused the statement
 * for a reason other than a lock. A lock held elsewhere stays the driver's error, for the {@link WriteGate},
 * the pruner and the app's transactions to wait out.
 */
export function asStoreRefusal(flavor: Pick<SqlFlavor, 'refusal'>, error: unknown): unknown {
  const refusal = flavor.refusal(error);
  return refusal === undefined || refusal === 'locked' ? error : new StoreUnavailableError(refusal, error);
}

/** How a {@link RefusingDriver} treats a connection a statement was refused on, and where it logs refusals. */
export interface RefusingDriverOptions {
  /**
   * Rolls back a connection a statement was refused on as it is released: kysely's PostgreSQL driver then
   * discards it when the database has ended it, which `pg`'s pool would hand out again until the socket's end
   * arrives (outside a transaction, a rollback on a live connection only warns). @default false
   */
  rollBackRefused?: boolean;
  /**
   * Told of refused statements: the first (at `warn`, with the database's own error as `err`), then at most one
   * line a minute with their count, and one line (`info`) when a statement succeeds again. Refusals before the
   * database took any statement are not logged: they fail a store's start, which says why. @default silentLogger
   */
  logger?: Logger;
}

/**
 * A kysely driver whose statements, reads as well as writes, and transaction commands throw what `refused`
 * makes of the database's error: a {@link StoreUnavailableError} (a 503) when the database refuses them (see
 * {@link asStoreRefusal}). A write gets that from the {@link WriteGate} anyway; a read passes no gate, and its
 * driver's own error would otherwise be a 500. The refusals are logged as a {@link RepeatedFailure} (see
 * `logger`): a refused read, answered with a 503, would otherwise leave the database's error nowhere.
 */
export class RefusingDriver implements Driver {
  readonly #driver: Required<Driver>;
  readonly #refusals: Refusals;
  readonly #rollBackRefused: boolean;

  constructor(driver: Required<Driver>, refused: (error: unknown) => unknown, { rollBackRefused = false, logger = silentLogger }: RefusingDriverOptions = {}) {
    this.#driver = driver;
    this.#refusals = new Refusals(refused, logger);
    this.#rollBackRefused = rollBackRefused;
  }

  init(): Promise<void> {
    return this.#driver.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new RefusingConnection(await this.#refusing(this.#driver.acquireConnection()), this.#refusals);
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#refusing(this.#driver.beginTransaction(inner(connection), settings));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#refusing(this.#driver.commitTransaction(inner(connection)));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#refusing(this.#driver.rollbackTransaction(inner(connection)));
  }

  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return this.#refusing(this.#driver.savepoint(inner(connection), name, compile));
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return this.#refusing(this.#driver.rollbackToSavepoint(inner(connection), name, compile));
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return this.#refusing(this.#driver.releaseSavepoint(inner(connection), name, compile));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    if (this.#rollBackRefused && connection instanceof RefusingConnection && connection.refused) {
      await this.#driver.rollbackTransaction(connection.inner).catch(() => {});
    }
    return this.#driver.releaseConnection(inner(connection));
  }

  destroy(): Promise<void> {
    return this.#driver.destroy();
  }

  /** `work`, whose error is thrown as `refused` makes it. */
  async #refusing<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      throw this.#refusals.thrown(error);
    }
  }
}

/**
 * What the database's errors are thrown as, and the log of its refusals. Only a statement's success ends a
 * run of them, not a transaction command's: SQLite begins a transaction on a damaged file.
 */
class Refusals {
  readonly #refused: (error: unknown) => unknown;
  readonly #log: RepeatedFailure;
  /** Whether the database took a statement yet: refusals before fail a store's start, which says why. */
  #tookOne = false;

  constructor(refused: (error: unknown) => unknown, logger: Logger) {
    this.#refused = refused;
    this.#log = new RepeatedFailure(logger, 'warn', 'the database refused a statement');
  }

  /** What to throw for `error`; a refusal is logged. */
  thrown(error: unknown): unknown {
    const thrown = this.#refused(error);
    if (thrown instanceof StoreUnavailableError && this.#tookOne) this.#log.failed(error);
    return thrown;
  }

  /** The database took `query`. */
  took(query: CompiledQuery): void {
    if (query === pingStatement) return;
    this.#tookOne = true;
    this.#log.succeeded();
  }
}

/** The driver's own connection under a {@link RefusingConnection}, which the driver's methods take. */
function inner(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof RefusingConnection ? connection.inner : connection;
}

/** One use of a connection: `refused` once the database refused a statement on it. */
class RefusingConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  readonly #refusals: Refusals;
  refused = false;

  constructor(connection: DatabaseConnection, refusals: Refusals) {
    this.inner = connection;
    this.#refusals = refusals;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      const result = await this.inner.executeQuery<R>(query);
      this.#refusals.took(query);
      return result;
    } catch (error) {
      throw this.#thrown(error);
    }
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(query, chunkSize);
      this.#refusals.took(query);
    } catch (error) {
      throw this.#thrown(error);
    }
  }

  /** What to throw for `error`; a refusal marks the connection `refused`. */
  #thrown(error: unknown): unknown {
    const thrown = this.#refusals.thrown(error);
    if (thrown instanceof StoreUnavailableError) this.refused = true;
    return thrown;
  }
}
