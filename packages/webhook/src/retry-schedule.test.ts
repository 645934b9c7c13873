import { describe, expect, it } from 'vitest';
import { outcomeOf } from './delivery-outcome.js';
import { defaultRetrySchedule, parseRetryAfter, parseRetrySchedule, retryDelay } from './retry-schedule.js';
import { resolveWebhookOptions } from './webhook-options.js';

describe('retry schedule', () => {
  it('defaults to at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    expect(defaultRetrySchedule).toEqual([0, 5, 300, 1800, 7200, 18000, 36000, 36000]);
    expect(resolveWebhookOptions({}, {}).retrySchedule).toEqual(defaultRetrySchedule);
  });

  it('reads HERALD_WEBHOOK_RETRY_SCHEDULE, and the option wins over it', () => {
    expect(resolveWebhookOptions({}, { HERALD_WEBHOOK_RETRY_SCHEDULE: '0, 1.5,60' }).retrySchedule).toEqual([0, 1.5, 60]);
    expect(resolveWebhookOptions({ retrySchedule: [0, 2] }, { HERALD_WEBHOOK_RETRY_SCHEDULE: '0,1' }).retrySchedule).toEqual([0, 2]);
    for (const bad of ['', '0,,5', '0,-1', '0,soon', 'NaN']) expect(() => parseRetrySchedule(bad)).toThrow(/HERALD_WEBHOOK_RETRY_SCHEDULE/);
  });

  it('applies at most ±jitter to each wait', () => {
    const schedule = [0, 10, 100];
    expect(retryDelay(schedule, 1, 0.2)).toBe(0);
    expect(retryDelay(schedule, 2, 0.2, () => 0)).toBe(8_000);
    expect(retryDelay(schedule, 2, 0.2, () => 0.999999)).toBeCloseTo(12_000, -1);
    const seen = Array.from({ length: 500 }, () => retryDelay(schedule, 3, 0.2) as number);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(80_000);
    expect(Math.max(...seen)).toBeLessThanOrEqual(120_000);
    expect(new Set(seen).size).toBeGreaterThan(100);
    expect(retryDelay(schedule, 4, 0.2)).toBeUndefined();
  });

  it('reads Retry-After as seconds or an HTTP date, capped at a day', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('9999999', now)).toBe(86_400_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('attempt outcomes', () => {
  const schedule = [0, 5, 300];
  const now = 1_000_000;
  it('2xx is delivered; 410 fails and disables', () => {
    expect(outcomeOf({ status: 204, durationMs: 1 }, 1, schedule, 0, now)).toEqual({ status: 'delivered' });
    expect(outcomeOf({ status: 410, durationMs: 1 }, 1, schedule, 0, now)).toMatchObject({ status: 'failed', disable: expect.stringContaining('410') });
  });

  it('other answers and errors are retried on the schedule until it runs out', () => {
    expect(outcomeOf({ status: 500, durationMs: 1 }, 1, schedule, 0, now)).toEqual({ status: 'pending', nextAttemptAt: now + 5_000, error: 'the endpoint answered 500' });
    expect(outcomeOf({ status: 302, durationMs: 1 }, 2, schedule, 0, now)).toMatchObject({ status: 'pending', nextAttemptAt: now + 300_000, error: expect.stringContaining('redirects are not followed') });
    expect(outcomeOf({ error: 'connection refused (ECONNREFUSED)', durationMs: 1 }, 3, schedule, 0, now)).toMatchObject({ status: 'failed', error: expect.stringContaining('gave up after 3 attempts') });
  });

  it('honours Retry-After on 429 and 503 only', () => {
    expect(outcomeOf({ status: 429, retryAfter: '42', durationMs: 1 }, 1, schedule, 0, now).nextAttemptAt).toBe(now + 42_000);
    expect(outcomeOf({ status: 503, retryAfter: '1', durationMs: 1 }, 1, schedule, 0, now).nextAttemptAt).toBe(now + 1_000);
    expect(outcomeOf({ status: 500, retryAfter: '42', durationMs: 1 }, 1, schedule, 0, now).nextAttemptAt).toBe(now + 5_000);
  });
});
