import { consumerId, defineRoute, eventTypePattern, ForbiddenError, type RouteDefinition } from '@herald/core';
import { z } from 'zod';
import { streamTokenSchema } from '../api-schemas.js';
import type { ServerContext } from '../server-context.js';

const tokenBody = z.strictObject({
  consumer: consumerId.optional(),
  types: z.array(eventTypePattern).min(1).max(100).optional(),
  ttl: z.number().int().min(10).max(86_400).default(300),
});

export function streamTokenRoutes({ catalog, keys }: ServerContext): RouteDefinition[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/stream-tokens',
      body: tokenBody.default({ ttl: 300 }),
      summary: 'Issue a short-lived stream token for browser SSE and WebSocket clients',
      response: { status: 201, body: streamTokenSchema },
      async handle({ body, principal }) {
        if (principal.role !== 'admin' && body.consumer !== undefined && body.consumer !== principal.consumer) {
          throw new ForbiddenError('A consumer key may only issue tokens for its own consumer');
        }
        // As a stream subscribing to them would be: a token for types that match none could read nothing.
        if (body.types !== undefined) await catalog.ensureKnown(body.types);
        const { record, key } = await keys.createStreamToken(principal, {
          ...(body.consumer !== undefined ? { consumer: body.consumer } : {}),
          ...(body.types !== undefined ? { types: body.types } : {}),
          ttl: body.ttl,
        });
        return {
          status: 201,
          body: {
            token: key,
            expiresAt: record.expiresAt,
            ...(record.consumer !== undefined ? { consumer: record.consumer } : {}),
            ...(record.types !== undefined ? { types: record.types } : {}),
          },
        };
      },
    }),
  ];
}
