/**
 * The waits before the live tail opens a new stream: exponential backoff with full jitter, the policy of
 * `@herald/client`'s ReconnectBackoff (kept here so that the portal does not depend on the client).
 * `reset()` once a stream opens.
 */
export class ReconnectBackoff {
  #attempt = 0;

  constructor(
    /** The first wait is up to this long, in ms. @default 500 */
    readonly initialDelay = 500,
    /** No wait is longer than this, in ms. @default 30000 */
    readonly maxDelay = 30_000,
    /** How much the longest wait grows after each stream that could not open. @default 2 */
    readonly factor = 2,
  ) {}

  /** The wait before the next new stream, in ms: random, up to a ceiling that grows with each call. */
  next(): number {
    const ceiling = Math.min(this.maxDelay, this.initialDelay * this.factor ** this.#attempt);
    this.#attempt += 1;
    return Math.round(Math.random() * ceiling);
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** A `Retry-After` header's wait in ms (delay-seconds or an HTTP date), or undefined when there is none or it means nothing. */
export function retryAfterOf(header: string | null, now = Date.now()): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its month (`Wed, 21 Oct 2015 07:28:00 GMT`); Date.parse would take "-1" or "1.5" for dates too.
  const at = /[a-z]/i.test(value) ? Date.parse(value) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
