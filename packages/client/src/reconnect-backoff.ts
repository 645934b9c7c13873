/** How long a client waits before it connects again: exponential backoff with full jitter. */
export interface BackoffOptions {
  /** The first new connection waits up to this long, in ms. @default 500 */
  initialDelay?: number;
  /** No wait is longer than this, in ms. @default 30000 */
  maxDelay?: number;
  /** How much the longest wait grows after each connection that failed. @default 2 */
  backoffFactor?: number;
}

/** The waits before successive new connections; `reset()` once one succeeds. */
export class ReconnectBackoff {
  readonly initialDelay: number;
  readonly #maxDelay: number;
  readonly #factor: number;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    this.initialDelay = options.initialDelay ?? 500;
    this.#maxDelay = options.maxDelay ?? 30_000;
    this.#factor = options.backoffFactor ?? 2;
  }

  /** The wait before the next new connection, in ms: random, up to a ceiling that grows with each call. */
  next(): number {
    const ceiling = Math.min(this.#maxDelay, this.initialDelay * this.#factor ** this.#attempt);
    this.#attempt += 1;
    return Math.round(Math.random() * ceiling);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
