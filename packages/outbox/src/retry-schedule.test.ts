import { describe, expect, it } from 'vitest';
import { resolvePushOptions } from './push-options.js';
import { defaultRetrySchedule, parseRetrySchedule, retryDelay } from './retry-schedule.js';

describe('retry schedule', () => {
  it('defaults to at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    expect(defaultRetrySchedule).toEqual([0, 5, 300, 1800, 7200, 18000, 36000, 36000]);
    expect(resolvePushOptions('queue', {}).retrySchedule).toEqual(defaultRetrySchedule);
  });

  it('parses seconds separated by commas, and names the variable of anything else', () => {
    expect(parseRetrySchedule('0, 1.5,60', 'HERALD_QUEUE_RETRY_SCHEDULE')).toEqual([0, 1.5, 60]);
    for (const bad of ['', '0,,5', '0,-1', '0,soon', 'NaN']) {
      expect(() => parseRetrySchedule(bad, 'HERALD_QUEUE_RETRY_SCHEDULE')).toThrow(/^HERALD_QUEUE_RETRY_SCHEDULE must be seconds separated by commas/);
    }
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

  it('refuses options that make no sense, naming the transport', () => {
    expect(() => resolvePushOptions('queue', { retrySchedule: [] })).toThrow('queue(): retrySchedule must list at least one wait of 0 seconds or more');
    expect(() => resolvePushOptions('queue', { jitter: 1 })).toThrow('queue(): jitter must be at least 0 and below 1');
    expect(() => resolvePushOptions('queue', { timeout: 10_000, lease: 11_000 })).toThrow('queue(): lease must be at least 2 s longer than timeout');
    expect(resolvePushOptions('queue', { timeout: 1_000 })).toMatchObject({ timeout: 1_000, lease: 31_000, concurrency: 10, jitter: 0.2 });
  });
});
