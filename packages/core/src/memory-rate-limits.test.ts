import { describe, expect, it } from 'vitest';
import { memoryRateLimits } from './memory-rate-limits.js';

describe('memoryRateLimits', () => {
  it('refuses past the limit until the window ends, and counts each key apart', async () => {
    let now = 1_000_000;
    const store = memoryRateLimits({ now: () => now });
    expect(await store.take('a', 2, 10_000)).toEqual({ used: 1, resetMs: 10_000, allowed: true });
    now += 4_500;
    expect(await store.take('a', 2, 10_000)).toEqual({ used: 2, resetMs: 5_500, allowed: true });
    expect(await store.take('a', 2, 10_000)).toEqual({ used: 2, resetMs: 5_500, allowed: false });
    expect(await store.peek('a')).toEqual({ used: 2, resetMs: 5_500 });
    expect((await store.take('b', 2, 10_000)).allowed).toBe(true);
    now += 5_500;
    expect(await store.peek('a')).toEqual({ used: 0, resetMs: 0 });
    expect(await store.take('a', 2, 10_000)).toEqual({ used: 1, resetMs: 10_000, allowed: true });
  });

  it('forgets the windows of idle keys, and never keeps more than its most', async () => {
    let now = 0;
    const store = memoryRateLimits({ now: () => now, maxKeys: 1_000 });
    for (let n = 0; n < 800; n++) await store.take(`10.0.${n >> 8}.${n & 255}`, 5, 60_000);
    expect(store.size).toBe(800);
    now += 60_000;
    await store.take('192.0.2.1', 5, 60_000);
    expect(store.size).toBe(1);
    for (let n = 0; n < 5_000; n++) await store.take(`client-${n}`, 5, 60_000);
    expect(store.size).toBe(1_000);
  });
});
