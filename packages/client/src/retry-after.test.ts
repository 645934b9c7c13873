import { describe, expect, it } from 'vitest';
import { passingStatus, retryAfterOf } from './retry-after.js';

describe('Retry-After', () => {
  it('reads a Retry-After of seconds or of an HTTP date, and nothing else', () => {
    const now = Date.parse('2026-12-07T08:00:00Z');
    expect(retryAfterOf('2', now)).toBe(2_000);
    expect(retryAfterOf(' 120 ', now)).toBe(120_000);
    expect(retryAfterOf('Mon, 07 Dec 2026 08:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterOf('Mon, 07 Dec 2026 07:59:00 GMT', now)).toBe(0);
    for (const header of [null, '', 'soon', '-1', '1.5']) expect(retryAfterOf(header, now)).toBeUndefined();
  });

  it('takes 408, 429 and the 5xx for answers that pass, and no other', () => {
    expect([408, 429, 500, 502, 503, 504].filter(passingStatus)).toEqual([408, 429, 500, 502, 503, 504]);
    expect([200, 204, 400, 401, 403, 404, 409, 422].filter(passingStatus)).toEqual([]);
  });
});
