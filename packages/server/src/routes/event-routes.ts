import { defineRoute, eventTypePattern, readByPatterns, ForbiddenError, outsideScope, publishInputSchema, type RouteDefinition, visibleTo } from '@herald/core';
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

export function eventRoutes({ bus, store, catalog }: ServerContext): RouteDefinition[] {
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
      streamToken: true,
      summary: 'Read the log after a seq (a consumer sees what is addressed to it or to everyone; a stream token, its types)',
      response: { body: eventPageSchema },
      async handle({ query, principal }) {
        const outside = outsideScope(principal.types, query.types ?? ['**']);
        if (query.types !== undefined && outside.length > 0) {
          throw new ForbiddenError(`This stream token does not cover ${outside.join(', ')}`);
        }
        const patterns = query.types ?? principal.types;
        const reader = visibleTo(principal);
        // Read first: every event up to `latest` is committed (appends commit in seq order), so a page that is
        // not full has seen them all, and `next` moves past the events of other types at the end of the log.
        const { latest, oldest } = await store.bounds();
        const events = await readByPatterns(store, catalog, {
          after: query.after,
          limit: query.limit,
          ...(patterns ? { patterns } : {}),
          ...(reader !== undefined ? { visibleTo: reader } : {}),
        });
        const full = events.length === query.limit;
        const last = events.at(-1)?.seq ?? query.after;
        return { body: { data: events, next: full ? last : Math.max(last, latest, query.after), hasMore: full, oldest } };
      },
    }),
  ];
}
