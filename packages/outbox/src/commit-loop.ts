export interface CommitLoopOptions {
  /** What `soon` waits at most, in ms, so that what is recorded meanwhile shares the commit. @default 50 */
  batchDelay?: number;
  /** How long `retryLater` waits, in ms. @default 1000 */
  retryDelay?: number;
}

/**
 * Runs a cycle (the delivery engine's commit of its writes, fan-out and claims) one at a time. `now`
 * starts it in the next check phase of the event loop, `soon` within `batchDelay`, `retryLater` after
 * `retryDelay`; asked while a cycle runs, it runs once more after it (or the cycle goes round again,
 * when it looks at `again`). A cycle starts in the check phase because the store answers
 * synchronously: a cycle started at once would commit each answer that arrives on its own, where
 * waiting a phase lets every answer already received share one commit.
 */
export class CommitLoop {
  readonly #cycle: () => Promise<void>;
  readonly #onError: (error: unknown) => void;
  readonly #batchDelay: number;
  readonly #retryDelay: number;
  #running?: Promise<void>;
  #again = false;
  #soon?: NodeJS.Timeout;
  #retry?: NodeJS.Timeout;

  constructor(cycle: () => Promise<void>, onError: (error: unknown) => void, options: CommitLoopOptions = {}) {
    this.#cycle = cycle;
    this.#onError = onError;
    this.#batchDelay = options.batchDelay ?? 50;
    this.#retryDelay = options.retryDelay ?? 1000;
  }

  /** Whether a cycle was asked for since the running one last called `clearAgain`. */
  get again(): boolean {
    return this.#again;
  }

  /** Called by the cycle as it begins a round: what is asked from now on needs another. */
  clearAgain(): void {
    this.#again = false;
  }

  /** Runs a cycle now, or another one after the current. */
  now(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#soon);
    this.#soon = undefined;
    this.#running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#cycle())
      .catch(this.#onError)
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.now();
        }
      });
  }

  /** Runs a cycle within `batchDelay`, or another one after the current. */
  soon(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#soon ??= setTimeout(() => {
      this.#soon = undefined;
      this.now();
    }, this.#batchDelay);
  }

  /** Runs a cycle after `retryDelay`, e.g. after a commit the store refused. */
  retryLater(): void {
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined;
      this.now();
    }, this.#retryDelay);
  }

  /** Resolves once no cycle runs. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Forgets the cycles asked for later (`soon`, `retryLater`). */
  cancelTimers(): void {
    clearTimeout(this.#soon);
    clearTimeout(this.#retry);
    this.#soon = undefined;
    this.#retry = undefined;
  }
}
