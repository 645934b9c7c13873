import { z } from 'zod';
import type { HeraldEvent } from './envelope.js';
import { type Issue, ValidationError } from './errors.js';
import type { EventTypeInfo } from './event-type-catalog.js';
import { anyPatternMatches } from './pattern-cache.js';

/** What a condition compares with: JSON's scalars. */
export type FilterScalar = string | number | boolean | null;

/** The operators of one path's condition; several in one object must all hold. */
export interface FilterOperators {
  $eq?: FilterScalar;
  $ne?: FilterScalar;
  $in?: readonly FilterScalar[];
  $nin?: readonly FilterScalar[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $exists?: boolean;
  $startsWith?: string;
}

/** A path's condition: operators, or a bare value, which means `$eq`. */
export type FilterCondition = FilterScalar | FilterOperators;

/**
 * A payload filter: dotted paths into the envelope (`data.total`, `subject`, `type`) with their
 * conditions, and `$and`, `$or`, `$not` over filters. Every member must hold. docs/guides/filters.md
 * describes the language.
 */
export interface EventFilter {
  $and?: readonly EventFilter[];
  $or?: readonly EventFilter[];
  $not?: EventFilter;
  readonly [path: string]: FilterCondition | EventFilter | readonly EventFilter[] | undefined;
}

/** Decides whether a subscription takes an event; e.g. a payload filter, compiled once per subscription. */
export type EventPredicate = (event: HeraldEvent) => boolean;

/** How deep `$and`, `$or` and `$not` may nest: the filter itself is level 1. */
export const maxFilterDepth = 5;
/** Paths a filter may name, all levels together. */
export const maxFilterPaths = 64;
/** Filters (objects) a filter may hold, itself included, all levels together. */
const maxFilterObjects = 256;
/** Values in one `$in` or `$nin`, and filters in one `$and` or `$or`. */
const maxListLength = 100;
const maxPathSegments = 16;
const maxPathLength = 256;

/** The envelope's attributes a path may start with; only `data` has members. */
const envelopeAttributes = new Set(['specversion', 'id', 'seq', 'type', 'source', 'subject', 'time', 'datacontenttype', 'data', 'consumer']);
const comparisonOperators = ['$gt', '$gte', '$lt', '$lte'] as const;
const operators = new Set(['$eq', '$ne', '$in', '$nin', ...comparisonOperators, '$exists', '$startsWith']);
const logicOperators = new Set(['$and', '$or', '$not']);

type Path = (string | number)[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isScalar(value: unknown): value is FilterScalar {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

/** What checking a filter's form finds, and how many paths it has seen. */
interface Checking {
  issues: Issue[];
  paths: number;
  objects: number;
}

/**
 * The issues with a filter's form, each with the path of the mistake within the filter: an unknown
 * operator, a wrong operand type, a path that is not one into the envelope, nesting deeper than
 * {@link maxFilterDepth}, more than {@link maxFilterPaths} paths. Empty when the filter is well formed.
 * Whether its `data` paths exist in the event types' schemas is {@link filterPathIssues}'s to say.
 */
export function filterIssues(filter: unknown): Issue[] {
  const checking: Checking = { issues: [], paths: 0, objects: 0 };
  checkFilter(filter, [], 1, checking);
  return checking.issues;
}

function checkFilter(filter: unknown, at: Path, depth: number, checking: Checking): void {
  const issue = (path: Path, message: string): void => {
    checking.issues.push({ path, message, code: 'invalid-filter' });
  };
  if (!isRecord(filter)) return void issue(at, 'must be an object of paths and conditions, e.g. {"data.total": {"$gte": 100}}');
  if (depth > maxFilterDepth) return void issue(at, `nests deeper than ${maxFilterDepth} levels of $and, $or and $not`);
  checking.objects += 1;
  if (checking.objects === maxFilterObjects + 1) return void issue(at, `a filter holds at most ${maxFilterObjects} filters in $and, $or and $not`);
  if (checking.objects > maxFilterObjects) return;
  for (const [key, member] of Object.entries(filter)) {
    const path = [...at, key];
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(member) || member.length === 0 || member.length > maxListLength) {
        issue(path, `must be a list of 1 to ${maxListLength} filters`);
      } else for (const [index, item] of member.entries()) checkFilter(item, [...path, index], depth + 1, checking);
    } else if (key === '$not') checkFilter(member, path, depth + 1, checking);
    else if (key.startsWith('$')) issue(path, `unknown operator ${key}: a filter's members are paths, $and, $or and $not`);
    else {
      checking.paths += 1;
      if (checking.paths === maxFilterPaths + 1) issue(path, `a filter names at most ${maxFilterPaths} paths`);
      const wrongPath = pathIssue(key);
      if (wrongPath !== undefined) issue(path, wrongPath);
      else checkCondition(member, path, issue);
    }
  }
}

/** Why `path` is not a path into the envelope, or undefined when it is one. */
function pathIssue(path: string): string | undefined {
  const segments = path.split('.');
  if (path.length > maxPathLength || segments.length > maxPathSegments) return `a path has at most ${maxPathSegments} segments and ${maxPathLength} characters`;
  if (segments.some((segment) => segment === '')) return 'a path is dot-separated names, none of them empty';
  const [root] = segments as [string, ...string[]];
  if (!envelopeAttributes.has(root)) return `unknown path: the envelope has no "${root}" (the payload is under "data.")`;
  if (root !== 'data' && segments.length > 1) return `unknown path: "${root}" has no members`;
  return undefined;
}

function checkCondition(condition: unknown, at: Path, issue: (path: Path, message: string) => void): void {
  if (isScalar(condition)) return;
  if (!isRecord(condition)) return void issue(at, 'must be a condition: a string, number, boolean or null (equal to), or operators like {"$gte": 100}');
  const entries = Object.entries(condition);
  if (entries.length === 0) return void issue(at, 'a condition names at least one operator');
  for (const [operator, operand] of entries) {
    const path = [...at, operator];
    if (!operators.has(operator)) {
      issue(
        path,
        operator.startsWith('$') || logicOperators.has(operator)
          ? `unknown operator ${operator}: use $eq $ne $in $nin $gt $gte $lt $lte $exists $startsWith`
          : `a condition holds operators, not members: write the dotted path ("${String(at.at(-1))}.${operator}")`,
      );
    } else if (operator === '$eq' || operator === '$ne') {
      if (!isScalar(operand)) issue(path, `${operator} takes a string, number, boolean or null`);
    } else if (operator === '$in' || operator === '$nin') {
      if (!Array.isArray(operand)) issue(path, `${operator} takes a list of values, e.g. ["a", "b"]`);
      else if (operand.length > maxListLength) issue(path, `${operator} takes a list of at most ${maxListLength} values`);
      else for (const [index, item] of operand.entries()) if (!isScalar(item)) issue([...path, index], `${operator} lists strings, numbers, booleans or null`);
    } else if (operator === '$exists') {
      if (typeof operand !== 'boolean') issue(path, '$exists takes true or false');
    } else if (operator === '$startsWith') {
      if (typeof operand !== 'string') issue(path, '$startsWith takes a string');
    } else if (typeof operand !== 'string' && !(typeof operand === 'number' && Number.isFinite(operand))) {
      issue(path, `${operator} takes a number or a string`);
    }
  }
}

const filterDescription =
  'A payload filter: dotted paths into the envelope (`data.total`, `data.customer.country`, `subject`, `type`) with a condition each (a bare value means `$eq`; operators `$eq $ne $in $nin $gt $gte $lt $lte $exists $startsWith`), and `$and`, `$or`, `$not` over filters. Every member must hold. See docs/guides/filters.md.';

/**
 * {@link EventFilter} as a zod schema: checks the form (see {@link filterIssues}); its JSON Schema is
 * `#/components/schemas/EventFilter` of the API documents ({@link eventFilterJsonSchemas}).
 */
export const eventFilterSchema = z
  // Not z.record, which builds a new object and so loses an own `__proto__` member (a filter that then let every event through).
  .custom<Record<string, unknown>>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), {
    message: 'must be an object of paths and conditions',
  })
  .superRefine((filter, context) => {
    for (const issue of filterIssues(filter)) context.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  })
  .transform((filter) => filter as EventFilter)
  .meta({ $ref: '#/components/schemas/EventFilter', description: filterDescription });

