import { eventEnvelopeSchema, eventFilterSchema, subscriptionStatus } from '@herald/core';
import { z } from 'zod';

// What the REST API answers, as zod schemas: the generated OpenAPI document describes its responses with them.

/** `{ data: [...] }`, the shape of the lists that come whole (a paged one adds `next` and `hasMore`). */
export function listOf<T extends z.ZodType>(item: T) {
  return z.object({ data: z.array(item) });
}

export const publishResultSchema = z.object({ id: z.string(), seq: z.number().int().positive() });

export const eventPageSchema = z.object({
  data: z.array(eventEnvelopeSchema),
  next: z.number().int().describe('Pass as `after` to read on; it always moves forward, past the events this reader does not get'),
  hasMore: z.boolean(),
  oldest: z
    .number()
    .int()
    .nullable()
    .describe('The oldest `seq` the log still holds in full (older events were pruned; see the retention guide); null while it is empty'),
});

export const eventTypeInfoSchema = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    schema: z.record(z.string(), z.unknown()).describe('JSON Schema of `data`'),
    example: z.unknown().describe("An example of `data`: the schema's own `examples[0]`, else one made from the schema"),
    retention: z.string().optional().describe("How long this type's events are kept, when not the log's retention"),
    compaction: z.enum(['subject']).optional().describe('`subject`: beyond the retention, the newest event of each subject is kept'),
    origin: z.enum(['code', 'api']),
  });

/** An API key's label, as `POST /v1/keys` takes it: trimmed, 1 to 100 characters, no control characters. */
export const keyName = z
  .string()
  .trim()
  .min(1, 'must not be empty (or only spaces)')
  .max(100, 'must be at most 100 characters')
  .regex(/^\P{Cc}*$/u, 'must not contain control characters (line breaks, tabs)')
  .describe('What the key is for, as a label (1 to 100 characters, trimmed)');

export const apiKeySchema = z
  .object({
    id: z.string(),
    role: z.enum(['admin', 'consumer']),
    consumer: z.string().optional(),
    name: z.string().optional().describe('What the key is for, as given when it was made'),
    createdBy: z
      .string()
      .optional()
      .describe("The id of the admin key that made it (`key_admin`: the environment's admin key); absent for a key Herald made itself"),
    createdAt: z.string(),
    lastUsedAt: z
      .string()
      .optional()
      .describe('When it last authenticated a request, to within a minute (each node writes it at most once a minute per key); absent while unused'),
    revokedAt: z.string().optional(),
  });

export const createdKeySchema = apiKeySchema.extend({ key: z.string().describe('The key itself, shown only this once') });

export const streamTokenSchema = z.object({
  token: z.string().describe('`hs_...`, for `?access_token=` or the WebSocket `auth` message'),
  expiresAt: z.string(),
  consumer: z.string().optional(),
  types: z.array(z.string()).optional(),
});

export const portalSessionSchema = z.object({
  url: z.string().describe('Opens the portal as the consumer: `…/portal#token=hp_…` (the token in the fragment, which no request carries)'),
  token: z.string().describe('`hp_...`, for `<herald-portal token>` or `Authorization: Bearer`'),
  expiresAt: z.string(),
  consumer: z.string(),
});

export const subscriptionSchema = z
  .object({
    id: z.string(),
    consumer: z.string(),
    transport: z.string(),
    types: z.array(z.string()),
    status: subscriptionStatus,
    config: z.record(z.string(), z.unknown()).describe('Transport-specific; secrets appear only in the response that creates them'),
    cursor: z.number().int(),
    filter: eventFilterSchema.optional(),
    disabledReason: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  });

export const subscriptionPageSchema = z.object({
  data: z.array(subscriptionSchema),
  next: z
    .string()
    .nullable()
    .describe('The id of the last subscription in `data`: pass it as `after` to read on; null when there was nothing to read'),
  hasMore: z.boolean(),
});
