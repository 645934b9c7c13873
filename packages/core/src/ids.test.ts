import { describe, expect, it } from 'vitest';
import { newId } from './ids.js';

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

/** The milliseconds in an id's 10 time characters. */
function timeOf(id: string): number {
  let time = 0;
  for (const character of id.slice(4, 14)) time = time * 32 + alphabet.indexOf(character);
  return time;
}

describe('newId', () => {
  it('is the prefix, 10 characters of the time and 16 random ones, in Crockford base32', () => {
    const before = Date.now();
    const id = newId('dlv');
    expect(id).toMatch(/^dlv_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(timeOf(id)).toBeGreaterThanOrEqual(before);
    expect(timeOf(id)).toBeLessThanOrEqual(Date.now());
  });

  it('sorts by time, never repeats, and uses the whole alphabet in every random position', async () => {
    const first = newId('evt');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const ids = Array.from({ length: 20_000 }, () => newId('evt'));
    expect(ids.every((id) => id > first)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (let position = 14; position < 30; position++) {
      expect(new Set(ids.map((id) => id[position])).size).toBe(32);
    }
  });
});