/** A filter in a query string: JSON, URL-encoded (`?filter=%7B%22data.total%22...`). */
export const eventFilterQuery = z
  .string()
  .transform((text, context) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      context.addIssue({ code: 'custom', message: 'must be a filter as JSON (URL-encoded)' });
      return z.NEVER;
    }
  })
  .pipe(eventFilterSchema)
  .describe(`${filterDescription} As JSON, URL-encoded.`);

const scalarJsonSchema = { type: ['string', 'number', 'boolean', 'null'] };
const orderedJsonSchema = { type: ['number', 'string'] };

/**
 * The JSON Schemas of {@link EventFilter} and its conditions, for the `components.schemas` of the
 * OpenAPI and AsyncAPI documents (the filter refers to itself, so it needs a name to refer by).
 */
export const eventFilterJsonSchemas: Record<'EventFilter' | 'EventFilterCondition', Record<string, unknown>> = {
  EventFilter: {
    type: 'object',
    description: filterDescription,
    properties: {
      $and: { type: 'array', minItems: 1, maxItems: maxListLength, items: { $ref: '#/components/schemas/EventFilter' } },
      $or: { type: 'array', minItems: 1, maxItems: maxListLength, items: { $ref: '#/components/schemas/EventFilter' } },
      $not: { $ref: '#/components/schemas/EventFilter' },
    },
    propertyNames: { pattern: `^(\\$and|\\$or|\\$not|(${[...envelopeAttributes].join('|')})(\\.[^.]+)*)$` },
    additionalProperties: { $ref: '#/components/schemas/EventFilterCondition' },
    examples: [{ 'data.total': { $gte: 100 } }, { type: 'order.created', $or: [{ 'data.customer.country': 'DE' }, { subject: { $startsWith: 'eu-' } }] }],
  },
  EventFilterCondition: {
    description: 'A bare value (equal to it), or operators that must all hold',
    anyOf: [
      scalarJsonSchema,
      {
        type: 'object',
        minProperties: 1,
        additionalProperties: false,
        properties: {
          $eq: scalarJsonSchema,
          $ne: scalarJsonSchema,
          $in: { type: 'array', maxItems: maxListLength, items: scalarJsonSchema },
          $nin: { type: 'array', maxItems: maxListLength, items: scalarJsonSchema },
          ...Object.fromEntries(comparisonOperators.map((operator) => [operator, orderedJsonSchema])),
          $exists: { type: 'boolean' },
          $startsWith: { type: 'string' },
        },
      },
    ],
  },
};

