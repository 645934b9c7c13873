import { describe, expect, it } from 'vitest';
import { ThroughputEstimate } from './throughput-estimate.js';

describe('ThroughputEstimate', () => {
  it('claims `concurrency` ahead until its first estimate, made once a round of attempts has finished', () => {
    const estimate = new ThroughputEstimate(0);
    expect(estimate.ahead(10)).toBe(10);
    for (let n = 1; n < 10; n++) estimate.finished(n, 10);
    expect(estimate.rate).toBe(0);
    // Ten attempts in 10 ms: 1,000 a second, so a quarter of a second's worth is 250.
    estimate.finished(10, 10);
    expect(estimate.rate).toBe(1_000);
    expect(estimate.ahead(10)).toBe(250);
  });

  it('measures every 50 ms after that, half the new measure and half the old', () => {
    const estimate = new ThroughputEstimate(0);
    for (let n = 1; n <= 10; n++) estimate.finished(n, 10);
    // 4 more in the next 50 ms: 80 a second, smoothed with the 1,000 before.
    for (const at of [20, 30, 40, 60]) estimate.finished(at, 10);
    expect(estimate.rate).toBe(540);
    estimate.finished(70, 10);
    expect(estimate.rate).toBe(540);
  });

  it('claims ahead at least `concurrency` and at most 1,024', () => {
    const slow = new ThroughputEstimate(0);
    for (let n = 1; n <= 10; n++) slow.finished(n * 1_000, 10);
    expect(slow.ahead(10)).toBe(10);
    const fast = new ThroughputEstimate(0);
    for (let n = 0; n < 10; n++) fast.finished(1, 10);
    expect(fast.rate).toBe(10_000);
    expect(fast.ahead(10)).toBe(1_024);
  });
});
