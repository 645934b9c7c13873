import { defineRoute, type RouteDefinition, type Transport } from '@herald/core';
import { z } from 'zod';
import { listOf } from '../api-schemas.js';
import type { MountedRoute } from '../http-mount.js';
import type { ServerContext } from '../server-context.js';

/** How a transport reaches its consumers: the server sends (`push`), holds a connection open (`stream`), or is asked (`pull`). */
type TransportKind = 'push' | 'stream' | 'pull';

const transportSchema = z.object({
  name: z.string().describe('The `transport` value of its subscriptions'),
  kind: z.enum(['push', 'stream', 'pull']).describe('push: the server sends each event (webhook, queue); stream: a connection the client holds open (WebSocket, SSE); pull: the client asks (long poll)'),
});

/**
 * The kind of a started transport, from what it is and what it mounted: a push transport of `@herald/outbox`
 * has a delivery worker (`workerId`), a pull transport mounts a long-poll route, any other streams.
 */
function transportKind(transport: Transport, mounted: readonly MountedRoute[]): TransportKind {
  if ('workerId' in transport) return 'push';
  if (mounted.some((route) => route.transport === transport.name && route.definition.longPoll)) return 'pull';
  return 'stream';
}

/** `GET /v1/transports`: the transports this server mounts, for clients (the portal) that offer a choice of them. */
export function transportRoutes({ transports }: ServerContext, mounted: { readonly routes: readonly MountedRoute[] }): RouteDefinition[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/transports',
      portalToken: true,
      summary: 'The transports this server mounts, and how each reaches its consumers',
      response: { body: listOf(transportSchema) },
      handle() {
        return { body: { data: [...transports.values()].map((transport) => ({ name: transport.name, kind: transportKind(transport, mounted.routes) })) } };
      },
    }),
  ];
}