/** The filter does not fit: its form, or a path the event types' schemas do not have. 422 with the issues, paths from `filter`. */
export class InvalidFilterError extends ValidationError {
  override readonly name: string = 'InvalidFilterError';
  constructor(issues: Issue[], prefix: Path = ['filter']) {
    const placed = issues.map((issue) => ({ ...issue, path: [...prefix, ...issue.path] }));
    const first = placed[0];
    super(
      `The filter is not valid${first ? `: ${first.path.join('.')} ${first.message}` : ''}`,
      placed,
      'invalid-filter',
    );
  }
}

/** Parses a filter from outside (a message, a stored row): the filter, or {@link InvalidFilterError}. */
export function parseFilter(value: unknown): EventFilter {
  const issues = filterIssues(value);
  if (issues.length > 0) throw new InvalidFilterError(issues);
  return value as EventFilter;
}

/**
 * The issues with a well-formed filter's `data` paths against the event types it will see: the data
 * schemas (JSON Schema) of the catalog's types that `patterns` match. A `data` path must exist in at
 * least one of them. When the patterns match no type yet, nothing can be said and nothing is refused.
 * See {@link dataPathExists} for what "exists" means.
 */
export function filterPathIssues(filter: EventFilter, patterns: readonly string[], types: readonly EventTypeInfo[]): Issue[] {
  const schemas = types.filter((type) => anyPatternMatches(patterns, type.name)).map((type) => type.schema);
  const issues: Issue[] = [];
  if (schemas.length === 0) return issues;
  const visit = (at: EventFilter, path: Path): void => {
    for (const [key, member] of Object.entries(at)) {
      if (key === '$and' || key === '$or') for (const [index, item] of (member as EventFilter[]).entries()) visit(item, [...path, key, index]);
      else if (key === '$not') visit(member as EventFilter, [...path, key]);
      else if (key.startsWith('data.')) {
        const leaves: Leaf[] = [];
        let exists = false;
        for (const schema of schemas) exists = leavesAt(schema, key.split('.').slice(1), leaves) || exists;
        if (!exists) {
          issues.push({ path: [...path, key], message: `unknown path: no event type these types match has "${key}" in its schema`, code: 'invalid-filter' });
          continue;
        }
        const kinds = kindsOfLeaves(leaves);
        const mismatch = kinds && operandMismatch(member as FilterCondition, kinds);
        if (mismatch) issues.push({ path: [...path, key, ...mismatch.at], message: mismatch.message, code: 'invalid-filter' });
      }
    }
  };
  visit(filter, []);
  return issues;
}

