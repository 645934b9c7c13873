import { defaultRetrySchedule } from '@herald/outbox';
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from './retry-after.js';
import { resolveWebhookOptions } from './webhook-options.js';
import { webhookOutcome } from './webhook-outcome.js';

describe('webhook retry schedule', () => {
  it('defaults to at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    expect(resolveWebhookOptions({}, {}).retrySchedule).toEqual(defaultRetrySchedule);
  });

  it('reads HERALD_WEBHOOK_RETRY_SCHEDULE, and the option wins over it', () => {
    expect(resolveWebhookOptions({}, { HERALD_WEBHOOK_RETRY_SCHEDULE: '0, 1.5,60' }).retrySchedule).toEqual([0, 1.5, 60]);
    expect(resolveWebhookOptions({ retrySchedule: [0, 2] }, { HERALD_WEBHOOK_RETRY_SCHEDULE: '0,1' }).retrySchedule).toEqual([0, 2]);
    for (const bad of ['0,,5', '0,-1', '0,soon', 'NaN']) {
      expect(() => resolveWebhookOptions({}, { HERALD_WEBHOOK_RETRY_SCHEDULE: bad })).toThrow(/HERALD_WEBHOOK_RETRY_SCHEDULE must be seconds/);
    }
  });

  it('refuses options that make no sense, naming webhook()', () => {
    expect(() => resolveWebhookOptions({ timeout: 0 }, {})).toThrow('webhook(): timeout must be a number of at least 1');
    expect(() => resolveWebhookOptions({ responseBodyBytes: -1 }, {})).toThrow('webhook(): responseBodyBytes must be a number of at least 0');
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

describe("what an endpoint's answer means", () => {
  const now = 1_000_000;
  it('2xx is delivered; 410 fails and disables', () => {
    expect(webhookOutcome({ status: 204, durationMs: 1 }, now)).toEqual({ delivered: true, responseStatus: 204, responseBody: undefined });
    expect(webhookOutcome({ status: 410, body: 'gone', durationMs: 1 }, now)).toEqual({
      delivered: false,
      responseStatus: 410,
      responseBody: 'gone',
      error: 'the endpoint answered 410 Gone',
      disable: 'the endpoint answered 410 Gone',
    });
  });

  it('other answers and errors fail the attempt, saying why', () => {
    expect(webhookOutcome({ status: 500, body: 'boom', durationMs: 1 }, now)).toMatchObject({ delivered: false, responseStatus: 500, responseBody: 'boom', error: 'the endpoint answered 500' });
    expect(webhookOutcome({ status: 302, durationMs: 1 }, now)).toMatchObject({ error: 'the endpoint answered 302 (redirects are not followed)' });
    expect(webhookOutcome({ error: 'connection refused (ECONNREFUSED)', durationMs: 1 }, now)).toEqual({ delivered: false, error: 'connection refused (ECONNREFUSED)' });
  });

  it('honours Retry-After on 429 and 503 only', () => {
    expect(webhookOutcome({ status: 429, retryAfter: '42', durationMs: 1 }, now).retryAfter).toBe(42_000);
    expect(webhookOutcome({ status: 503, retryAfter: '1', durationMs: 1 }, now).retryAfter).toBe(1_000);
    expect(webhookOutcome({ status: 500, retryAfter: '42', durationMs: 1 }, now).retryAfter).toBeUndefined();
  });
});
