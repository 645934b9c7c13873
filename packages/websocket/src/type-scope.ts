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

/** The patterns a principal limited to `scope` may not subscribe to. @returns an empty list when all are allowed */
export function outsideScope(scope: readonly string[] | undefined, patterns: readonly string[]): string[] {
  if (scope === undefined) return [];
  return patterns.filter((pattern) => !scope.some((allowed) => patternCovers(allowed, pattern)));
}
