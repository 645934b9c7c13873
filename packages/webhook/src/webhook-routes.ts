import {
  canAccess,
  type Delivery,
  type DeliveryAttempt,
  defineRoute,
  HeraldError,
  NotFoundError,
  type Principal,
  type RouteDefinition,
  type Subscription,
  type TransportContext,
} from '@herald/core';
import { z } from 'zod';
import type { DeliveryEngine } from './delivery-engine.js';
import type { EndpointVerifier } from './endpoint-verifier.js';
import { type ReplayRunner, replaySchema } from './replay-runner.js';
import { graceEnd, livePreviousSecrets, type StoredWebhookConfig, webhookSecret } from './webhook-config.js';
import { generateSecret } from './webhook-signature.js';

const rotateBody = z
  .strictObject({
    /** The new secret; generated when absent. */
    secret: webhookSecret.optional(),
    /** Seconds the old secret keeps signing next to the new one. */
    gracePeriod: z.number().int().min(0).max(7 * 86_400).optional(),
  })
  .optional();

const deliveriesQuery = z.object({
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** Only deliveries of events with a smaller seq: the `next` of the previous page. */
  before: z.coerce.number().int().positive().optional(),
});

const replayBody = z.strictObject({
  after: z.number().int().min(0).describe('Redeliver every matching event with a greater seq'),
});

