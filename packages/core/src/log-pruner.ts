import type { RetentionRules } from './log-retention.js';
import { type Logger, silentLogger } from './logger.js';
import { RepeatedFailure } from './repeated-failure.js';
import type { PruneResult } from './sql/log-prune.js';

/** A store whose log can be pruned: the SQL store is one. */
export interface PrunableLog {
  prune(rules: RetentionRules, now?: number, batchSize?: number): Promise<PruneResult>;
  logSize(): Promise<{ events: number; bytes: number }>;
}

/** Whether `store` can prune its log. */
export function isPrunable(store: object): store is PrunableLog {
  const candidate = store as Partial<PrunableLog>;
  return typeof candidate.prune === 'function' && typeof candidate.logSize === 'function';
}

export interface LogPrunerOptions {
  log: PrunableLog;
  /** The rules as they are now (types registered over the API add theirs), asked for each round. */
  rules(): RetentionRules;
  /** Milliseconds between rounds. @default 1000 */
  interval?: number;
  /** Events looked at per batch; a round runs batches until nothing more is ready, yielding between them. @default 200 */
  batchSize?: number;
  /** Milliseconds between the batches of a round, so that appends go first. @default 20 */
  pause?: number;
  logger?: Logger;
}

/**
 * Keeps the log in bounds, off the hot path: every `interval` it prunes in small batches, each a short
 * transaction, with a pause between them for appends and reads. A failed round is logged and tried again at
 * the next one.
 */
export class LogPruner {
  readonly #options: LogPrunerOptions;
  readonly #logger: Logger;
  readonly #failure: RepeatedFailure;
  #timer?: NodeJS.Timeout;
  #round?: Promise<void>;
  #stopped = false;
  /** Events deleted since the start. */
  pruned = 0;

  constructor(options: LogPrunerOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#failure = new RepeatedFailure(this.#logger, 'warn', 'pruning the log failed');
  }

  start(): void {
    this.#timer = setInterval(() => void this.run(), this.#options.interval ?? 1000);
    this.#timer.unref();
  }

  /** One round now (or the one running); resolves when it is over. */
  run(): Promise<void> {
    this.#round ??= this.#prune().finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  /** Stops, after the batch in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#round;
  }

  async #prune(): Promise<void> {
    const { log, batchSize = 200, pause = 20 } = this.#options;
    try {
      const rules = this.#options.rules();
      for (;;) {
        const { pruned, floor, more } = await log.prune(rules, Date.now(), batchSize);
        this.pruned += pruned;
        this.#failure.succeeded();
        if (pruned > 0) this.#logger.debug({ pruned, floor }, 'pruned the log');
        if (!more || this.#stopped) return;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    } catch (error) {
      this.#failure.failed(error);
    }
  }
}
