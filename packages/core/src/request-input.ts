import { z } from 'zod';

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

/**
 * A number in a query string (`?limit=50`), checked by `schema`: a numeral becomes its number, as with
 * `z.coerce.number()`, but anything else (a word, the parameter given twice) stays as it came, for the
 * error to say what it was ({@link queryInputError}).
 */
export function queryNumber<T extends z.ZodType<number>>(schema: T) {
  return z.preprocess((value) => (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : value), schema);
}
