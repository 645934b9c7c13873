import { matchesPattern } from './names.js';

/** Remembered results, pattern → type → match; cleared whole when it grows past the limit. */
const results = new Map<string, Map<string, boolean>>();
let size = 0;
const limit = 50_000;

/**
 * `matchesPattern`, remembered: live fan-out asks the same question for every subscription that uses a
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

/** Whether any of `patterns` matches `type`. */
export function anyPatternMatches(patterns: readonly string[], type: string): boolean {
  for (const pattern of patterns) if (patternMatches(pattern, type)) return true;
  return false;
}
