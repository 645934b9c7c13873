import {
  assertFilterFits,
  compileFilter,
  defineRoute,
  eventFilterQuery,
  type EventPredicate,
  ForbiddenError,
  type HeraldEvent,
  outsideScope,
  publishInputSchema,
  queryNumber,
  queryTypes,
  readByPatterns,
  refuseBracketedTypes,
  type RouteDefinition,
  requestTraceContext,
  visibleTo,
} from '@herald/core';
import { z } from 'zod';
import { eventPageSchema, publishResultSchema } from '../api-schemas.js';
import type { ServerContext } from '../server-context.js';

/** Other parameters pass (a cache buster), but `types[]`, which would read every type where some were meant. */
const readQuery = z
  .looseObject({
    after: queryNumber(z.number().int().min(0).default(0)),
    types: queryTypes.optional(),
    limit: queryNumber(z.number().int().min(1).max(1000).default(100)),
    filter: eventFilterQuery.optional(),
  })
  .superRefine((query, issues) => void refuseBracketedTypes(query, issues));

/** Pages of `limit` events one filtered read looks through at most before it answers with what it found. */
const filteredPages = 10;

export function eventRoutes({ bus, catalog, store }: ServerContext): RouteDefinition[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/events',
      role: 'admin',
      body: publishInputSchema,
      summary: 'Publish an event (202; the same `id` again answers 200 with the first result)',
      response: { status: 202, body: publishResultSchema },
      async handle({ body, raw }) {
        // The publish joins the caller's trace: its `traceparent` header, or the span of an HTTP instrumentation.
        const { event, created } = await bus.publish(body, { parent: requestTraceContext(raw.headers) });
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
        const read = (after: number) =>
          readByPatterns(store, catalog, {
            after,
            limit: query.limit,
            ...(patterns ? { patterns } : {}),
            ...(reader !== undefined ? { visibleTo: reader } : {}),
          });
        let accepts: EventPredicate | undefined;
        if (query.filter !== undefined) {
          assertFilterFits(query.filter, patterns ?? ['**'], catalog.list());
          accepts = compileFilter(query.filter);
        }
        // `next` is the last event looked at, taken or not, so that reading on skips what the filter refused.
        const data: HeraldEvent[] = [];
        let next = query.after;
        let hasMore = true;
        for (let page = 0; page < (accepts ? filteredPages : 1) && data.length < query.limit && hasMore; page += 1) {
          const events = await read(next);
          hasMore = events.length === query.limit;
          for (const event of events) {
            if (data.length === query.limit) {
              hasMore = true;
              break;
            }
            next = event.seq;
            if (!accepts || accepts(event)) data.push(event);
          }
        }
        return { body: { data, next: hasMore ? next : Math.max(next, latest), hasMore, oldest } };
      },
    }),
  ];
}
