import type { RateLimitStore } from '@herald/core';

/** A rate-limit store made on `init()` by `load`: lets the server pick a store package only when it is configured. */
export function lazyRateLimits(load: () => Promise<RateLimitStore>): RateLimitStore {
  let store: RateLimitStore | undefined;
  const loaded = (): RateLimitStore => {
    if (!store) throw new Error('The rate-limit store is used before init()');
    return store;
  };
  return {
    async init() {
      store ??= await load();
      await store.init?.();
    },
    take: (key, limit, windowMs) => loaded().take(key, limit, windowMs),
    peek: (key) => loaded().peek(key),
    close: async () => store?.close?.(),
  };
}
