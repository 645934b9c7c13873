import { describe, expect, it } from 'vitest';
import { endpointHealth } from './endpoint-health.js';
import type { Attempt, Delivery } from './portal-api.js';

const now = Date.parse('2026-12-05T12:00:00Z');
const attempt = (minutesAgo: number, status: string, durationMs: number): Attempt => ({
  attempt: 1,
  startedAt: new Date(now - minutesAgo * 60_000).toISOString(),
  status,
  responseStatus: status === 'succeeded' ? 200 : 500,
  durationMs,
  responseBody: null,
  error: null,
});
const delivery = (...attempts: Attempt[]): Delivery => ({ id: 'dlv', eventSeq: 1, status: 'delivered', attemptCount: attempts.length, attempts });

describe('endpointHealth', () => {
  it('counts the attempts of the last 24 hours by hour: success rate and median latency', () => {
    const health = endpointHealth(
      [delivery(attempt(5, 'failed', 100), attempt(4, 'succeeded', 20)), delivery(attempt(90, 'succeeded', 40)), delivery(attempt(25 * 60, 'failed', 999))],
      now,
    );
    expect(health.attempts).toBe(3);
    expect(health.succeeded).toBe(2);
    expect(health.successRate).toBeCloseTo(2 / 3);
    expect(health.medianMs).toBe(40);
    expect(health.hours).toHaveLength(24);
    expect(health.hours[23]).toEqual({ start: now - 3_600_000, attempts: 2, succeeded: 1, medianMs: 60 });
    expect(health.hours[22]).toMatchObject({ attempts: 1, succeeded: 1, medianMs: 40 });
    expect(health.hours.slice(0, 22).every((hour) => hour.attempts === 0 && hour.medianMs === null)).toBe(true);
  });

  it('has no rate and no latency without attempts', () => {
    expect(endpointHealth([], now)).toMatchObject({ attempts: 0, successRate: null, medianMs: null });
  });
});
