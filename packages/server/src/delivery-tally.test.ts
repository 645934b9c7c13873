import { describe, expect, it } from 'vitest';
import { DeliveryTally } from './delivery-tally.js';

const bounds = [0.005, 0.05, 0.5, 5];

/** The tally's numbers, sums rounded to the microsecond. */
const numbersOf = (tally: DeliveryTally) => ({
  outcomes: Object.fromEntries(tally.outcomes),
  buckets: tally.buckets,
  count: tally.count,
  sum: Math.round(tally.sum * 1e6),
});

describe('DeliveryTally', () => {
  it('counts a batch delivered to many connections as it counts each delivery, also when the moment changes', () => {
    const now = 1_800_000_000_000;
    // Latencies across every bucket, one past them all, a publish after the delivery (skew) and one with no time.
    const publishedAt = [now - 1, now - 3, now - 20, now - 49, now - 51, now - 400, now - 4_000, now - 60_000, now + 5, Number.NaN];
    const batched = new DeliveryTally(bounds);
    const oneByOne = new DeliveryTally(bounds);
    for (const [connection, atMs] of [now, now, now + 2, now, now + 30, now + 30].entries()) {
      const outcome = connection === 4 ? 'dropped' : 'delivered';
      batched.addAll(outcome, publishedAt, atMs);
      for (const at of publishedAt) oneByOne.add(outcome, (atMs - at) / 1000);
    }
    expect(numbersOf(batched)).toEqual(numbersOf(oneByOne));
    expect(batched.outcomes.get('delivered')).toBe(5 * publishedAt.length);
    // Not timed: the one with no time; the one published "after" the delivery, except for the two 30 ms later.
    expect(batched.count).toBe(4 * 8 + 2 * 9);
    expect(batched.buckets.at(-1)).toBe(6);
  });
});
