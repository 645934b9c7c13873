import { ConflictError, compactionMode, defineRoute, eventTypeFromJsonSchema, eventTypeName, NotFoundError, type RouteDefinition, retentionDuration, storableString, type TypeRetention } from '@herald/core';
import { z } from 'zod';
import { eventTypeInfoSchema, listOf } from '../api-schemas.js';
import type { ServerContext } from '../server-context.js';

const registerBody = z.strictObject({
  name: eventTypeName,
  description: storableString.max(1024).optional(),
  schema: z.record(z.string(), z.unknown()).optional(),
  retention: retentionDuration.optional().describe("How long this type's events are kept, instead of HERALD_LOG_RETENTION (e.g. 90d)"),
  compaction: compactionMode.optional().describe('`subject`: beyond the retention, the newest event of each subject is kept'),
});

/** The broker channel on which nodes announce newly registered event types. */
export const eventTypesChannel = 'herald:event-types';

/** Adds the stored event types the catalog does not have yet (from this node's start or another node). */
export async function loadStoredEventTypes({ store, catalog, logger }: ServerContext): Promise<void> {
  for (const stored of await store.eventTypes.list()) {
    if (catalog.has(stored.name)) continue;
    try {
      catalog.add(eventTypeFromJsonSchema(stored.name, stored.schema, stored.description, retentionOf(stored)), 'api', stored.schema ?? {});
    } catch (error) {
      logger.warn({ err: error, eventType: stored.name }, 'a stored event type could not be loaded');
    }
  }
}

function retentionOf(kept: TypeRetention): TypeRetention {
  return {
    ...(kept.retention !== undefined ? { retention: kept.retention } : {}),
    ...(kept.compaction !== undefined ? { compaction: kept.compaction } : {}),
  };
}

export function eventTypeRoutes(context: ServerContext): RouteDefinition[] {
  const { store, catalog, broker } = context;
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/event-types',
      streamToken: true,
      summary: 'List the event-type catalog, with the JSON Schema of each type’s data',
      response: { body: listOf(eventTypeInfoSchema) },
      handle: () => ({ body: { data: catalog.list() } }),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/event-types/:name',
      streamToken: true,
      summary: 'Read one event type',
      response: { body: eventTypeInfoSchema },
      async handle({ params }) {
        await catalog.loadMissing([params.name as string]);
        const info = catalog.get(params.name as string);
        if (!info) throw new NotFoundError(`Event type ${params.name}`);
        return { body: info };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/event-types',
      role: 'admin',
      body: registerBody,
      summary: 'Register an event type with a JSON Schema (201; 200 when the same one exists)',
      response: { status: 201, body: eventTypeInfoSchema },
      async handle({ body }) {
        const definition = eventTypeFromJsonSchema(body.name, body.schema, body.description, retentionOf(body));
        const existing = catalog.get(body.name);
        if (existing?.origin === 'code') throw new ConflictError(`Event type "${body.name}" is defined in code`);
        const schema = body.schema ?? {};
        const inserted = await store.eventTypes.insert({
          name: body.name,
          ...(body.description !== undefined ? { description: body.description } : {}),
          schema,
          ...retentionOf(body),
          createdAt: new Date().toISOString(),
        });
        if (!inserted) await loadStoredEventTypes(context);
        const info = catalog.add(definition, 'api', schema);
        if (inserted) await broker.publish(eventTypesChannel, body.name).catch(() => {});
        return { status: inserted ? 201 : 200, body: info };
      },
    }),
  ];
}