class NotVerifyingError extends HeraldError {
  constructor() {
    super('verification-disabled', 409, 'This server does not verify webhook endpoints (webhook({ verifyEndpoints: true }))', 'Conflict');
  }
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

function attemptView(attempt: DeliveryAttempt) {
  return {
    attempt: attempt.attempt,
    startedAt: iso(attempt.startedAt),
    status: attempt.outcome,
    responseStatus: attempt.responseStatus ?? null,
    durationMs: attempt.durationMs,
    responseBody: attempt.responseBody ?? null,
    error: attempt.error ?? null,
    nextAttemptAt: iso(attempt.nextAttemptAt),
  };
}

/** A delivery as the API shows it, with every attempt, oldest first. */
export function deliveryView(delivery: Delivery, attempts: readonly DeliveryAttempt[]) {
  return {
    id: delivery.id,
    subscriptionId: delivery.subscriptionId,
    eventId: delivery.eventId,
    eventSeq: delivery.eventSeq,
    status: delivery.status,
    attemptCount: delivery.attempts,
    nextAttemptAt: delivery.status === 'pending' ? iso(delivery.nextAttemptAt) : null,
    createdAt: iso(delivery.createdAt),
    updatedAt: iso(delivery.updatedAt),
    attempts: attempts.map(attemptView),
  };
}

/** The webhook routes: secret rotation, the attempts API, replay, manual retry, endpoint verification. */
export function webhookRoutes(
  context: TransportContext,
  engine: DeliveryEngine,
  replays: ReplayRunner,
  verifier: EndpointVerifier | undefined,
  rotationGracePeriod: number,
): RouteDefinition[] {
  const { store, subscriptions } = context;

  /** The webhook subscription, when this principal may reach it; anyone else's is a 404, not a 403. */
  const reachable = async (principal: Principal, id: string): Promise<Subscription> => {
    const subscription = await subscriptions.get(id);
    if (subscription?.transport !== 'webhook' || !canAccess(principal, subscription)) {
      throw new NotFoundError(`Webhook subscription ${id}`);
    }
    return subscription;
  };

  const reachableDelivery = async (principal: Principal, id: string) => {
    const delivery = await store.outbox.get(id);
    const subscription = delivery && (await subscriptions.get(delivery.subscriptionId));
    if (!delivery || !subscription || !canAccess(principal, subscription)) throw new NotFoundError(`Delivery ${id}`);
    return { delivery, subscription };
  };

  return [
    defineRoute({
      method: 'POST',
      path: '/v1/subscriptions/:id/secret/rotate',
      summary: 'Rotate a webhook secret; the old one keeps signing for a grace period',
      body: rotateBody,
      async handle({ principal, params, body }) {
        const subscription = await reachable(principal, params.id as string);
        const config = subscription.config as StoredWebhookConfig;
        const now = Date.now();
        const grace = body?.gracePeriod !== undefined ? body.gracePeriod * 1000 : rotationGracePeriod;
        const secret = body?.secret ?? generateSecret();
        const kept = livePreviousSecrets(config, now).filter((old) => old.secret !== secret);
        const previousSecrets =
          grace > 0 && config.secret !== secret ? [{ secret: config.secret, expiresAt: iso(now + grace) as string }, ...kept].slice(0, 10) : kept;
        const updated = await subscriptions.update(subscription.id, {
          config: { ...config, secret, previousSecrets: previousSecrets.length > 0 ? previousSecrets : undefined },
        });
        if (!updated) throw new NotFoundError(`Webhook subscription ${subscription.id}`);
        engine.refresh(updated);
        return { body: { secret, previousSecretExpiresAt: graceEnd(previousSecrets) ?? null } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/subscriptions/:id/deliveries',
      summary: 'The deliveries of a webhook subscription, newest first, with every attempt',
      query: deliveriesQuery,
      async handle({ principal, params, query }) {
        const subscription = await reachable(principal, params.id as string);
        const deliveries = await store.outbox.list(subscription.id, {
          limit: query.limit,
          ...(query.before !== undefined ? { before: query.before } : {}),
          ...(query.status !== undefined ? { status: query.status } : {}),
        });
        const attempts = await store.outbox.attempts(deliveries.map((delivery) => delivery.id));
        const data = deliveries.map((delivery) =>
          deliveryView(
            delivery,
            attempts.filter((attempt) => attempt.deliveryId === delivery.id),
          ),
        );
        const last = deliveries.at(-1);
        return { body: { data, next: deliveries.length === query.limit && last ? last.eventSeq : null } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/deliveries/:id',
      summary: 'One webhook delivery with every attempt',
      async handle({ principal, params }) {
        const { delivery } = await reachableDelivery(principal, params.id as string);
        return { body: deliveryView(delivery, await store.outbox.attempts([delivery.id])) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/deliveries/:id/retry',
      summary: 'Retry one webhook delivery now',
      async handle({ principal, params }) {
        const { delivery, subscription } = await reachableDelivery(principal, params.id as string);
        const retried = await store.outbox.retry(delivery.id, Date.now());
        if (!retried) throw new NotFoundError(`Delivery ${delivery.id}`);
        engine.wake(subscription);
        return { status: 202, body: deliveryView(retried, await store.outbox.attempts([retried.id])) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/subscriptions/:id/replay',
      summary: 'Redeliver every matching event after a seq, in the background; 409 while a replay of the subscription runs',
      body: replayBody,
      response: { status: 202, body: replaySchema, description: 'The replay, started' },
      async handle({ principal, params, body }) {
        const subscription = await reachable(principal, params.id as string);
        return { status: 202, body: replays.start(subscription, body.after) };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/subscriptions/:id/replay',
      summary: 'The running or last replay of a webhook subscription, and how far it got',
      response: { body: replaySchema },
      async handle({ principal, params }) {
        const subscription = await reachable(principal, params.id as string);
        const replay = replays.get(subscription.id);
        if (!replay) throw new NotFoundError(`A replay of subscription ${subscription.id} on this node`);
        return { body: replay };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/subscriptions/:id/replay',
      summary: 'Cancel the running replay of a webhook subscription (the deliveries it made stay)',
      response: { body: replaySchema },
      async handle({ principal, params }) {
        const subscription = await reachable(principal, params.id as string);
        const replay = await replays.cancel(subscription.id);
        if (!replay) throw new NotFoundError(`A running replay of subscription ${subscription.id} on this node`);
        return { body: replay };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/subscriptions/:id/verify',
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
