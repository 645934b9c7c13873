import { z } from 'zod';

export type JsonSchema = Record<string, unknown>;

/**
 * A zod schema as JSON Schema for the API documents: what a client sends or receives (the input
 * side, so defaults are optional and query strings stay strings), without `$schema`.
 * `draft-2020-12` is OpenAPI 3.1's dialect; `draft-7` is what AsyncAPI schemas build on.
 */
export function exportSchema(schema: z.ZodType, target: 'draft-2020-12' | 'draft-7' = 'draft-2020-12'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target, io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

/**
 * {@link exportSchema}, or `fallback` where `schema` cannot be exported (zod throws, or what it makes is not JSON)
 * or exports as nothing (`z.custom()`): a schema that comes from a transport never breaks a document.
 */
export function exportSchemaOr(schema: z.ZodType, fallback: JsonSchema, target: 'draft-2020-12' | 'draft-7' = 'draft-2020-12'): JsonSchema {
  try {
    const json = JSON.parse(JSON.stringify(exportSchema(schema, target))) as JsonSchema;
    return Object.keys(json).length > 0 ? json : fallback;
  } catch {
    return fallback;
  }
}

/** A stored JSON Schema (a catalog entry) without its `$schema`, to embed in a document. */
export function embeddable(schema: JsonSchema): JsonSchema {
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}
