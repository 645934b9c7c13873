/** A bucket's tokens `elapsed` ms after it held `tokens`: refilled at `rate` per second, up to one second's worth (at least one). */
export function refilled(tokens: number, elapsed: number, rate: number): number {
  return Math.min(Math.max(1, rate), tokens + (Math.max(0, elapsed) * rate) / 1000);
}

/** How long until a bucket holding `tokens` has one, in ms, at `rate` per second. */
export function untilToken(tokens: number, rate: number): number {
  return Math.ceil(((1 - tokens) * 1000) / rate);
}

/**
 * A rate limit on this node: a bucket of one second's worth of tokens (at least one), refilled at `rate`
 * per second. Unlimited until it is first asked, so that a key with no limit costs nothing.
 */
export class TokenBucket {
  #tokens = Number.POSITIVE_INFINITY;
  #at = 0;

  /** How many of `wanted` may be taken at `now`, at `rate` per second (the tokens are spent as they are taken). */
  available(now: number, rate: number, wanted: number): number {
    this.#tokens = refilled(this.#tokens, now - this.#at, rate);
    this.#at = now;
    return Math.min(wanted, Math.floor(this.#tokens));
  }

  /** How long until one token is there, in ms, at `rate` per second. */
  wait(rate: number): number {
    return untilToken(this.#tokens, rate);
  }

  /** Spends a token, once the bucket is in use. */
  spend(): void {
    if (Number.isFinite(this.#tokens)) this.#tokens -= 1;
  }
}
