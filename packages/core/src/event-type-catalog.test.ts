import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ConflictError, HeraldError, UnknownEventTypeError, ValidationError } from './errors.js';
import { defineEventType, EventCatalog, type EventTypeDefinition, eventTypeFromJsonSchema } from './event-type-catalog.js';

/** Runs `fn`, expecting it to throw an instance of `type`, and returns the error. */
function thrown<T extends Error>(type: new (...args: never[]) => T, fn: () => unknown): T {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as T;
  }
  return expect.fail(`expected ${type.name} to be thrown`);
}

const orderCreated = defineEventType(
  'order.created',
  z.object({ orderId: z.string().min(1), total: z.number().nonnegative(), lines: z.array(z.object({ sku: z.string() })).default([]) }),
  { description: 'An order was placed' },
);

describe('defineEventType and EventCatalog.validate', () => {
  it('keeps the name, schema and description', () => {
    expect(orderCreated.name).toBe('order.created');
    expect(orderCreated.description).toBe('An order was placed');
    expect(defineEventType('a.b', z.null())).not.toHaveProperty('description');
  });

  it('returns the parsed data (defaults applied, unknown keys stripped)', () => {
    const catalog = new EventCatalog([orderCreated]);
    expect(catalog.validate('order.created', { orderId: 'o1', total: 3, extra: true })).toEqual({ orderId: 'o1', total: 3, lines: [] });
  });

  it('refuses an unknown type with UnknownEventTypeError (422)', () => {
    const catalog = new EventCatalog([orderCreated]);
    const error = thrown(UnknownEventTypeError, () => catalog.validate('order.deleted', {}));
    expect(error.eventType).toBe('order.deleted');
    expect(error.status).toBe(422);
    expect(error.code).toBe('unknown-event-type');
    expect(error).toBeInstanceOf(HeraldError);
  });

  it('refuses bad data with a ValidationError whose issue paths start with `data`', () => {
    const catalog = new EventCatalog([orderCreated]);
    const error = thrown(ValidationError, () => catalog.validate('order.created', { orderId: '', total: -1, lines: [{ sku: 7 }] }));
    expect(error.status).toBe(422);
    const paths = error.issues.map((issue) => issue.path);
    expect(paths).toEqual(expect.arrayContaining([['data', 'orderId'], ['data', 'total'], ['data', 'lines', 0, 'sku']]));
    expect(paths).toHaveLength(3);
    for (const issue of error.issues) expect(issue.message).toEqual(expect.any(String));
    const problem = error.toProblem();
    expect(problem.status).toBe(422);
    expect(problem.errors).toEqual(error.issues);
  });

  it('refuses data that is not even an object, with the path `data`', () => {
    const catalog = new EventCatalog([orderCreated]);
    const error = thrown(ValidationError, () => catalog.validate('order.created', 'nope'));
    expect(error.issues.map((issue) => issue.path)).toEqual([['data']]);
  });

  it.each(['', 'order created', 'order.', '.order', 'order..created', 'order.*', 'ordér.created', 'x'.repeat(129)])(
    'refuses the name %j',
    (name) => {
      thrown(ValidationError, () => defineEventType(name, z.unknown()));
      thrown(ValidationError, () => eventTypeFromJsonSchema(name, { type: 'object' }));
    },
  );

  it('accepts names with digits, `_` and `-`', () => {
    expect(defineEventType('billing_v2.invoice-paid.3', z.unknown()).name).toBe('billing_v2.invoice-paid.3');
  });
});

