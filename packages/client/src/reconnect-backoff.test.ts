import { describe, expect, it } from 'vitest';
import { ReconnectBackoff } from './reconnect-backoff.js';

describe('the reconnect backoff', () => {
  it('waits at random up to 500 ms, then up to twice as long after each failure, never over 30 s, and from 500 ms again once reset', () => {
    const samples = (calls: number) =>
      Array.from({ length: 300 }, () => {
        const backoff = new ReconnectBackoff({});
        for (let call = 1; call < calls; call++) backoff.next();
        return backoff.next();
      });
    for (const [calls, ceiling] of [
      [1, 500],
      [3, 2_000],
      [7, 30_000],
      [20, 30_000],
    ] as const) {
      const waits = samples(calls);
      expect(Math.min(...waits)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...waits)).toBeLessThanOrEqual(ceiling);
      // Full jitter: the waits spread over the whole range, up to near the ceiling.
      expect(Math.max(...waits)).toBeGreaterThan(ceiling * 0.9);
    }
    const backoff = new ReconnectBackoff({});
    const afterReset = Array.from({ length: 50 }, () => {
      for (let call = 0; call < 10; call++) backoff.next();
      backoff.reset();
      return backoff.next();
    });
    expect(Math.max(...afterReset)).toBeLessThanOrEqual(500);
  });
});
