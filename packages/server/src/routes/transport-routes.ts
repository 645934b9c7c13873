import { defineRoute, type RouteDefinition } from '@herald/core';
import { z } from 'zod';
import { listOf } from '../api-schemas.js';
import type { ServerContext } from '../server-context.js';

const transportSchema = z.object({
  name: z.string().describe('The `transport` value of its subscriptions'),
  kind: z
    .enum(['push', 'stream', 'pull'])
    .describe('push: the server sends each event (webhook, queue); stream: a connection the client holds open (WebSocket, SSE); pull: the client asks (long poll)'),
});

/** `GET /v1/transports`: the transports this server mounts, for clients (the portal) that offer a choice of them. */
export function transportRoutes({ transports }: ServerContext): RouteDefinition[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/transports',
      portalToken: true,
      summary: 'The transports this server mounts, and how each reaches its consumers',
      response: { body: listOf(transportSchema) },
      handle() {
        return { body: { data: [...transports.values()].map((transport) => ({ name: transport.name, kind: transport.kind ?? 'stream' })) } };
      },
    }),
  ];
}