describe('EventCatalog.list (JSON Schema export)', () => {
  it('exports every type as JSON Schema, sorted by name, with its origin', () => {
    const catalog = new EventCatalog([
      orderCreated,
      defineEventType('invoice.paid', z.object({ invoiceId: z.string(), at: z.iso.datetime() })),
    ]);
    const list = catalog.list();
    expect(list.map((info) => info.name)).toEqual(['invoice.paid', 'order.created']);
    const order = list[1];
    expect(order?.origin).toBe('code');
    expect(order?.description).toBe('An order was placed');
    expect(order?.schema).toMatchObject({
      type: 'object',
      properties: { orderId: { type: 'string', minLength: 1 }, total: { type: 'number' } },
      required: expect.arrayContaining(['orderId', 'total']),
    });
    expect(list[0]).not.toHaveProperty('description');
    expect(catalog.get('invoice.paid')).toEqual(list[0]);
    expect(catalog.has('invoice.paid')).toBe(true);
    expect(catalog.has('invoice.void')).toBe(false);
  });

  it('exports a type whose schema JSON Schema cannot express, instead of throwing', () => {
    const catalog = new EventCatalog([defineEventType('t.bigint', z.object({ n: z.bigint() }))]);
    expect(catalog.get('t.bigint')?.schema).toEqual(expect.any(Object));
  });
});

describe('eventTypeFromJsonSchema', () => {
  const jsonSchema = {
    type: 'object',
    properties: { sku: { type: 'string' }, quantity: { type: 'integer', minimum: 1 } },
    required: ['sku', 'quantity'],
    additionalProperties: false,
  };

  it('enforces the JSON Schema', () => {
    const catalog = new EventCatalog();
    const info = catalog.add(eventTypeFromJsonSchema('stock.reserved', jsonSchema, 'Stock was reserved'), 'api', jsonSchema);
    expect(info).toEqual({ name: 'stock.reserved', description: 'Stock was reserved', schema: jsonSchema, example: { sku: 'string', quantity: 1 }, origin: 'api' });
    // The example made from the schema fits it.
    expect(catalog.validate('stock.reserved', info.example)).toEqual(info.example);
    expect(catalog.validate('stock.reserved', { sku: 'a', quantity: 2 })).toEqual({ sku: 'a', quantity: 2 });
    const error = thrown(ValidationError, () => catalog.validate('stock.reserved', { sku: 'a', quantity: 0 }));
    expect(error.issues.map((issue) => issue.path)).toEqual([['data', 'quantity']]);
    thrown(ValidationError, () => catalog.validate('stock.reserved', { sku: 'a', quantity: 1.5 }));
    thrown(ValidationError, () => catalog.validate('stock.reserved', { quantity: 1 }));
    thrown(ValidationError, () => catalog.validate('stock.reserved', { sku: 'a', quantity: 1, more: 1 }));
  });

  it("lists a type's own example, given with zod's meta, before one made from its schema", () => {
    const catalog = new EventCatalog();
    const given = { orderId: 'ord_1', total: 42 };
    const schema = z.object({ orderId: z.string(), total: z.number() }).meta({ examples: [given] });
    expect(catalog.add(defineEventType('order.placed', schema), 'code').example).toEqual(given);
  });

  it('accepts any data when no schema is given', () => {
    const catalog = new EventCatalog();
    catalog.add(eventTypeFromJsonSchema('free.form', undefined), 'api');
    expect(catalog.validate('free.form', { anything: [1, 'two'] })).toEqual({ anything: [1, 'two'] });
    expect(catalog.validate('free.form', null)).toBeNull();
  });

  it.each([{ type: 'nonsense' }, { $ref: '#/definitions/missing' }])('refuses %j with a ValidationError on `schema`', (schema) => {
    const error = thrown(ValidationError, () => eventTypeFromJsonSchema('bad.schema', schema));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.path).toEqual(['schema']);
    expect(error.issues[0]?.message).not.toBe('');
  });
});

