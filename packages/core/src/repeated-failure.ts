import type { Logger } from './logger.js';

/** How often a failure that keeps repeating is logged again, in ms, with how many times it failed since. */
const repeatEvery = 60_000;

/**
 * The log of a failure that repeats while something it needs is away (a poll of the store while the
 * database is down): the first failure is logged, then at most one line a minute with the count, and one
 * line when it works again, rather than a line at every try.
 */
export class RepeatedFailure {
  readonly #logger: Logger;
  readonly #level: 'warn' | 'error';
  readonly #what: string;
  readonly #clock: () => number;
  #failures = 0;
  #loggedAt = 0;
  #loggedFailures = 0;

  /**
   * @param what what failed, as the log says it: `polling the log failed`.
   * @param clock ms now. @default Date.now
   */
  constructor(logger: Logger, level: 'warn' | 'error', what: string, clock: () => number = Date.now) {
    this.#logger = logger;
    this.#level = level;
    this.#what = what;
    this.#clock = clock;
  }

  /** It failed again with `error`: logged if it is the first time, or a minute after the last line. */
  failed(error: unknown): void {
    this.#failures += 1;
    const now = this.#clock();
    if (this.#failures > 1 && now - this.#loggedAt < repeatEvery) return;
    const since = this.#failures - this.#loggedFailures;
    const again = this.#failures === 1 ? '' : ` (${since} times since the last line, ${this.#failures} in all)`;
    this.#logger[this.#level]({ err: error, failures: this.#failures }, `${this.#what}${again}`);
    this.#loggedAt = now;
    this.#loggedFailures = this.#failures;
  }

  /** It worked: after failures, one line says so. */
  succeeded(): void {
    if (this.#failures === 0) return;
    this.#logger.info({ failures: this.#failures }, `${this.#what} ${this.#failures === 1 ? 'once' : `${this.#failures} times`}; it works again`);
    this.#failures = 0;
    this.#loggedFailures = 0;
  }
}
