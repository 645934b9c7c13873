import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { HeraldEvent } from './envelope.js';
import {
  compileFilter,
  type EventFilter,
  eventFilterQuery,
  eventFilterSchema,
  filterIssues,
  filterPathIssues,
  InvalidFilterError,
  maxFilterDepth,
  parseFilter,
  passesFilter,
} from './event-filter.js';
import { defineEventType, EventCatalog } from './event-type-catalog.js';

const event: HeraldEvent = {
  specversion: '1.0',
  id: 'evt_1',
  seq: 7,
  type: 'order.created',
  source: 'shop',
  subject: 'eu-42',
  time: '2026-12-05T10:00:00.000Z',
  datacontenttype: 'application/json',
  data: {
    total: 150,
    code: '150',
    note: null,
    vip: true,
    tags: ['gift', 'express'],
    lines: [{ sku: 'a-1', qty: 2 }],
    customer: { country: 'DE', name: 'Ada' },
  },
};

// Each expectation is worked out by hand from the event above.
const table: [EventFilter, boolean][] = [
  // Bare values and $eq
  [{ 'data.total': 150 }, true],
  [{ 'data.total': 151 }, false],
  [{ 'data.total': { $eq: 150 } }, true],
  [{ type: 'order.created' }, true],
  [{ subject: 'eu-42', 'data.customer.country': 'DE' }, true],
  [{ subject: 'eu-42', 'data.customer.country': 'FR' }, false],
  [{ 'data.customer.name': 'ada' }, false],
  // Numbers in strings are strings: no coercion either way
  [{ 'data.code': 150 }, false],
  [{ 'data.code': '150' }, true],
  [{ 'data.total': '150' }, false],
  [{ 'data.code': { $gte: 100 } }, false],
  [{ 'data.code': { $gte: '100' } }, true],
  [{ 'data.code': { $gte: '9' } }, false],
  // Comparisons
  [{ 'data.total': { $gt: 150 } }, false],
  [{ 'data.total': { $gte: 150 } }, true],
  [{ 'data.total': { $lt: 150 } }, false],
  [{ 'data.total': { $lte: 150 } }, true],
  [{ 'data.total': { $gt: 100, $lt: 200 } }, true],
  [{ 'data.total': { $gt: 100, $lt: 120 } }, false],
  [{ time: { $gte: '2026-12-01' } }, true],
  [{ seq: { $gt: 6 } }, true],
  [{ 'data.vip': { $gt: 0 } }, false],
  // $ne, $in, $nin
  [{ 'data.total': { $ne: 150 } }, false],
  [{ 'data.total': { $ne: 10 } }, true],
  [{ 'data.customer.country': { $in: ['DE', 'AT'] } }, true],
  [{ 'data.customer.country': { $in: ['FR'] } }, false],
  [{ 'data.customer.country': { $in: [] } }, false],
  [{ 'data.customer.country': { $nin: ['FR', 'IT'] } }, true],
  [{ 'data.customer.country': { $nin: ['DE'] } }, false],
  // Missing paths: nothing equals them, $ne and $nin hold, no comparison holds
  [{ 'data.missing': 1 }, false],
  [{ 'data.missing': null }, false],
  [{ 'data.missing': { $ne: 1 } }, true],
  [{ 'data.missing': { $nin: [1] } }, true],
  [{ 'data.missing': { $gt: 0 } }, false],
  [{ 'data.missing': { $lt: 0 } }, false],
  [{ 'data.missing': { $startsWith: '' } }, false],
  [{ 'data.missing': { $exists: false } }, true],
  [{ 'data.missing': { $exists: true } }, false],
  [{ 'data.customer.country.code': 'DE' }, false],
  [{ consumer: { $exists: false } }, true],
  // null is a value: it exists, equals null, and compares with nothing
  [{ 'data.note': null }, true],
  [{ 'data.note': { $exists: true } }, true],
  [{ 'data.note': { $ne: null } }, false],
  [{ 'data.note': { $in: [null, 'x'] } }, true],
  [{ 'data.note': { $gte: 0 } }, false],
  [{ 'data.total': null }, false],
  // Arrays: a condition holds when it holds for one element ($ne and $nin: for none); indexes reach into them
  [{ 'data.tags': 'gift' }, true],
  [{ 'data.tags': 'toys' }, false],
  [{ 'data.tags': { $ne: 'gift' } }, false],
  [{ 'data.tags': { $ne: 'toys' } }, true],
  [{ 'data.tags': { $in: ['toys', 'express'] } }, true],
  [{ 'data.tags': { $nin: ['toys', 'express'] } }, false],
  [{ 'data.tags': { $startsWith: 'exp' } }, true],
  [{ 'data.tags.0': 'gift' }, true],
  [{ 'data.tags.1': 'gift' }, false],
  [{ 'data.tags.5': { $exists: false } }, true],
  [{ 'data.lines.0.qty': { $gte: 2 } }, true],
  [{ 'data.lines.sku': 'a-1' }, false],
  // $startsWith and booleans
  [{ subject: { $startsWith: 'eu-' } }, true],
  [{ subject: { $startsWith: 'us-' } }, false],
  [{ 'data.total': { $startsWith: '1' } }, false],
  [{ 'data.vip': true }, true],
  [{ 'data.vip': 'true' }, false],
  // Logic
  [{}, true],
  [{ $and: [{ 'data.total': { $gte: 100 } }, { 'data.vip': true }] }, true],
  [{ $and: [{ 'data.total': { $gte: 100 } }, { 'data.vip': false }] }, false],
  [{ $or: [{ 'data.total': { $gte: 1000 } }, { 'data.vip': true }] }, true],
  [{ $or: [{ 'data.total': { $gte: 1000 } }, { 'data.vip': false }] }, false],
  [{ $not: { 'data.total': { $gte: 100 } } }, false],
  [{ $not: { 'data.missing': 1 } }, true],
  [{ 'data.total': { $gte: 100 }, $not: { 'data.customer.country': 'FR' } }, true],
  [{ $or: [{ $and: [{ type: 'order.created' }, { 'data.total': { $lt: 100 } }] }, { $not: { subject: { $startsWith: 'eu-' } } }] }, false],
];

