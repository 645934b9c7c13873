/**
 * True when the event type `type` matches `pattern`, as the server matches a subscription's types: `*` is one
 * segment, a final `**` one or more (`order.*` matches `order.created`, `order.**` also `order.line.added`).
 * The same rule as `matchesPattern` of `@herald/core`, kept here so that the client depends on nothing at run time.
 */
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
