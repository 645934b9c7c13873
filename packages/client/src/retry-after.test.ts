import { describe, expect, it } from 'vitest';
import { retryAfterOf } from './retry-after.js';

describe('Retry-After', () => {
  it('reads a Retry-After of seconds or of an HTTP date, and nothing else', () => {
    const now = Date.parse('2026-12-07T08:00:00Z');
    expect(retryAfterOf('2', now)).toBe(2_000);
    expect(retryAfterOf(' 120 ', now)).toBe(120_000);
    expect(retryAfterOf('Mon, 07 Dec 2026 08:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterOf('Mon, 07 Dec 2026 07:59:00 GMT', now)).toBe(0);
    for (const header of [null, '', 'soon', '-1', '1.5']) expect(retryAfterOf(header, now)).toBeUndefined();
  });
});