describe('event filters', () => {
  it.each(table)('%j → %s', (filter, expected) => {
    expect(filterIssues(filter)).toEqual([]);
    expect(compileFilter(filter)(event)).toBe(expected);
  });

  it('compiles a filter once, and lets events through when there is none', () => {
    const filter: EventFilter = { 'data.total': { $gte: 100 } };
    expect(compileFilter(filter)).toBe(compileFilter(filter));
    expect(passesFilter(undefined, event)).toBe(true);
    expect(passesFilter(filter, { ...event, data: { total: 99 } })).toBe(false);
  });

  const deep = (levels: number): EventFilter => (levels === 1 ? { 'data.total': 1 } : { $not: deep(levels - 1) });

  it.each([
    [{ 'data.total': { $regex: 'x' } }, ['data.total', '$regex'], /unknown operator \$regex/],
    [{ $nor: [{ type: 'a' }] }, ['$nor'], /unknown operator \$nor/],
    [{ 'data.total': { $gte: true } }, ['data.total', '$gte'], /takes a number or a string/],
    [{ 'data.total': { $in: 5 } }, ['data.total', '$in'], /^\$in takes a list of values, e\.g\. \["a", "b"\]$/],
    [{ 'data.total': { $nin: Array.from({ length: 101 }, (_, n) => n) } }, ['data.total', '$nin'], /^\$nin takes a list of at most 100 values$/],
    [{ 'data.total': { $in: [1, { a: 1 }] } }, ['data.total', '$in', 1], /lists strings/],
    [{ 'data.total': { $exists: 'yes' } }, ['data.total', '$exists'], /true or false/],
    [{ subject: { $startsWith: 1 } }, ['subject', '$startsWith'], /takes a string/],
    [{ 'data.total': [1, 2] }, ['data.total'], /must be a condition/],
    [{ 'data.total': {} }, ['data.total'], /at least one operator/],
    [{ 'data.customer': { country: 'DE' } }, ['data.customer', 'country'], /data\.customer\.country/],
    [{ $and: [] }, ['$and'], /list of 1 to/],
    [{ $or: [{ type: 'a' }, 'b'] }, ['$or', 1], /must be an object/],
    [{ total: 1 }, ['total'], /the envelope has no "total"/],
    [{ 'subject.x': 1 }, ['subject.x'], /has no members/],
    [{ 'data..total': 1 }, ['data..total'], /none of them empty/],
    [deep(maxFilterDepth + 1), ['$not', '$not', '$not', '$not', '$not'], /nests deeper than 5/],
  ] as [unknown, (string | number)[], RegExp][])('refuses %j at the path of the mistake', (filter, path, message) => {
    const issues = filterIssues(filter);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toEqual(path);
    expect(issues[0]?.message).toMatch(message);
    expect(() => parseFilter(filter)).toThrow(InvalidFilterError);
    const parsed = eventFilterSchema.safeParse(filter);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(path);
  });

  it('refuses a filter of too many paths or filters, once', () => {
    const paths = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`data.f${i}`, i]));
    expect(filterIssues(paths).map((issue) => issue.path)).toEqual([['data.f64']]);
    const wide = { $or: Array.from({ length: 100 }, () => ({ $and: [{}, {}, {}] })) };
    expect(filterIssues(wide)).toEqual([expect.objectContaining({ message: expect.stringMatching(/at most 256 filters/) })]);
  });

  it('takes a filter as far as the depth limit', () => {
    expect(filterIssues(deep(maxFilterDepth))).toEqual([]);
  });

  it('reads a filter from a query string as JSON', () => {
    expect(eventFilterQuery.parse('{"data.total":{"$gte":100}}')).toEqual({ 'data.total': { $gte: 100 } });
    expect(eventFilterQuery.safeParse('{"data.total":').error?.issues[0]?.message).toMatch(/as JSON/);
    expect(eventFilterQuery.safeParse('{"data.total":{"$foo":1}}').error?.issues[0]?.path).toEqual(['data.total', '$foo']);
  });

  it('keeps every member of the filter it reads: a `__proto__` path is refused as unknown, not dropped to let every event through', () => {
    const parsed = eventFilterQuery.safeParse('{"__proto__":{"data.total":999}}');
    expect(parsed.error?.issues).toEqual([expect.objectContaining({ path: ['__proto__'], message: expect.stringMatching(/unknown path/) })]);
    expect(eventFilterSchema.safeParse(JSON.parse('{"__proto__":{"$eq":1},"data.total":1}')).success).toBe(false);
    for (const notAFilter of [[], 'text', null, 1]) {
      expect(eventFilterSchema.safeParse(notAFilter).error?.issues[0]?.message, JSON.stringify(notAFilter)).toBe('must be an object of paths and conditions');
    }
  });

  it('says InvalidFilterError where the mistake is, under `filter`', () => {
    const error = new InvalidFilterError(filterIssues({ 'data.total': { $foo: 1 } }));
    expect(error.status).toBe(422);
    expect(error.code).toBe('invalid-filter');
    expect(error.issues[0]?.path).toEqual(['filter', 'data.total', '$foo']);
    expect(error.message).toMatch(/filter\.data\.total\.\$foo unknown operator/);
  });
});

