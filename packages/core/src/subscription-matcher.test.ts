import { describe, expect, it } from 'vitest';
import { eventTypeName, eventTypePattern, matchesPattern } from './names.js';
import { type Matchable, SubscriptionMatcher } from './subscription-matcher.js';

interface Entry extends Matchable {
  readonly id: string;
  readonly types: readonly string[];
}

const entry = (id: string, ...types: string[]): Entry => ({ id, types });
const ids = (entries: readonly Matchable[]): string[] => entries.map((e) => e.id).sort();

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('SubscriptionMatcher', () => {
  it('matches exact names only', () => {
    const matcher = new SubscriptionMatcher<Entry>();
    matcher.set(entry('a', 'order.created'));
    matcher.set(entry('b', 'order.updated'));
    matcher.set(entry('c', 'order'));
    expect(ids(matcher.match('order.created'))).toEqual(['a']);
    expect(ids(matcher.match('order.updated'))).toEqual(['b']);
    expect(ids(matcher.match('order'))).toEqual(['c']);
    expect(matcher.match('order.created.v2')).toEqual([]);
    expect(matcher.match('invoice.created')).toEqual([]);
    expect(matcher.match('Order.created')).toEqual([]);
  });

  it('matches `*` against exactly one segment', () => {
    const matcher = new SubscriptionMatcher<Entry>();
    matcher.set(entry('tail', 'order.*'));
    matcher.set(entry('head', '*.created'));
    matcher.set(entry('middle', 'a.*.c'));
    matcher.set(entry('both', '*.*'));
    expect(ids(matcher.match('order.created'))).toEqual(['both', 'head', 'tail']);
    expect(ids(matcher.match('order.paid'))).toEqual(['both', 'tail']);
    expect(ids(matcher.match('invoice.created'))).toEqual(['both', 'head']);
    expect(matcher.match('order')).toEqual([]);
    expect(ids(matcher.match('a.b.c'))).toEqual(['middle']);
    expect(matcher.match('a.b.d')).toEqual([]);
    expect(ids(matcher.match('a.c'))).toEqual(['both']);
    expect(matcher.match('order.created.v2')).toEqual([]);
  });

  it('matches a trailing `**` against one or more segments', () => {
    const matcher = new SubscriptionMatcher<Entry>();
    matcher.set(entry('order', 'order.**'));
    matcher.set(entry('all', '**'));
    matcher.set(entry('mid', 'a.*.**'));
    expect(ids(matcher.match('order'))).toEqual(['all']);
    expect(ids(matcher.match('order.created'))).toEqual(['all', 'order']);
    expect(ids(matcher.match('order.created.v2.x'))).toEqual(['all', 'order']);
    expect(ids(matcher.match('a.b'))).toEqual(['all']);
    expect(ids(matcher.match('a.b.c'))).toEqual(['all', 'mid']);
    expect(ids(matcher.match('x'))).toEqual(['all']);
  });

  it('returns an entry once even when several of its patterns match', () => {
    const matcher = new SubscriptionMatcher<Entry>();
    const many = entry('many', 'order.created', 'order.*', '*.created', 'order.**', '**');
    matcher.set(many);
    matcher.set(entry('other', 'order.created'));
    const found = matcher.match('order.created');
    expect(found).toHaveLength(2);
    expect(ids(found)).toEqual(['many', 'other']);
    expect(found.find((e) => e.id === 'many')).toBe(many);
  });

  it('set replaces an entry with the same id: its old patterns no longer match', () => {
    const matcher = new SubscriptionMatcher<Entry>();
    matcher.set(entry('s', 'order.*', 'invoice.paid'));
    expect(ids(matcher.match('order.created'))).toEqual(['s']);
    const replacement = entry('s', 'user.**');
    matcher.set(replacement);
    expect(matcher.size).toBe(1);
    expect(matcher.get('s')).toBe(replacement);
    expect(matcher.match('order.created')).toEqual([]);
    expect(matcher.match('invoice.paid')).toEqual([]);
    expect(matcher.match('user.signed.up')).toEqual([replacement]);
  });

  it('delete removes the entry and prunes it from every pattern', () => {
    const matcher = new SubscriptionMatcher<Entry>();
    matcher.set(entry('a', 'order.created', 'order.*', '*.created', 'order.**', '**'));
    matcher.set(entry('b', 'order.*'));
    expect(matcher.size).toBe(2);
    matcher.delete('a');
    expect(matcher.size).toBe(1);
    expect(matcher.get('a')).toBeUndefined();
    expect(ids(matcher.match('order.created'))).toEqual(['b']);
    expect(matcher.match('invoice.created')).toEqual([]);
    expect(matcher.match('x.y.z')).toEqual([]);
    matcher.delete('b');
    matcher.delete('b');
    matcher.delete('never-there');
    expect(matcher.size).toBe(0);
    expect([...matcher.values()]).toEqual([]);
    expect(matcher.match('order.created')).toEqual([]);
    // The trie still works after being emptied.
    matcher.set(entry('c', 'order.*'));
    expect(ids(matcher.match('order.created'))).toEqual(['c']);
  });

  it('deleting one entry leaves the others that share a trie path intact', () => {
    const matcher = new SubscriptionMatcher<Entry>();
    matcher.set(entry('deep', 'a.b.c.d'));
    matcher.set(entry('shallow', 'a.b'));
    matcher.set(entry('star', 'a.*.c.*'));
    matcher.set(entry('star2', 'a.*'));
    matcher.delete('deep');
    matcher.delete('star2');
    expect(ids(matcher.match('a.b'))).toEqual(['shallow']);
    expect(ids(matcher.match('a.b.c.d'))).toEqual(['star']);
    expect(ids(matcher.match('a.x.c.y'))).toEqual(['star']);
  });

  it('finds exactly the right entries among 10,000 over 1,000 types (seeded, against matchesPattern)', () => {
    const random = prng(20240611);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const vocabulary = ['order', 'invoice', 'user', 'created', 'updated', 'paid', 'v1', 'v2', 'a_b', 'x-y', 'n1'];

    const typeSet = new Set<string>();
    while (typeSet.size < 1000) {
      const depth = 1 + Math.floor(random() * 4);
      typeSet.add(Array.from({ length: depth }, () => pick(vocabulary)).join('.'));
    }
    const types = [...typeSet];

    const randomPattern = (): string => {
      const segments = pick(types).split('.');
      const roll = random();
      if (roll < 0.002) return '**';
      if (roll < 0.4) return segments.join('.');
      const starred = segments.map((segment) => (random() < 0.35 ? '*' : segment));
      if (roll < 0.75) return starred.join('.');
      const keep = Math.max(1, Math.floor(random() * starred.length));
      return `${starred.slice(0, keep).join('.')}.**`;
    };

    const matcher = new SubscriptionMatcher<Entry>();
    const entries: Entry[] = [];
    for (let i = 0; i < 10_000; i++) {
      const count = 1 + Math.floor(random() * 3);
      const e = entry(`sub_${i}`, ...Array.from({ length: count }, randomPattern));
      entries.push(e);
      matcher.set(e);
    }
    // Replace and delete some, so the index is checked after churn too.
    for (let i = 0; i < 1000; i++) {
      const at = Math.floor(random() * entries.length);
      const current = entries[at] as Entry;
      if (random() < 0.5) {
        matcher.delete(current.id);
        entries.splice(at, 1);
      } else {
        const replaced = entry(current.id, randomPattern());
        entries[at] = replaced;
        matcher.set(replaced);
      }
    }
    expect(matcher.size).toBe(entries.length);
    const invalid = entries.flatMap((e) => e.types).filter((pattern) => !eventTypePattern.safeParse(pattern).success);
    expect(invalid).toEqual([]);

    // Every known type, plus some that no exact pattern names (deeper or made of unknown segments).
    // (A sample of the known types keeps the brute-force side of the comparison fast.)
    const probes = [
      ...types.filter((_, i) => i % 8 === 0),
      'nothing',
      'order.nothing.at.all.here',
      'zz.created',
      ...types.slice(0, 30).map((t) => `${t}.extra`),
    ];
    expect(probes.filter((type) => !eventTypeName.safeParse(type).success)).toEqual([]);
    let totalMatches = 0;
    for (const type of probes) {
      const expected = entries.filter((e) => e.types.some((pattern) => matchesPattern(pattern, type))).map((e) => e.id);
      const found = matcher.match(type).map((e) => e.id);
      if (found.length !== new Set(found).size) expect.fail(`${type}: an entry was returned twice`);
      if (found.sort().join() !== expected.sort().join()) expect(found, type).toEqual(expected);
      totalMatches += found.length;
    }
    // The comparison is only meaningful if the random patterns actually match things.
    expect(totalMatches).toBeGreaterThan(probes.length);
  });
});
