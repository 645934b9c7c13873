import { z } from 'zod';
import { eventTypePattern } from './names.js';

/**
 * Words for what zod says of a request's input in terms of its own ("Invalid input: expected nonoptional,
 * received undefined", "expected number, received NaN"): `schema.safeParse(input, { error: inputError })`. A
 * schema's own messages still win.
 */
export function inputError(issue: { code?: string; expected?: string; input?: unknown }): string | undefined {
  if (issue.code !== 'invalid_type') return undefined;
  if (issue.input === undefined) return 'required';
  if (issue.expected === 'int') return 'must be a whole number';
  if (issue.expected === 'number' && (typeof issue.input === 'string' || Number.isNaN(issue.input))) {
    return `must be a number${typeof issue.input === 'string' ? `, not ${JSON.stringify(issue.input)}` : ''}`;
  }
  return undefined;
}

/** {@link inputError} for a query string, where a value that is a list was given more than once (`?after=1&after=2`). */
export function queryInputError(issue: { code?: string; expected?: string; input?: unknown }): string | undefined {
  if (issue.code === 'invalid_type' && Array.isArray(issue.input)) return 'given more than once; give it once';
  return inputError(issue);
}

/** A decimal numeral: `50`, `-1`, `2.5`; not ` 50`, `1e2` nor `0x10`, which `Number()` would read too. */
const decimalNumeral = /^-?\d+(?:\.\d+)?$/;

/**
 * A number in a query string (`?limit=50`), checked by `schema`: a decimal numeral becomes its number, but
 * anything else (a word, `1e2`, the parameter given twice) stays as it came, for the error to say what it was
 * ({@link queryInputError}).
 */
export function queryNumber<T extends z.ZodType<number>>(schema: T) {
  return z.preprocess((value) => (typeof value === 'string' && decimalNumeral.test(value) ? Number(value) : value), schema);
}

/**
 * The `types` parameter of a query string, given comma-separated (`types=a,b`), repeated (`types=a&types=b`)
 * or both: event types and patterns, at most 100, each once. Pair it with {@link refuseBracketedTypes}.
 */
export const queryTypes = z
  .union([z.string(), z.array(z.string())])
  .transform((value) => (Array.isArray(value) ? value : [value]).flatMap((item) => item.split(',')).map((item) => item.trim()))
  .pipe(z.array(eventTypePattern).min(1, 'name at least one event type or pattern').max(100))
  .transform((types) => [...new Set(types)])
  .describe('Event types and patterns, comma-separated (or repeated): `*` one segment, a final `**` one or more');

/**
 * For the `superRefine` of a query (a `z.looseObject`, which keeps the keys it does not name): refuses
 * `types[]=a`, which the query string does not read as `types`, so that a filter is never silently lost, with an
 * issue at `["types[]"]` saying how `types` is given. Returns whether it refused one.
 */
export function refuseBracketedTypes(query: object, issues: z.RefinementCtx): boolean {
  const bracketed = Object.keys(query).filter((name) => name.startsWith('types['));
  for (const name of bracketed) {
    issues.addIssue({ code: 'custom', path: [name], message: 'is not a parameter: give types comma-separated (types=a,b) or repeated (types=a&types=b)' });
  }
  return bracketed.length > 0;
}

/**
 * For the `superRefine` of a stream's query (SSE, poll): {@link refuseBracketedTypes}, then exactly one of `types`
 * (ad hoc) and `subscription` (durable); a bracketed `types` counts as given, so that it is not refused twice.
 */
export function requireTypesOrSubscription(query: { types?: unknown; subscription?: unknown }, issues: z.RefinementCtx): void {
  const bracketed = refuseBracketedTypes(query, issues);
  if (query.types === undefined && bracketed) return;
  if ((query.types === undefined) === (query.subscription === undefined)) {
    issues.addIssue({ code: 'custom', path: ['types'], message: 'give either types or subscription (exactly one of them)' });
  }
}
