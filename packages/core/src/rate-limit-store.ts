/** A key's open window, as a {@link RateLimitStore} counts it. */
export interface WindowCount {
  /** Hits counted in the window (the one just taken included). */
  used: number;
  /** Milliseconds until the window ends; 0 when none is open. */
  resetMs: number;
}

/**
 * Fixed-window hit counters by key, in which the server counts its rate limits: a window opens with a
 * key's first hit, lasts `windowMs`, and counts at most `limit` hits. Implementations: {@link memoryRateLimits}
 * (each node counts its own) and `@herald/redis`'s `redisRateLimits()` (the nodes count together, so that a
 * limit holds across the cluster).
 */
export interface RateLimitStore {
  /** Connects. @default nothing to do */
  init?(): Promise<void>;
  /** Counts a hit of `key`, unless its open window has `limit` already; `allowed` says whether it did. */
  take(key: string, limit: number, windowMs: number): Promise<WindowCount & { allowed: boolean }>;
  /** The open window of `key`, counting nothing. */
  peek(key: string): Promise<WindowCount>;
  /** Lets go of its connections. @default nothing to do */
  close?(): Promise<void>;
}