describe('filter paths against the event types', () => {
  const catalog = new EventCatalog([
    defineEventType('order.created', z.object({ total: z.number(), customer: z.object({ country: z.string() }), lines: z.array(z.object({ sku: z.string() })) })),
    defineEventType('order.cancelled', z.object({ reason: z.string() })),
    defineEventType('note.added', z.unknown()),
    defineEventType('tag.added', z.object({ labels: z.record(z.string(), z.string()) })),
  ]);
  const types = catalog.list();
  const unknownPaths = (filter: EventFilter, patterns: string[]) => filterPathIssues(filter, patterns, types).map((issue) => issue.path);

  it('takes a data path that exists in one of the matched types', () => {
    expect(unknownPaths({ 'data.total': { $gte: 1 }, 'data.customer.country': 'DE', 'data.lines.0.sku': 'a' }, ['order.created'])).toEqual([]);
    expect(unknownPaths({ 'data.reason': 'x', 'data.total': 1 }, ['order.*'])).toEqual([]);
    expect(unknownPaths({ 'data.labels.anything': 'x' }, ['tag.added'])).toEqual([]);
    expect(unknownPaths({ 'data.any.thing': 1 }, ['note.added'])).toEqual([]);
    expect(unknownPaths({ subject: 'x', type: 'order.created' }, ['order.created'])).toEqual([]);
  });

  it('refuses a data path that no matched type has, at the path of the mistake', () => {
    expect(unknownPaths({ 'data.totl': 1 }, ['order.created'])).toEqual([['data.totl']]);
    expect(unknownPaths({ 'data.reason': 'x' }, ['order.created'])).toEqual([['data.reason']]);
    expect(unknownPaths({ 'data.total.cents': 1 }, ['order.created'])).toEqual([['data.total.cents']]);
    expect(unknownPaths({ 'data.customer.city': 'x' }, ['order.**'])).toEqual([['data.customer.city']]);
    expect(unknownPaths({ $or: [{ 'data.total': 1 }, { $not: { 'data.nope': 1 } }] }, ['order.created'])).toEqual([['$or', 1, '$not', 'data.nope']]);
  });

  it('cannot judge patterns that match no type yet, and refuses nothing for them', () => {
    expect(unknownPaths({ 'data.whatever': 1 }, ['invoice.*'])).toEqual([]);
  });

  describe('operands of a type no value at the path has', () => {
    const typed = new EventCatalog([
      defineEventType(
        'invoice.paid',
        z.object({
          total: z.number(),
          count: z.number().int(),
          status: z.enum(['open', 'paid']),
          paidAt: z.iso.datetime(),
          discount: z.number().nullable(),
          code: z.union([z.string(), z.number()]),
          urgent: z.boolean(),
          meta: z.unknown(),
          customer: z.object({ country: z.string() }),
          tags: z.array(z.string()),
          notes: z.array(z.unknown()),
        }),
      ),
      defineEventType('invoice.voided', z.object({ total: z.string() })),
    ]).list();
    const issuesOf = (filter: EventFilter, patterns = ['invoice.paid']) => filterPathIssues(filter, patterns, typed).map(({ path, message }) => ({ path, message }));

    it('refuses them at the operand, saying what the path holds', () => {
      expect(issuesOf({ 'data.total': '150' })).toEqual([
        { path: ['data.total'], message: 'is number in these types\' schemas: "150" (string) never matches it, for a filter compares without converting' },
      ]);
      expect(issuesOf({ 'data.total': { $gte: '100' } }).map(({ path }) => path)).toEqual([['data.total', '$gte']]);
      expect(issuesOf({ 'data.status': { $in: ['open', 1] } }).map(({ path }) => path)).toEqual([['data.status', '$in', 1]]);
      expect(issuesOf({ 'data.count': { $startsWith: '1' } }).map(({ path }) => path)).toEqual([['data.count', '$startsWith']]);
      expect(issuesOf({ 'data.urgent': 'yes' }).map(({ path }) => path)).toEqual([['data.urgent']]);
      expect(issuesOf({ 'data.customer': 'DE' }).map(({ path }) => path)).toEqual([['data.customer']]);
      expect(issuesOf({ 'data.tags': 1 }).map(({ message }) => message)).toEqual([
        'is array or string in these types\' schemas: 1 (number) never matches it, for a filter compares without converting',
      ]);
      expect(issuesOf({ $or: [{ 'data.discount': { $lt: '5' } }] })).toEqual([
        { path: ['$or', 0, 'data.discount', '$lt'], message: 'is number or null in these types\' schemas: "5" (string) never matches it, for a filter compares without converting' },
      ]);
    });

    it('takes operands a value at the path may have, null, $exists, and any operand where the schemas do not say', () => {
      const fits: EventFilter[] = [
        { 'data.total': { $gte: 100.5 }, 'data.count': { $in: [1, 2] }, 'data.status': 'paid', 'data.urgent': true },
        { 'data.paidAt': { $gte: '2026-01-01T00:00:00Z' }, 'data.code': { $in: ['A1', 7] }, 'data.discount': null },
        { 'data.total': { $exists: false }, 'data.meta': 'anything', 'data.meta.deep': 1, 'data.status': { $ne: null } },
        // A condition on an array holds for one of its elements.
        { 'data.tags': 'vip', 'data.notes': { $in: [1, 'x', true] } },
      ];
      for (const filter of fits) expect(issuesOf(filter), JSON.stringify(filter)).toEqual([]);
      // One type holds a number there, the other a string: either operand may match.
      expect(issuesOf({ 'data.total': '150' }, ['invoice.*'])).toEqual([]);
      expect(issuesOf({ 'data.total': true }, ['invoice.*']).map(({ message }) => message)).toEqual([
        'is number or string in these types\' schemas: true (boolean) never matches it, for a filter compares without converting',
      ]);
    });
  });
});
