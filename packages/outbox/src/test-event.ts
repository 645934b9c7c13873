import { type EventCatalog, type HeraldEvent, newId, type Subscription, ValidationError } from '@herald/core';
import { z } from 'zod';

/** The body of `POST /v1/subscriptions/:id/test`. */
export const testEventBody = z.strictObject({
  type: z.string().optional().describe("An event type of the catalog that the subscription's types match. Default: the first such type with an example"),
  data: z.unknown().optional().describe("Valid against the type's schema. Default: the type's example"),
});

export type TestEventBody = z.infer<typeof testEventBody>;

/**
 * A test event's `seq`. No event of the log has it (the log starts at 1), so a receiver tells a test from a
 * real event by it, and by its id, which starts with `evt_test_`.
 */
export const testEventSeq = 0;

/** The catalog's types that `subscription` matches, by name. */
function typesOf(catalog: EventCatalog, subscription: Subscription): string[] {
  const names = catalog.typesMatching(subscription.types) ?? catalog.list().map((info) => info.name);
  return names.filter((name) => catalog.has(name)).sort();
}

/** Whether a type's JSON Schema gives an example of its own (`examples`). */
function givesExample(schema: Record<string, unknown> | undefined): boolean {
  const { examples } = (schema ?? {}) as { examples?: unknown[] };
  return Array.isArray(examples) && examples.length > 0;
}

/**
 * The envelope a test sends to `subscription`: of `body.type` (by default the first of its types whose
 * schema has `examples`, else its first type), with `body.data` (by default the type's example, else one
 * made from its schema), validated against the type's schema. It is never appended to the log: its `seq`
 * is {@link testEventSeq} and its id starts with `evt_test_`. Throws a ValidationError (422) with the reason.
 */
export function testEvent(catalog: EventCatalog, subscription: Subscription, body: TestEventBody, source: string, now: number): HeraldEvent {
  const types = typesOf(catalog, subscription);
  if (types.length === 0) {
    throw new ValidationError("The subscription's types match no event type of the catalog", [{ path: ['type'], message: 'no event type to test with' }]);
  }
  if (body.type !== undefined && !types.includes(body.type)) {
    throw new ValidationError(`"${body.type}" is not an event type of the catalog that the subscription's types (${subscription.types.join(', ')}) match`, [
      { path: ['type'], message: `must be one of ${types.join(', ')}` },
    ]);
  }
  const type = body.type ?? types.find((name) => givesExample(catalog.get(name)?.schema)) ?? (types[0] as string);
  const data = 'data' in body ? body.data : catalog.get(type)?.example;
  return {
    specversion: '1.0',
    id: newId('evt_test'),
    seq: testEventSeq,
    type,
    source,
    time: new Date(now).toISOString(),
    datacontenttype: 'application/json',
    data: validated(catalog, type, data, 'data' in body),
  };
}

/** `data`, parsed by the schema of `type`; when it is the type's example rather than given, the reason says so. */
function validated(catalog: EventCatalog, type: string, data: unknown, given: boolean): unknown {
  try {
    return catalog.validate(type, data);
  } catch (error) {
    if (given || !(error instanceof ValidationError)) throw error;
    throw new ValidationError(`The example of "${type}" does not match its schema: give \`data\``, error.issues);
  }
}
