import { defineRoute, eventTypePattern, publishInputSchema, type RouteDefinition } from '@herald/core';
import { z } from 'zod';
import { eventPageSchema, publishResultSchema } from '../api-schemas.js';
import type { ServerContext } from '../server-context.js';

/** `a,b,c` → a list of patterns. */
export const typeList = z
  .string()
  .transform((text) => text.split(',').filter((part) => part !== ''))
  .pipe(z.array(eventTypePattern).min(1).max(100));

const readQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  types: typeList.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function eventRoutes({ bus, store }: ServerContext): RouteDefinition[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/events',
      role: 'admin',
      body: publishInputSchema,
      summary: 'Publish an event (202; the same `id` again answers 200 with the first result)',
      response: { status: 202, body: publishResultSchema },
      async handle({ body }) {
        const { event, created } = await bus.publish(body);
        return { status: created ? 202 : 200, body: { id: event.id, seq: event.seq } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/events',
      query: readQuery,
      summary: 'Read the log after a seq (a consumer sees what is addressed to it or to everyone)',
      response: { body: eventPageSchema },
      async handle({ query, principal }) {
        const events = await store.read({
          after: query.after,
          limit: query.limit,
          ...(query.types ? { types: query.types } : {}),
          ...(principal.role === 'admin' ? {} : { visibleTo: principal.consumer as string }),
        });
        return { body: { data: events, next: events.at(-1)?.seq ?? query.after, hasMore: events.length === query.limit } };
      },
    }),
  ];
}
