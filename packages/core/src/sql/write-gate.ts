import { setTimeout as delay } from 'node:timers/promises';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SqlFlavor } from './sql-flavor.js';

/** The first wait for a lock held elsewhere, in ms; each next one is twice as long, up to `longestWait`. */
const firstWait = 2;
const longestWait = 50;
/** Tries of a write that the database rolls back to end a conflict, run again at once (a deadlock takes a second to find). */
const conflictTries = 3;

/**
 * Runs `attempt`, again after a wait on a timer each time the database is locked elsewhere, until
 * `lockTimeout` after `since`, and again at once (up to {@link conflictTries} in all) when the database
 * rolled it back to end a conflict; then throws what the last attempt threw. `attempt` must fail before it
 * has done anything when it finds the lock taken or is rolled back (a transaction, which SQLite begins by
 * taking the lock).
 */
export async function retryWhileLocked<T>(flavor: Pick<SqlFlavor, 'refusal' | 'conflicted'>, attempt: () => Promise<T>, since: number, lockTimeout: number): Promise<T> {
  let conflicts = 0;
  for (let wait = firstWait; ; wait = Math.min(wait * 2, longestWait)) {
    try {
      return await attempt();
    } catch (error) {
      if (flavor.conflicted?.(error) && ++conflicts < conflictTries) continue;
      if (flavor.refusal(error) !== 'locked' || Date.now() + wait >= since + lockTimeout) throw error;
      await delay(wait);
    }
  }
}

/**
 * What every write of the SQL store goes through. A write that finds the database locked by another
 * connection runs again after a wait on a timer, never blocking the event loop, until `lockTimeout`
 * after it began; a write the database refuses (that lock for too long, a full disk, ...) becomes a
 * {@link StoreUnavailableError}. The gate remembers that the store refuses writes until one succeeds,
 * for readiness, and logs when that starts and ends.
 */
export class WriteGate {
  readonly #flavor: SqlFlavor;
  readonly #lockTimeout: number;
  readonly #logger: Logger;
  #refused?: StoreUnavailableError;
  /** Whether the refusal was logged, for its end to be. */
  #refusalLogged = false;

  constructor(flavor: SqlFlavor, lockTimeout: number, logger: Logger) {
    this.#flavor = flavor;
    this.#lockTimeout = lockTimeout;
    this.#logger = logger;
  }

  /** The last refusal, while no write has succeeded since. */
  get refused(): StoreUnavailableError | undefined {
    return this.#refused;
  }

  /**
   * Runs `write`, again while the database is locked elsewhere, until `lockTimeout` after `since`. The
   * write must be safe to run again after a lock failure: one transaction (which SQLite begins by taking
   * the lock, so it fails before doing anything), or statements that each are. `quiet`: a refusal is not
   * logged, for a write whose caller says why it failed (a store's start).
   */
  async run<T>(write: () => Promise<T>, since = Date.now(), lockTimeout = this.#lockTimeout, { quiet = false }: { quiet?: boolean } = {}): Promise<T> {
    try {
      const result = await retryWhileLocked(this.#flavor, write, since, lockTimeout);
      this.#accepted();
      return result;
    } catch (error) {
      // The driver may have said so already (see postgres-refusing-dialect.ts).
      if (error instanceof StoreUnavailableError) throw this.#refuse(error, quiet);
      const refusal = this.#flavor.refusal(error);
      if (refusal === undefined) throw error;
      throw this.#refuse(new StoreUnavailableError(refusal, error), quiet);
    }
  }

  /** Runs `write` once, without waiting for a lock: whether the store takes writes now. */
  async probe(write: () => Promise<unknown>): Promise<void> {
    await this.run(write, Date.now(), 0);
  }

  #refuse(error: StoreUnavailableError, quiet: boolean): StoreUnavailableError {
    if (!this.#refusalLogged && !quiet) {
      const log = error.refusal === 'locked' ? this.#logger.warn : this.#logger.error;
      log.call(this.#logger, { err: error.cause, refusal: error.refusal }, `the store refuses writes: ${error.message}`);
      this.#refusalLogged = true;
    }
    this.#refused = error;
    return error;
  }

  #accepted(): void {
    if (!this.#refused) return;
    this.#refused = undefined;
    if (this.#refusalLogged) this.#logger.info('the store accepts writes again');
    this.#refusalLogged = false;
  }
}