describe('EventCatalog.add', () => {
  const schemaA = { type: 'object', properties: { a: { type: 'string' } } };
  const schemaB = { type: 'object', properties: { b: { type: 'string' } } };

  it('registering the same type over the API again is idempotent', () => {
    const catalog = new EventCatalog();
    const first = catalog.add(eventTypeFromJsonSchema('x.y', schemaA, 'd'), 'api', schemaA);
    const again = catalog.add(eventTypeFromJsonSchema('x.y', structuredClone(schemaA), 'd'), 'api', structuredClone(schemaA));
    expect(again).toBe(first);
    expect(catalog.list()).toHaveLength(1);
  });

  it('re-registering the same JSON Schema with its keys in another order is idempotent', () => {
    const catalog = new EventCatalog();
    const schema = { type: 'object', properties: { a: { type: 'string', minLength: 1 }, b: { type: 'integer' } }, required: ['a'] };
    const reordered = { required: ['a'], properties: { b: { type: 'integer' }, a: { minLength: 1, type: 'string' } }, type: 'object' };
    const first = catalog.add(eventTypeFromJsonSchema('x.y', schema), 'api', schema);
    expect(catalog.add(eventTypeFromJsonSchema('x.y', reordered), 'api', reordered)).toBe(first);
    // Array order still matters.
    const otherOrder = { ...schema, properties: { ...schema.properties, c: { enum: [2, 1] } } };
    const catalog2 = new EventCatalog();
    catalog2.add(eventTypeFromJsonSchema('x.y', otherOrder), 'api', otherOrder);
    const swapped = { ...schema, properties: { ...schema.properties, c: { enum: [1, 2] } } };
    thrown(ConflictError, () => catalog2.add(eventTypeFromJsonSchema('x.y', swapped), 'api', swapped));
  });

  it('a different schema, description or origin under the same name is a ConflictError (409)', () => {
    const catalog = new EventCatalog();
    catalog.add(eventTypeFromJsonSchema('x.y', schemaA, 'd'), 'api', schemaA);
    const error = thrown(ConflictError, () => catalog.add(eventTypeFromJsonSchema('x.y', schemaB, 'd'), 'api', schemaB));
    expect(error.status).toBe(409);
    thrown(ConflictError, () => catalog.add(eventTypeFromJsonSchema('x.y', schemaA, 'other'), 'api', schemaA));
    thrown(ConflictError, () => catalog.add(eventTypeFromJsonSchema('x.y', schemaA, 'd'), 'code', schemaA));
    // The first definition is still the one in force.
    expect(catalog.get('x.y')?.schema).toEqual(schemaA);
    expect(catalog.validate('x.y', { a: 'ok' })).toEqual({ a: 'ok' });
  });

  it('an API registration may not replace a type defined in code', () => {
    const catalog = new EventCatalog([orderCreated]);
    const exported = catalog.get('order.created')?.schema;
    thrown(ConflictError, () =>
      catalog.add(eventTypeFromJsonSchema('order.created', exported, orderCreated.description), 'api', exported),
    );
    expect(catalog.get('order.created')?.origin).toBe('code');
  });

  it('two different code definitions of one name conflict at construction', () => {
    thrown(ConflictError, () => new EventCatalog([orderCreated, defineEventType('order.created', z.object({ other: z.string() }))]));
  });
});

describe('EventCatalog.typesMatching', () => {
  const catalog = new EventCatalog(['order.created', 'order.shipped', 'order.line.added', 'invoice.created'].map((name) => defineEventType(name, z.unknown())));

  it('turns patterns into the names of the catalog they match, so reads ask for exact types', () => {
    expect(catalog.typesMatching(['*.created'])?.sort()).toEqual(['invoice.created', 'order.created']);
    expect(catalog.typesMatching(['order.**'])?.sort()).toEqual(['order.created', 'order.line.added', 'order.shipped']);
    expect(catalog.typesMatching(['order.*', 'invoice.created'])?.sort()).toEqual(['invoice.created', 'order.created', 'order.shipped']);
  });

  it('keeps exact names even when the catalog no longer holds them, and finds nothing for a pattern that matches no type', () => {
    expect(catalog.typesMatching(['gone.type'])).toEqual(['gone.type']);
    expect(catalog.typesMatching(['*.zzz'])).toEqual([]);
  });

  it('answers undefined (every type) for `**`', () => {
    expect(catalog.typesMatching(['order.*', '**'])).toBeUndefined();
  });
});

