import { matchesPattern as serverMatches } from '@herald/core';
import { describe, expect, it } from 'vitest';
import { matchesPattern } from './type-patterns.js';

describe('matchesPattern', () => {
  it('matches as the server does, for every pattern against every type', () => {
    const types = ['order', 'order.created', 'order.updated', 'order.line.added', 'invoice.paid', 'order.created.v2'];
    const patterns = ['**', '*', 'order', 'order.*', 'order.**', '*.created', '*.*', '*.**', 'order.*.added', 'order.created', 'invoice.*', 'order.line.*'];
    for (const pattern of patterns) {
      for (const type of types) {
        expect(matchesPattern(pattern, type), `${pattern} against ${type}`).toBe(serverMatches(pattern, type));
      }
    }
    expect(matchesPattern('order.**', 'order.line.added')).toBe(true);
    expect(matchesPattern('order.*', 'order.line.added')).toBe(false);
  });
});
