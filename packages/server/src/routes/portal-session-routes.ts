import { consumerId, defineRoute, type RouteDefinition } from '@herald/core';
import type { Request } from 'express';
import { z } from 'zod';
import { portalSessionSchema } from '../api-schemas.js';
import type { ServerContext } from '../server-context.js';

/** Bounds of a portal session's lifetime, in seconds. */
export const portalSessionTtl = { min: 60, default: 3_600, max: 86_400 } as const;

const sessionBody = z.strictObject({
  consumer: consumerId,
  ttl: z.number().int().min(portalSessionTtl.min).max(portalSessionTtl.max).default(portalSessionTtl.default),
});

/**
 * The configured portal URL, else `/portal` next to the API, on the host and under the path the request came by
 * (by the scheme and host a trusted proxy forwarded, with `trustProxy`).
 */
function portalUrl(configured: string | undefined, request: Request, token: string): string {
  const base = configured ?? `${request.protocol}://${request.host ?? 'localhost'}${request.baseUrl}/portal`;
  return `${base}#token=${token}`;
}

export function portalSessionRoutes({ keys, portalUrl: configured }: ServerContext): RouteDefinition[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/portal-sessions',
      role: 'admin',
      body: sessionBody,
      summary: 'Open a consumer portal session: a portal token acting as that consumer only, until it expires',
      response: { status: 201, body: portalSessionSchema },
      async handle({ body, principal, raw }) {
        const { record, key } = await keys.createPortalToken(principal, body.consumer, body.ttl);
        return {
          status: 201,
          body: { url: portalUrl(configured, raw as Request, key), token: key, expiresAt: record.expiresAt, consumer: body.consumer },
        };
      },
    }),
  ];
}