describe('EventCatalog.reloadOnMiss', () => {
  const parcelSent = defineEventType('parcel.sent', z.object({ n: z.number() }));

  /**
   * A catalog that reloads from `stored` (the types another node registered): each reload reads what is stored
   * as it starts, then waits for `release()` before adding it, as a read of the store takes its time.
   */
  function reloading(recheckAfter?: number) {
    const catalog = new EventCatalog([orderCreated]);
    const stored: EventTypeDefinition[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const reload = vi.fn(async () => {
      const read = [...stored];
      await released;
      for (const definition of read) if (!catalog.has(definition.name)) catalog.add(definition, 'api');
    });
    catalog.reloadOnMiss(reload, recheckAfter === undefined ? {} : { recheckAfter });
    return { catalog, stored, reload, release };
  }

  it('looks for a type it lacks with one reload before refusing it, and reloads nothing for the types it has', async () => {
    const { catalog, stored, reload, release } = reloading();
    release();
    stored.push(parcelSent);
    await catalog.loadMissing(['parcel.sent']);
    expect(catalog.validate('parcel.sent', { n: 1 })).toEqual({ n: 1 });
    await catalog.ensureKnown(['parcel.*', 'order.created']);
    expect(reload).toHaveBeenCalledTimes(1);

    const refused = await catalog.ensureKnown(['parcel.sent', 'parcel.snet']).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused).toMatchObject({ code: 'unknown-event-type', issues: [{ path: ['types', 1], message: 'parcel.snet matches no event type in the catalog' }] });
    expect(reload).toHaveBeenCalledTimes(2);
  });

  it('answers a miss that comes while a reload runs with the next reload, which the misses meanwhile share', async () => {
    const { catalog, stored, reload, release } = reloading();
    const early = catalog.ensureKnown(['parcel.sent']);
    await vi.waitFor(() => expect(reload).toHaveBeenCalledTimes(1));
    // Registered elsewhere while the first reload, which read the store before it, runs.
    stored.push(parcelSent);
    const late = [catalog.ensureKnown(['parcel.sent']), catalog.ensureKnown(['parcel.*']), catalog.loadMissing(['parcel.sent'])];
    release();
    await expect(early).rejects.toMatchObject({ code: 'unknown-event-type' });
    await Promise.all(late);
    expect(reload).toHaveBeenCalledTimes(2);
  });

  it('reloads for a name that a reload left unknown only once recheckAfter has passed', async () => {
    const { catalog, stored, reload, release } = reloading(100);
    release();
    for (let i = 0; i < 3; i++) await expect(catalog.ensureKnown(['parcel.sent'])).rejects.toMatchObject({ code: 'unknown-event-type' });
    expect(reload).toHaveBeenCalledTimes(1);
    // Another name is looked for at once, even with the one left unknown.
    await expect(catalog.ensureKnown(['parcel.sent', 'parcel.*'])).rejects.toMatchObject({ code: 'unknown-event-type' });
    expect(reload).toHaveBeenCalledTimes(2);

    stored.push(parcelSent);
    await new Promise((resolve) => setTimeout(resolve, 110));
    await catalog.ensureKnown(['parcel.sent']);
    expect(reload).toHaveBeenCalledTimes(3);
  });

  it('rejects with the error of a reload that fails, and reloads again at the next miss', async () => {
    const catalog = new EventCatalog([orderCreated]);
    const unreachable = new Error('the store is unreachable');
    const reload = vi.fn().mockRejectedValueOnce(unreachable).mockImplementation(async () => {
      catalog.add(parcelSent, 'api');
    });
    catalog.reloadOnMiss(reload);
    await expect(catalog.ensureKnown(['parcel.sent'])).rejects.toBe(unreachable);
    await catalog.ensureKnown(['parcel.sent']);
    expect(reload).toHaveBeenCalledTimes(2);
  });
});
