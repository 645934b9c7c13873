import { randomInt } from 'node:crypto';
import { generate, type JsonSchema } from 'json-schema-faker';

/** Data that fits `schema` (an event type's JSON Schema), made by json-schema-faker; a new example each call. */
export function exampleData(schema: Record<string, unknown>): Promise<unknown> {
  return generate(schema as JsonSchema, { seed: randomInt(2 ** 31) });
}