/**
 * Whether a JSON Schema lets `segments` lead somewhere: each one a member listed in `properties` (or
 * matching `patternProperties`, or allowed by an `additionalProperties` that is `true` or a schema), or
 * an index into `items`. A level that lists no properties at all (no schema, `{}`, `z.unknown()`) is
 * open: anything below it exists. `anyOf`, `oneOf` and `allOf` branches each count; local `$ref`s are followed.
 */
export function dataPathExists(schema: unknown, segments: readonly string[]): boolean {
  return leavesAt(schema, segments, []);
}

/** A schema a path leads to, and the schema its `$ref`s are resolved in; `true` where a level is open. */
type Leaf = { schema: unknown; root: unknown };

/** {@link dataPathExists}, pushing onto `leaves` the schemas the path leads to. */
function leavesAt(schema: unknown, segments: readonly string[], leaves: Leaf[], root: unknown = schema, hops = 0): boolean {
  const leaf = () => leaves.push({ schema, root }) > 0;
  if (schema === true || schema === undefined) return leaf();
  if (!isRecord(schema) || hops > 32) return false;
  if (typeof schema.$ref === 'string') return leavesAt(resolveRef(root, schema.$ref), segments, leaves, root, hops + 1);
  const [segment, ...rest] = segments;
  if (segment === undefined) return leaf();
  const branches = [schema.anyOf, schema.oneOf, schema.allOf].filter(Array.isArray).flat();
  // Every branch, for the leaves of each.
  let inBranch = false;
  for (const branch of branches) inBranch = leavesAt(branch, segments, leaves, root, hops + 1) || inBranch;
  if (inBranch) return true;
  const { properties, patternProperties, additionalProperties, items, prefixItems } = schema;
  if (isRecord(properties) && Object.hasOwn(properties, segment)) return leavesAt(properties[segment], rest, leaves, root, hops + 1);
  if (isRecord(patternProperties)) {
    for (const [pattern, member] of Object.entries(patternProperties)) {
      if (safeRegExp(pattern)?.test(segment) && leavesAt(member, rest, leaves, root, hops + 1)) return true;
    }
  }
  if (additionalProperties === true || isRecord(additionalProperties)) return leavesAt(additionalProperties, rest, leaves, root, hops + 1);
  if (/^(0|[1-9]\d*)$/.test(segment)) {
    if (Array.isArray(prefixItems) && Number(segment) < prefixItems.length) return leavesAt(prefixItems[Number(segment)], rest, leaves, root, hops + 1);
    if (items !== undefined && items !== false) return leavesAt(items, rest, leaves, root, hops + 1);
  }
  const describesMembers = properties !== undefined || patternProperties !== undefined || additionalProperties !== undefined;
  const describesItems = items !== undefined || prefixItems !== undefined;
  const closedType = schema.type !== undefined && schema.type !== 'object' && !(Array.isArray(schema.type) && schema.type.includes('object'));
  const open = !describesMembers && !describesItems && !closedType && branches.length === 0 && schema.const === undefined && schema.enum === undefined;
  return open && leaves.push({ schema: true, root }) > 0;
}

/** A JSON value's type, as JSON Schema names it (`integer` is a `number` here). */
function jsonKind(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'object' ? 'object' : typeof value;
}

/** The JSON types the values of every leaf may have; undefined when one of them does not say (anything may be there). */
function kindsOfLeaves(leaves: readonly Leaf[]): Set<string> | undefined {
  const kinds = new Set<string>();
  for (const { schema, root } of leaves) {
    const found = kindsOf(schema, root);
    if (!found) return undefined;
    for (const kind of found) kinds.add(kind);
  }
  return kinds;
}

