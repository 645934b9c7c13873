import { matchesPattern } from '@herald/core';

/** Remembered results, pattern → type → match; cleared whole when it grows past the limit. */
const results = new Map<string, Map<string, boolean>>();
let size = 0;
const limit = 50_000;

/**
 * `matchesPattern`, remembered: fan-out asks the same question for every connection that uses a
 * pattern, and the answer needs no string splitting the second time.
 */
export function patternMatches(pattern: string, type: string): boolean {
  const known = results.get(pattern)?.get(type);
  if (known !== undefined) return known;
  const matched = matchesPattern(pattern, type);
  if (size >= limit) {
    results.clear();
    size = 0;
  }
  let byType = results.get(pattern);
  if (!byType) results.set(pattern, (byType = new Map()));
  byType.set(type, matched);
  size += 1;
  return matched;
}
