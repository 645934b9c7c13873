import { describe, expect, it } from 'vitest';
import { settledAttempt } from './attempt-outcome.js';
import type { Delivery } from './outbox.js';

const now = 1_000_000;
const retry = { retrySchedule: [0, 5, 300], jitter: 0 };
/** The `attempts`-th attempt of a delivery, claimed at `now`. */
const delivery = (attempts: number): Delivery => ({
  id: 'dlv_1',
  subscriptionId: 'sub_1',
  eventSeq: 7,
  eventId: 'evt_7',
  status: 'pending',
  attempts,
  nextAttemptAt: now,
  lockedBy: 'wkr_1',
  lockedUntil: now + 60_000,
  createdAt: now,
  updatedAt: now,
});

describe('what an attempt leaves its delivery in', () => {
  it('delivered, with what the destination answered and how long it took', () => {
    expect(settledAttempt(delivery(1), undefined, now, 12.4, { delivered: true, responseStatus: 204 }, retry, now + 12)).toEqual({
      attempt: { deliveryId: 'dlv_1', subscriptionId: 'sub_1', attempt: 1, startedAt: now, durationMs: 12, outcome: 'succeeded', responseStatus: 204 },
      status: 'delivered',
    });
  });

  it('pending, due after the next wait of the schedule, until the schedule runs out', () => {
    const failed = { delivered: false, error: 'the broker nacked it' };
    expect(settledAttempt(delivery(1), undefined, now, 3, failed, retry, now).attempt).toMatchObject({ outcome: 'failed', error: 'the broker nacked it', nextAttemptAt: now + 5_000 });
    expect(settledAttempt(delivery(2), undefined, now, 3, failed, retry, now)).toMatchObject({ status: 'pending', attempt: { nextAttemptAt: now + 300_000 } });
    const last = settledAttempt(delivery(3), undefined, now, 3, failed, retry, now);
    expect(last).toMatchObject({ status: 'failed', attempt: { error: 'the broker nacked it; gave up after 3 attempts' } });
    expect(last.attempt.nextAttemptAt).toBeUndefined();
    expect(settledAttempt(delivery(1), undefined, now, 3, { delivered: false }, retry, now).attempt.error).toBe('the attempt failed');
  });

  it('after retryAfter rather than the schedule, while the schedule has attempts left', () => {
    const busy = { delivered: false, error: 'the endpoint answered 429', retryAfter: 42_000 };
    expect(settledAttempt(delivery(1), undefined, now, 3, busy, retry, now).attempt.nextAttemptAt).toBe(now + 42_000);
    expect(settledAttempt(delivery(3), undefined, now, 3, busy, retry, now).status).toBe('failed');
  });

  it("keeps of a transport's numbers only those a store can keep: a whole status, a wait from 0 to a day", () => {
    const status = (responseStatus: number) => settledAttempt(delivery(1), undefined, now, 3, { delivered: true, responseStatus }, retry, now).attempt.responseStatus;
    expect([0, 250, 2 ** 31 - 1].map(status)).toEqual([0, 250, 2 ** 31 - 1]);
    expect([-1, 1.5, 2 ** 31, Number.NaN, Number.POSITIVE_INFINITY].map(status)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    const due = (retryAfter: number) => settledAttempt(delivery(1), undefined, now, 3, { delivered: false, retryAfter }, retry, now).attempt.nextAttemptAt;
    expect([0, 1_500.6, 86_400_000].map(due)).toEqual([now, now + 1_501, now + 86_400_000]);
    expect([1e300, Number.POSITIVE_INFINITY].map(due)).toEqual([now + 86_400_000, now + 86_400_000]);
    // Not a wait: the schedule's is taken.
    expect([-1, Number.NaN].map(due)).toEqual([now + 5_000, now + 5_000]);
  });

  it('failed at once when the result is final or disables the subscription', () => {
    expect(settledAttempt(delivery(1), undefined, now, 3, { delivered: false, error: 'too large for the queue', final: true }, retry, now)).toMatchObject({
      status: 'failed',
      attempt: { error: 'too large for the queue' },
    });
    expect(settledAttempt(delivery(1), undefined, now, 3, { delivered: false, error: 'gone', disable: 'gone' }, retry, now)).toMatchObject({
      status: 'failed',
      attempt: { error: 'gone' },
    });
  });

  it('carries the delivery a fan-out held, whose row the attempt makes', () => {
    const held = { id: 'dlv_1', subscriptionId: 'sub_1', eventSeq: 7, eventId: 'evt_7', nextAttemptAt: now, claimed: true };
    expect(settledAttempt(delivery(1), held, now, 3, { delivered: true }, retry, now).held).toBe(held);
  });
});