function kindsOf(schema: unknown, root: unknown, hops = 0): Set<string> | undefined {
  if (!isRecord(schema) || hops > 32) return undefined;
  if (typeof schema.$ref === 'string') return kindsOf(resolveRef(root, schema.$ref), root, hops + 1);
  const { type } = schema;
  if (typeof type === 'string' || Array.isArray(type)) {
    const kinds = new Set((Array.isArray(type) ? type : [type]).map((kind) => (kind === 'integer' ? 'number' : String(kind))));
    if (!kinds.has('array')) return kinds;
    // A condition on an array holds for one of its elements: what they may be counts too.
    const items = schema.prefixItems === undefined ? kindsOf(schema.items, root, hops + 1) : undefined;
    return items && new Set([...kinds, ...items]);
  }
  const values = schema.const !== undefined ? [schema.const] : Array.isArray(schema.enum) ? schema.enum : undefined;
  if (values) return new Set(values.map(jsonKind));
  const branches = [schema.anyOf, schema.oneOf].filter(Array.isArray).flat();
  return branches.length === 0 ? undefined : kindsOfLeaves(branches.map((branch) => ({ schema: branch, root })));
}

/**
 * The first operand of `condition` that no value of `kinds` can ever match, for a filter compares without
 * converting (`"150"` is not `150`): where it is in the condition, and why. `null` and `$exists` are left be.
 */
function operandMismatch(condition: FilterCondition, kinds: ReadonlySet<string>): { at: Path; message: string } | undefined {
  const operands: [Path, unknown][] = [];
  if (!isRecord(condition)) operands.push([[], condition]);
  else {
    for (const [operator, operand] of Object.entries(condition)) {
      if (operator === '$exists') continue;
      if (Array.isArray(operand)) for (const [index, item] of operand.entries()) operands.push([[operator, index], item]);
      else operands.push([[operator], operand]);
    }
  }
  for (const [at, operand] of operands) {
    const kind = jsonKind(operand);
    if (operand === null || kinds.has(kind)) continue;
    return { at, message: `is ${[...kinds].join(' or ')} in these types' schemas: ${JSON.stringify(operand)} (${kind}) never matches it, for a filter compares without converting` };
  }
  return undefined;
}

function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return true;
  let at: unknown = root;
  for (const part of ref.slice(1).split('/').filter((piece) => piece !== '')) {
    const key = decodeURIComponent(part).replaceAll('~1', '/').replaceAll('~0', '~');
    at = isRecord(at) ? at[key] : undefined;
  }
  return at;
}

function safeRegExp(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern, 'u');
  } catch {
    return undefined;
  }
}

/** The event types a filter may see: the catalog's, as `patterns` match them. Throws {@link InvalidFilterError} for an unknown `data` path. */
export function assertFilterFits(filter: EventFilter, patterns: readonly string[], types: readonly EventTypeInfo[]): void {
  const issues = filterPathIssues(filter, patterns, types);
  if (issues.length > 0) throw new InvalidFilterError(issues);
}

// The compiler writes a filter as one JavaScript expression over the envelope `e`, with each operand in a
// slot of `k` (never in the source), and makes it a function once per shape of filter: 10,000 subscriptions
// with filters of one shape and different values share one function, whose property reads and comparisons
// V8 optimises as if written by hand. Only path names (as JSON string literals) and the fixed operators
// reach the source.

interface Writing {
  /** The operands, by slot. */
  k: unknown[];
  /** Temporaries declared so far. */
  vars: number;
}

const canonicalIndex = /^(0|[1-9]\d*)$/;

function expression(filter: EventFilter, writing: Writing): string {
  const clauses: string[] = [];
  for (const [key, member] of Object.entries(filter)) {
    if (key === '$and' || key === '$or') {
      const items = (member as EventFilter[]).map((item) => `(${expression(item, writing)})`);
      clauses.push(`(${items.join(key === '$and' ? ' && ' : ' || ')})`);
    } else if (key === '$not') clauses.push(`!(${expression(member as EventFilter, writing)})`);
    else clauses.push(pathExpression(key, member as FilterCondition, writing));
  }
  return clauses.length === 0 ? 'true' : clauses.join(' && ');
}

