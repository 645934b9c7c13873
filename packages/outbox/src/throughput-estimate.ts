/** How often the throughput is measured, in ms: soon enough that a burst after a quiet spell is claimed ahead within its first rounds. */
const window = 50;
/** A destination is claimed ahead for about this much of its measured throughput, in seconds... */
const prefetchSeconds = 0.25;
/** ...but at least its concurrency and at most this many. */
const maxPrefetch = 1024;

/**
 * Attempts finished per second at one destination, smoothed: how far ahead of its free slots it is
 * claimed, so that a free slot never waits for a commit and commits stay few.
 */
export class ThroughputEstimate {
  #rate = 0;
  #finished = 0;
  #since: number;

  constructor(now: number) {
    this.#since = now;
  }

  /** Attempts finished per second; 0 until the first estimate. */
  get rate(): number {
    return this.#rate;
  }

  /**
   * One more attempt finished at `now`. The rate is measured every 50 ms, and first as soon as a round
   * of `concurrency` attempts has finished, so that a new destination is claimed ahead for at once.
   */
  finished(now: number, concurrency: number): void {
    this.#finished += 1;
    const elapsed = now - this.#since;
    const firstRound = this.#rate === 0 && this.#finished >= concurrency && elapsed > 0;
    if (elapsed >= window || firstRound) {
      const measured = (this.#finished * 1000) / elapsed;
      this.#rate = this.#rate === 0 ? measured : 0.5 * this.#rate + 0.5 * measured;
      this.#finished = 0;
      this.#since = now;
    }
  }

  /** How many deliveries to keep claimed beyond those in flight: a quarter of a second's worth, at least `concurrency`, at most 1,024. */
  ahead(concurrency: number): number {
    return Math.min(maxPrefetch, Math.max(concurrency, Math.round(this.#rate * prefetchSeconds)));
  }
}
