import { describe, expect, it } from 'vitest';
import { eventTypePattern, matchesPattern, outsideScope, patternCovers } from './names.js';

describe('matchesPattern', () => {
  it.each([
    ['order.created', 'order.created', true],
    ['order.created', 'order.updated', false],
    ['order.*', 'order.created', true],
    ['order.*', 'order.created.v2', false],
    ['order.*', 'order', false],
    ['order.**', 'order.created.v2', true],
    ['order.**', 'order', false],
    ['*.created', 'invoice.created', true],
    ['**', 'anything.at.all', true],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
  ])('%s ~ %s is %s', (pattern, type, expected) => {
    expect(matchesPattern(pattern, type)).toBe(expected);
  });

  it.each(['order.created', 'order.*', '*.created', 'order.**', '**', 'a.*.b.**'])('accepts the pattern %s', (pattern) => {
    expect(eventTypePattern.safeParse(pattern).success).toBe(true);
  });

  it.each(['', 'order.', '.order', 'order..created', 'order.**.created', 'ord er', 'order.***', '**.x', 'a.b*'])(
    'refuses the pattern %j',
    (pattern) => {
      expect(eventTypePattern.safeParse(pattern).success).toBe(false);
    },
  );
});

describe('type scope', () => {
  it.each([
    ['**', 'order.created', true],
    ['**', 'order.**', true],
    ['order.*', 'order.created', true],
    ['order.*', 'order.*', true],
    ['order.*', 'order.**', false],
    ['order.*', 'order.line.added', false],
    ['order.**', 'order.line.*', true],
    ['order.**', 'order', false],
    ['order.created', 'order.*', false],
    ['*.paid', 'invoice.paid', true],
    ['invoice.paid', '*.paid', false],
  ])('%s covers %s: %s', (scope, pattern, covers) => {
    expect(patternCovers(scope, pattern)).toBe(covers);
  });

  it('lists what falls outside the scope', () => {
    expect(outsideScope(undefined, ['**'])).toEqual([]);
    expect(outsideScope(['order.*', 'invoice.paid'], ['order.created', 'invoice.*', 'invoice.paid'])).toEqual(['invoice.*']);
  });
});
