import { TokenBucket } from './token-bucket.js';

/** Buckets left alone this long are full again, and forgotten. */
const idleAfter = 1_000;

/** A token bucket per key (one second's worth of tokens, refilled at `rate` per second), on this node. */
export class KeyedRateLimit {
  readonly #rate: number;
  readonly #buckets = new Map<string, { bucket: TokenBucket; usedAt: number }>();

  constructor(rate: number) {
    this.#rate = rate;
  }

  /** Spends a token of `key` at `now`; undefined when there was one, else how many ms until there is. */
  take(key: string, now: number): number | undefined {
    if (this.#buckets.size > 100) this.#forgetIdle(now);
    let entry = this.#buckets.get(key);
    if (!entry) {
      entry = { bucket: new TokenBucket(), usedAt: now };
      this.#buckets.set(key, entry);
    }
    entry.usedAt = now;
    if (entry.bucket.available(now, this.#rate, 1) === 0) return entry.bucket.wait(this.#rate);
    entry.bucket.spend();
    return undefined;
  }

  #forgetIdle(now: number): void {
    for (const [key, { usedAt }] of this.#buckets) if (now - usedAt >= idleAfter * Math.max(1, this.#rate) / this.#rate) this.#buckets.delete(key);
  }
}
