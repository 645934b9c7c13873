import type { RateLimitStore, WindowCount } from './rate-limit-store.js';

export interface MemoryRateLimitsOptions {
  /** The most keys with an open window kept; past it the oldest windows are forgotten. @default 100000 */
  maxKeys?: number;
  /** The clock, in ms. @default Date.now */
  now?: () => number;
}

/**
 * Rate-limit counters in this process's memory: each node counts its own. A window that has ended is
 * forgotten (it counts as nothing), so what is kept is the keys hit within one window, never more than
 * `maxKeys` of them. The server keeps one of these for each of its limits by itself, so that a flood of one
 * cannot push out the others' counts: there is no need to give it one as `rateLimitStore`.
 */
export function memoryRateLimits(options: MemoryRateLimitsOptions = {}): RateLimitStore & { readonly size: number } {
  return new MemoryRateLimits(options.maxKeys ?? 100_000, options.now ?? Date.now);
}

class MemoryRateLimits implements RateLimitStore {
  /** Open windows by key, in the order they opened. */
  readonly #windows = new Map<string, { end: number; used: number }>();
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** When ended windows are swept out next (a window after the last sweep). */
  #sweepAt = 0;

  constructor(maxKeys: number, now: () => number) {
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  /** Keys with a window still open (or ended and not yet swept out). */
  get size(): number {
    return this.#windows.size;
  }

  async take(key: string, limit: number, windowMs: number): Promise<WindowCount & { allowed: boolean }> {
    const now = this.#now();
    this.#sweep(now, windowMs);
    let window = this.#live(key, now);
    if (window === undefined) {
      if (this.#windows.size >= this.#maxKeys) this.#forgetOldest();
      window = { end: now + windowMs, used: 0 };
      this.#windows.set(key, window);
    }
    const allowed = window.used < limit;
    if (allowed) window.used += 1;
    return { used: window.used, resetMs: window.end - now, allowed };
  }

  async peek(key: string): Promise<WindowCount> {
    const now = this.#now();
    const window = this.#live(key, now);
    return window ? { used: window.used, resetMs: window.end - now } : { used: 0, resetMs: 0 };
  }

  #live(key: string, now: number): { end: number; used: number } | undefined {
    const window = this.#windows.get(key);
    if (window === undefined || now < window.end) return window;
    this.#windows.delete(key);
    return undefined;
  }

  #sweep(now: number, windowMs: number): void {
    if (now < this.#sweepAt) return;
    this.#sweepAt = now + windowMs;
    for (const [key, window] of this.#windows) if (now >= window.end) this.#windows.delete(key);
  }

  #forgetOldest(): void {
    const oldest = this.#windows.keys().next();
    if (!oldest.done) this.#windows.delete(oldest.value);
  }
}