/** Reads the path into a temporary, then tests it: own members of objects, canonical indexes of arrays, undefined elsewhere. */
function pathExpression(path: string, condition: FilterCondition, writing: Writing): string {
  const v = `v${writing.vars++}`;
  const steps = path.split('.').map((segment) => {
    const name = JSON.stringify(segment);
    const member = segment in Object.prototype ? `(Object.hasOwn(${v}, ${name}) ? ${v}[${name}] : undefined)` : `${v}[${name}]`;
    const element = canonicalIndex.test(segment) ? `${v}[${segment}]` : 'undefined';
    return `${v} = typeof ${v} === "object" && ${v} !== null ? (Array.isArray(${v}) ? ${element} : ${member}) : undefined`;
  });
  const operators = isRecord(condition) ? Object.entries(condition) : [['$eq', condition] as const];
  const tests = operators.map(([operator, operand]) => test(v, operator, operand, writing));
  return `(${v} = e, ${steps.join(', ')}, ${tests.join(' && ')})`;
}

/** One operator on the value in `v`; on an array, `$eq` and kin hold for one element ($ne and $nin: for none). */
function test(v: string, operator: string, operand: unknown, writing: Writing): string {
  const slot = `k[${writing.k.length}]`;
  writing.k.push(operator === '$in' || operator === '$nin' ? new Set(operand as FilterScalar[]) : operand);
  const orElement = (scalar: string, element: string) => `(${scalar} || (Array.isArray(${v}) && ${v}.some((x) => ${element})))`;
  switch (operator) {
    case '$eq':
      return orElement(`${v} === ${slot}`, `x === ${slot}`);
    case '$ne':
      return `!${orElement(`${v} === ${slot}`, `x === ${slot}`)}`;
    case '$in':
      return orElement(`${slot}.has(${v})`, `${slot}.has(x)`);
    case '$nin':
      return `!${orElement(`${slot}.has(${v})`, `${slot}.has(x)`)}`;
    case '$exists':
      return operand ? `${v} !== undefined` : `${v} === undefined`;
    case '$startsWith':
      return orElement(`(typeof ${v} === "string" && ${v}.startsWith(${slot}))`, `typeof x === "string" && x.startsWith(${slot})`);
    default: {
      // $gt and kin compare numbers with numbers and strings with strings; any other pairing does not hold.
      const kind = JSON.stringify(typeof operand);
      const sign = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' }[operator as (typeof comparisonOperators)[number]];
      return orElement(`(typeof ${v} === ${kind} && ${v} ${sign} ${slot})`, `typeof x === ${kind} && x ${sign} ${slot}`);
    }
  }
}

type PredicateFactory = (k: unknown[]) => EventPredicate;

/** One function per shape of filter (its source); cleared whole past the limit. */
const factories = new Map<string, PredicateFactory>();
const maxFactories = 1_000;

function build(filter: EventFilter): EventPredicate {
  const writing: Writing = { k: [], vars: 0 };
  const body = expression(filter, writing);
  const declared = Array.from({ length: writing.vars }, (_, i) => `v${i}`).join(', ');
  const source = `return (e) => {${declared ? ` let ${declared};` : ''} return ${body}; };`;
  let factory = factories.get(source);
  if (!factory) {
    if (factories.size >= maxFactories) factories.clear();
    factory = new Function('k', source) as PredicateFactory;
    factories.set(source, factory);
  }
  return factory(writing.k);
}

const compiled = new WeakMap<EventFilter, EventPredicate>();

/**
 * Compiles a well-formed filter (see {@link filterIssues}) to a predicate, once per filter object: a
 * subscription's filter is compiled when first used and the predicate kept as long as the filter is.
 */
export function compileFilter(filter: EventFilter): EventPredicate {
  let predicate = compiled.get(filter);
  if (!predicate) compiled.set(filter, (predicate = build(filter)));
  return predicate;
}

/** Whether `event` passes `filter` (none: every event does). */
export function passesFilter(filter: EventFilter | undefined, event: HeraldEvent): boolean {
  return filter === undefined || compileFilter(filter)(event);
}
