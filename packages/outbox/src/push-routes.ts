import {
  canAccess,
  defineRoute,
  type HeraldEvent,
  HeraldError,
  NotFoundError,
  RateLimitedError,
  type Principal,
  queryNumber,
  type RouteDefinition,
  requestTraceContext,
  type Subscription,
  type SubscriptionRegistry,
  type TransportContext,
} from '@herald/core';
import { z } from 'zod';
import type { Delivery, DeliveryAttempt, Outbox } from './outbox.js';
import { KeyedRateLimit } from './keyed-rate-limit.js';
import type { ReplayRunner } from './replay-runner.js';
import { replaySchema } from './replay-view.js';
import { testEvent, testEventBody } from './test-event.js';

/** What the routes need of one push transport started on the server. */
export interface PushRouteHandler {
  outbox: Outbox;
  replays: ReplayRunner;
  /** The subscription may have due deliveries (a retry, a replay's batch). */
  wake(subscription: Subscription): void;
  /** Sends a test event to the subscription once, now, as its deliveries are sent; stores nothing. */
  test(subscription: Subscription, event: HeraldEvent): Promise<DeliveryAttempt>;
}

/** Test events each subscription may be sent per second, on each node. */
const testsPerSecond = 3;

const deliveriesQuery = z.object({
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
  limit: queryNumber(z.number().int().min(1).max(200).default(50)),
  /** Only deliveries of events with a smaller seq: the `next` of the previous page. */
  before: queryNumber(z.number().int().positive()).optional(),
});

const replayBody = z
  .strictObject({
    after: z.number().int().min(0).optional().describe('Redeliver every matching event with a greater seq'),
    since: z.iso
      .datetime({ offset: true })
      .optional()
      .describe('Instead of `after`: redeliver every matching event published at or after this time (RFC 3339)'),
  })
  .refine((body) => (body.after === undefined) !== (body.since === undefined), { message: 'give exactly one of `after` (a seq) and `since` (a time)' });

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** An attempt as the API shows it. */
const attemptSchema = z.object({
  attempt: z.number().int().positive().describe('1 for the first attempt of a round'),
  startedAt: z.iso.datetime(),
  status: z.enum(['succeeded', 'failed']),
  responseStatus: z.number().int().nullable().describe('What the destination answered (an HTTP status), when it answered'),
  durationMs: z.number().int().nonnegative(),
  responseBody: z.string().nullable().describe('The start of what the destination answered'),
  error: z.string().nullable().describe('Why the attempt failed'),
  nextAttemptAt: z.iso.datetime().nullable(),
});

const testResultSchema = attemptSchema.extend({
  event: z.record(z.string(), z.unknown()).describe('The test event sent: `seq` 0, an id starting with `evt_test_`'),
});

