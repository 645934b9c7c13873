/**
 * A destination's rate limit: a bucket of one second's worth of tokens (at least one), refilled at `rate`
 * per second. Unlimited until it is first asked, so that a destination with no limit costs nothing.
 */
export class TokenBucket {
  #tokens = Number.POSITIVE_INFINITY;
  #at = 0;

  /** How many of `wanted` deliveries may be claimed at `now`, at `rate` per second (the tokens are spent as they are claimed). */
  available(now: number, rate: number, wanted: number): number {
    this.#tokens = Math.min(Math.max(1, rate), this.#tokens + ((now - this.#at) * rate) / 1000);
    this.#at = now;
    return Math.min(wanted, Math.floor(this.#tokens));
  }

  /** How long until one token is there, in ms, at `rate` per second. */
  wait(rate: number): number {
    return Math.ceil(((1 - this.#tokens) * 1000) / rate);
  }

  /** Spends a token on a claimed delivery, once the bucket is in use. */
  spend(): void {
    if (Number.isFinite(this.#tokens)) this.#tokens -= 1;
  }
}
