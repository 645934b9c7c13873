import { z } from 'zod';

const segment = '[A-Za-z0-9_-]+';

/** Event-type names: dot-separated segments of letters, digits, `_` and `-`. */
export const eventTypeName = z
  .string()
  .max(128)
  .regex(new RegExp(`^${segment}(\\.${segment})*$`), 'must be dot-separated segments of letters, digits, "_" and "-"');

/** Patterns: names whose segments may also be `*` (one segment) or, last, `**` (one or more). */
export const eventTypePattern = z
  .string()
  .max(128)
  .regex(
    new RegExp(`^(${segment}|\\*)(\\.(${segment}|\\*))*(\\.\\*\\*)?$|^\\*\\*$`),
    'must be an event type, or a pattern with "*" for one segment and a final "**" for one or more',
  );

/**
 * Whether every store can keep `text`: it holds no U+0000, which PostgreSQL takes in no text, not even to
 * compare. An id or a name with one names nothing stored, on any store.
 */
export function isStorableText(text: string): boolean {
  return !text.includes('\0');
}

/** A string every store can keep (see {@link isStorableText}). */
export const storableString = z.string().refine(isStorableText, 'must hold no U+0000 (NUL)');

/** Consumer ids: what a provider calls its customers, e.g. `acme` or `cus_123`. */
export const consumerId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:@-]+$/, 'must be letters, digits and "_.:@-"');

/** True when `type` matches `pattern` (see {@link eventTypePattern}). */
export function matchesPattern(pattern: string, type: string): boolean {
  const want = pattern.split('.');
  const have = type.split('.');
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '**') return have.length > i;
    if (i >= have.length) return false;
    if (want[i] !== '*' && want[i] !== have[i]) return false;
  }
  return want.length === have.length;
}

/**
 * True when every event type `pattern` matches is also matched by `scope` (both event types or
 * patterns: `*` one segment, a final `**` one or more).
 */
export function patternCovers(scope: string, pattern: string): boolean {
  const outer = scope.split('.');
  const inner = pattern.split('.');
  for (let i = 0; i < outer.length; i++) {
    if (outer[i] === '**') return inner.length > i;
    if (i >= inner.length || inner[i] === '**') return false;
    if (outer[i] !== '*' && outer[i] !== inner[i]) return false;
  }
  return outer.length === inner.length;
}

/** The patterns a principal limited to `scope` may not stream. @returns an empty list when all are allowed */
export function outsideScope(scope: readonly string[] | undefined, patterns: readonly string[]): string[] {
  if (scope === undefined) return [];
  return patterns.filter((pattern) => !scope.some((allowed) => patternCovers(allowed, pattern)));
}