function attemptView(attempt: DeliveryAttempt): z.infer<typeof attemptSchema> {
  return {
    attempt: attempt.attempt,
    startedAt: new Date(attempt.startedAt).toISOString(),
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

/** The push transports started on each server (its subscription registry), by name. */
const servers = new WeakMap<SubscriptionRegistry, Map<string, PushRouteHandler>>();

/**
 * Makes the attempts, retry and replay routes answer for the subscriptions of push transport `name`.
 * The routes are mounted once per server, by the first push transport that starts on it, and answer for
 * each subscription with the push transport it belongs to: several push transports share them. Returns
 * the function that takes `name` out again, when its transport stops.
 */
export function mountPushRoutes(context: Pick<TransportContext, 'subscriptions' | 'http' | 'catalog' | 'bus'>, name: string, handler: PushRouteHandler): () => void {
  let transports = servers.get(context.subscriptions);
  if (!transports) {
    transports = new Map();
    servers.set(context.subscriptions, transports);
    for (const route of pushRoutes(context, transports)) context.http.route(route);
  }
  if (transports.has(name)) throw new Error(`A push transport named "${name}" is already started on this server`);
  transports.set(name, handler);
  return () => transports.delete(name);
}

function pushRoutes(
  { subscriptions, catalog, bus }: Pick<TransportContext, 'subscriptions' | 'catalog' | 'bus'>,
  transports: ReadonlyMap<string, PushRouteHandler>,
): RouteDefinition[] {
  const tests = new KeyedRateLimit(testsPerSecond);
  /** The subscription and its push transport, when this principal may reach it; anyone else's is a 404, not a 403. */
  const reachable = async (principal: Principal, id: string) => {
    const subscription = await subscriptions.get(id);
    const handler = subscription && transports.get(subscription.transport);
    if (!subscription || !canAccess(principal, subscription)) throw new NotFoundError(`Subscription ${id}`);
    if (!handler) {
      const pushTransports = [...transports.keys()].join(', ');
      throw new HeraldError(
        'not-found',
        404,
        `Subscription ${id} is of the ${subscription.transport} transport, which sends no deliveries: tests, deliveries and replays are for push transports (${pushTransports})`,
        'Not found',
      );
    }
    return { subscription, handler };
  };

  const reachableDelivery = async (principal: Principal, id: string) => {
    // The push transports of a server share one outbox, unless one was given its own.
    let delivery: Delivery | undefined;
    for (const outbox of new Set([...transports.values()].map((handler) => handler.outbox))) {
      delivery ??= await outbox.get(id);
    }
    const subscription = delivery && (await subscriptions.get(delivery.subscriptionId));
    const handler = subscription && transports.get(subscription.transport);
    if (!delivery || !subscription || !handler || !canAccess(principal, subscription)) throw new NotFoundError(`Delivery ${id}`);
    return { delivery, subscription, handler };
  };

  return [
    defineRoute({
      method: 'GET',
      path: '/v1/subscriptions/:id/deliveries',
      portalToken: true,
      summary: 'The deliveries of a push subscription (webhook, queue...), newest first, with every attempt',
      query: deliveriesQuery,
      async handle({ principal, params, query }) {
        const { subscription, handler } = await reachable(principal, params.id as string);
        const deliveries = await handler.outbox.list(subscription.id, {
          limit: query.limit,
          ...(query.before !== undefined ? { before: query.before } : {}),
          ...(query.status !== undefined ? { status: query.status } : {}),
        });
        const attempts = await handler.outbox.attempts(deliveries.map((delivery) => delivery.id));
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
      portalToken: true,
      summary: 'One delivery of a push subscription, with every attempt',
      async handle({ principal, params }) {
        const { delivery, handler } = await reachableDelivery(principal, params.id as string);
        return { body: deliveryView(delivery, await handler.outbox.attempts([delivery.id])) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/deliveries/:id/retry',
      portalToken: true,
      summary: 'Retry one delivery now',
      async handle({ principal, params }) {
        const { delivery, subscription, handler } = await reachableDelivery(principal, params.id as string);
        const retried = await handler.outbox.retry(delivery.id, Date.now());
        if (!retried) throw new NotFoundError(`Delivery ${delivery.id}`);
        handler.wake(subscription);
        return { status: 202, body: deliveryView(retried, await handler.outbox.attempts([retried.id])) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/subscriptions/:id/test',
      portalToken: true,
      summary:
        'Send a test event to the endpoint once, now, signed and guarded as a delivery is; not appended to the log nor kept as a delivery. Also to a paused or disabled subscription; 409 for an unverified endpoint; 429 past 3 a second',
      body: testEventBody,
      response: { body: testResultSchema, description: 'The attempt, and the event it sent' },
      async handle({ principal, params, body }) {
        const { subscription, handler } = await reachable(principal, params.id as string);
        const now = Date.now();
        const event = testEvent(catalog, subscription, body, bus.source, now);
        const wait = tests.take(subscription.id, now);
        if (wait !== undefined) {
          throw new RateLimitedError(`At most ${testsPerSecond} test events a second to one subscription`, Math.max(1, Math.ceil(wait / 1000)));
        }
        return { body: { ...attemptView(await handler.test(subscription, event)), event } };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/subscriptions/:id/replay',
      portalToken: true,
      summary: 'Redeliver every matching event after a seq, or since a time, in the background; 409 while a replay of the subscription runs',
      body: replayBody,
      response: { status: 202, body: replaySchema, description: 'The replay, started' },
      async handle({ principal, params, body, raw }) {
        const { subscription, handler } = await reachable(principal, params.id as string);
        const trace = requestTraceContext(raw.headers);
        const replay =
          body.since !== undefined
            ? await handler.replays.startSince(subscription, Date.parse(body.since), trace)
            : await handler.replays.start(subscription, body.after as number, trace);
        return { status: 202, body: replay };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/subscriptions/:id/replay',
      portalToken: true,
      summary: 'The running or last replay of a push subscription, and how far it got',
      response: { body: replaySchema },
      async handle({ principal, params }) {
        const { subscription, handler } = await reachable(principal, params.id as string);
        const replay = await handler.replays.get(subscription.id);
        if (!replay) throw new NotFoundError(`A replay of subscription ${subscription.id}`);
        return { body: replay };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/subscriptions/:id/replay',
      portalToken: true,
      summary: 'Cancel the running replay of a push subscription (the deliveries it made stay)',
      response: { body: replaySchema },
      async handle({ principal, params }) {
        const { subscription, handler } = await reachable(principal, params.id as string);
        const replay = await handler.replays.cancel(subscription.id);
        if (!replay) throw new NotFoundError(`A running replay of subscription ${subscription.id}`);
        return { body: replay };
      },
    }),
  ];
}
