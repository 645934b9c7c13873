import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('allows a second of deliveries at once, then refills at the rate', () => {
    const bucket = new TokenBucket();
    expect(bucket.available(0, 10, 50)).toBe(10);
    for (let n = 0; n < 10; n++) bucket.spend();
    expect(bucket.available(0, 10, 50)).toBe(0);
    expect(bucket.wait(10)).toBe(100);
    expect(bucket.available(250, 10, 50)).toBe(2);
    // Never more than a second's worth, however long it waited.
    expect(bucket.available(60_000, 10, 50)).toBe(10);
    expect(bucket.available(60_000, 10, 3)).toBe(3);
  });

  it('holds at least one token, so a rate under 1 a second still sends', () => {
    const bucket = new TokenBucket();
    expect(bucket.available(0, 0.5, 5)).toBe(1);
    bucket.spend();
    expect(bucket.wait(0.5)).toBe(2_000);
    expect(bucket.available(2_000, 0.5, 5)).toBe(1);
  });

  it('spends nothing until it is first asked: a destination without a limit costs nothing', () => {
    const bucket = new TokenBucket();
    bucket.spend();
    bucket.spend();
    expect(bucket.available(0, 2, 10)).toBe(2);
  });
});
