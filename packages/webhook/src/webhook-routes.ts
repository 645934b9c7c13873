import { canAccess, defineRoute, HeraldError, NotFoundError, type Principal, type RouteDefinition, type Subscription } from '@herald/core';
import type { PushContext } from '@herald/outbox';
import { z } from 'zod';
import type { EndpointVerifier } from './endpoint-verifier.js';
import { graceEnd, livePreviousSecrets } from './secret-rotation.js';
import { type StoredWebhookConfig, webhookSecret } from './webhook-config.js';
import { generateSecret } from './webhook-signature.js';

const rotateBody = z
  .strictObject({
    /** The new secret; generated when absent. */
    secret: webhookSecret.optional(),
    /** Seconds the replaced secrets (the old one, and any still signing from earlier rotations) keep signing next to the new one. */
    gracePeriod: z.number().int().min(0).max(7 * 86_400).optional(),
  })
  .optional();

class NotVerifyingError extends HeraldError {
  constructor() {
    super('verification-disabled', 409, 'This server does not verify webhook endpoints (webhook({ verifyEndpoints: true }))', 'Conflict');
  }
}

/**
 * The webhook's own routes: secret rotation and endpoint verification. (The attempts, retry and replay
 * routes are every push transport's, mounted by `@herald/outbox`.)
 */
export function webhookRoutes(
  context: PushContext<StoredWebhookConfig>,
  verifier: EndpointVerifier | undefined,
  rotationGracePeriod: number,
): RouteDefinition[] {
  const { subscriptions } = context;

  /** The webhook subscription, when this principal may reach it; anyone else's is a 404, not a 403. */
  const reachable = async (principal: Principal, id: string): Promise<Subscription<StoredWebhookConfig>> => {
    const subscription = await subscriptions.get(id);
    if (!subscription || !context.owns(subscription) || !canAccess(principal, subscription)) {
      throw new NotFoundError(`Webhook subscription ${id}`);
    }
    return subscription;
  };

  return [
    defineRoute({
      method: 'POST',
      path: '/v1/subscriptions/:id/secret/rotate',
      portalToken: true,
      summary: 'Rotate a webhook secret; the old one keeps signing for a grace period',
      body: rotateBody,
      async handle({ principal, params, body }) {
        const { id, config } = await reachable(principal, params.id as string);
        const now = Date.now();
        const grace = body?.gracePeriod !== undefined ? body.gracePeriod * 1000 : rotationGracePeriod;
        const secret = body?.secret ?? generateSecret();
        // Every secret replaced so far signs for `gracePeriod` at most from now: 0 leaves the new one alone, as after a leak.
        const graceEnds = new Date(now + grace).toISOString();
        const previousSecrets =
          grace === 0
            ? []
            : [{ secret: config.secret, expiresAt: graceEnds }, ...livePreviousSecrets(config, now)]
                .filter((old) => old.secret !== secret)
                .map((old) => (old.expiresAt > graceEnds ? { ...old, expiresAt: graceEnds } : old))
                .slice(0, 10);
        const updated = await subscriptions.update(id, {
          config: { ...config, secret, previousSecrets: previousSecrets.length > 0 ? previousSecrets : undefined },
        });
        if (!updated || !context.owns(updated)) throw new NotFoundError(`Webhook subscription ${id}`);
        context.refresh(updated);
        return { body: { secret, previousSecretExpiresAt: graceEnd(previousSecrets) ?? null } };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/subscriptions/:id/verify',
      portalToken: true,
      summary: 'Send the endpoint verification challenge now',
      async handle({ principal, params }) {
        const subscription = await reachable(principal, params.id as string);
        if (!verifier) throw new NotVerifyingError();
        const result = await verifier.verify(subscription);
        return { body: { ...result, status: (await subscriptions.get(subscription.id))?.status ?? subscription.status } };
      },
    }),
  ];
}
