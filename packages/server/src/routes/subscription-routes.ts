import {
  assertFilterFits,
  canAccess,
  consumerId,
  defineRoute,
  type EventFilter,
  eventFilterSchema,
  ForbiddenError,
  HeraldError,
  NotFoundError,
  type Principal,
  queryNumber,
  type RouteDefinition,
  storableString,
  type Subscription,
  type SubscriptionStatus,
  subscriptionStatus,
  subscriptionTypes,
  type Transport,
  toIssues,
  ValidationError,
} from '@herald/core';
import { z } from 'zod';
import { subscriptionPageSchema, subscriptionSchema } from '../api-schemas.js';
import { KeyedLock } from '../keyed-lock.js';
import type { ServerContext } from '../server-context.js';

const config = z.record(z.string(), z.unknown());

const createBody = z.strictObject({
  transport: z.string().min(1),
  types: subscriptionTypes,
  config: config.default({}),
  consumer: consumerId.optional(),
  status: z.enum(['active', 'paused']).optional(),
  filter: eventFilterSchema.optional(),
});

const updateBody = z
  .strictObject({
    types: subscriptionTypes.optional(),
    config: config.optional(),
    status: z.enum(['active', 'paused', 'disabled']).optional(),
    filter: eventFilterSchema.nullable().optional().describe('A new filter; `null` removes it'),
  })
  .refine((body) => Object.keys(body).length > 0, { message: 'name at least one of types, config, status, filter' });

/** A page is as long as one consumer's subscriptions may be, by default: that list comes whole. */
const listQuery = (maxSubscriptions: number) =>
  z.object({
    consumer: consumerId.optional().describe("Only this consumer's (an admin key; a consumer key sees its own)"),
    transport: storableString.min(1).optional(),
    status: subscriptionStatus.optional(),
    after: storableString.min(1).optional().describe('The `next` of the previous page: subscriptions whose id sorts after it'),
    limit: queryNumber(z.number().int().min(1).max(Math.max(1000, maxSubscriptions)).default(maxSubscriptions)).describe(
      'Subscriptions per page; by default as many as one consumer may hold (`HERALD_MAX_SUBSCRIPTIONS`)',
    ),
  });

/** The config of a transport without a `configSchema`: an empty object. */
export const emptyConfig = z.strictObject({});

/** A PATCH named a status for a subscription that awaits endpoint verification: only verification moves it. */
class SubscriptionPendingError extends HeraldError {
  constructor(id: string) {
    super(
      'subscription-pending',
      409,
      `Subscription ${id} awaits the verification of its endpoint: only that makes it active. Change its types or config, or delete it.`,
      'Subscription pending verification',
    );
  }
}

/** The consumer holds as many subscriptions as it may: 409, nothing stored. */
class SubscriptionLimitError extends HeraldError {
  constructor(readonly limit: number) {
    super(
      'subscription-limit',
      409,
      `A consumer may hold at most ${limit} subscriptions (HERALD_MAX_SUBSCRIPTIONS); delete one first`,
      'Too many subscriptions',
    );
  }
  protected override extensions() {
    return { limit: this.limit };
  }
}

export function subscriptionRoutes({ bus, catalog, subscriptions, transports, maxSubscriptions, logger }: ServerContext): RouteDefinition[] {
  // Creates by one consumer take turns, so that counting and storing are one step on this node.
  const creates = new KeyedLock();

  const transportOf = (name: string): Transport => {
    const transport = transports.get(name);
    if (!transport) {
      throw new ValidationError(`Transport "${name}" is not mounted on this server`, [
        { path: ['transport'], message: `must be one of: ${[...transports.keys()].join(', ') || '(none)'}` },
      ]);
    }
    return transport;
  };

  /** Validates a config with the transport's schema and lets the transport complete it. */
  const prepare = async (transport: Transport, input: Record<string, unknown>, previous?: Subscription) => {
    const parsed = (transport.configSchema ?? emptyConfig).safeParse(input);
    if (!parsed.success) {
      throw new ValidationError(
        `The config is not valid for transport "${transport.name}"`,
        toIssues(parsed.error.issues).map((issue) => ({ ...issue, path: ['config', ...issue.path] })),
      );
    }
    if (!transport.prepareConfig) return { config: parsed.data };
    try {
      return await transport.prepareConfig(parsed.data, previous);
    } catch (error) {
      logRefusedTarget(error, transport.name);
      throw error;
    }
  };

  /**
   * A destination the address guard refused: the consumer reads what it is (in the 422), the operator reads here
   * the address it resolved to, if any, and how to allow it (the refusal's `hint`), which the consumer must not.
   */
  const logRefusedTarget = (error: unknown, transport: string) => {
    const refused = error instanceof ValidationError ? error.cause : undefined;
    if (!(refused instanceof Error) || typeof (refused as { hint?: unknown }).hint !== 'string') return;
    const { address, hint } = refused as Error & { address?: string; hint: string };
    logger.info({ transport, refused: refused.message, ...(address ? { address } : {}), hint }, "refused a subscription's destination");
  };

  const present = (subscription: Subscription, reveal: Record<string, unknown> = {}) => {
    const transport = transports.get(subscription.transport);
    const shown = transport?.publicConfig ? transport.publicConfig(subscription.config) : subscription.config;
    return { ...subscription, config: { ...shown, ...reveal } };
  };

  /** The subscription, if this principal may reach it; another consumer's is a 404, not a 403. */
  const reachable = async (principal: Principal, id: string): Promise<Subscription> => {
    const subscription = await subscriptions.get(id);
    if (!subscription || !canAccess(principal, subscription)) throw new NotFoundError(`Subscription ${id}`);
    return subscription;
  };

  return [
    defineRoute({
      method: 'POST',
      path: '/v1/subscriptions',
      portalToken: true,
      body: createBody,
      summary: 'Subscribe (a webhook’s `whsec_` secret is shown only in this response)',
      response: { status: 201, body: subscriptionSchema },
      async handle({ body, principal }) {
        let consumer = principal.consumer;
        if (principal.role === 'admin') {
          if (body.consumer === undefined) {
            throw new ValidationError('An admin must say which consumer the subscription is for', [
              { path: ['consumer'], message: 'required with an admin key' },
            ]);
          }
          consumer = body.consumer;
        } else if (body.consumer !== undefined && body.consumer !== consumer) {
          throw new ForbiddenError('A consumer key may only subscribe for its own consumer');
        }
        const owner = consumer as string;
        const transport = transportOf(body.transport);
        await catalog.ensureKnown(body.types);
        if (body.filter !== undefined) assertFilterFits(body.filter, body.types, catalog.list());
        const prepared = await prepare(transport, body.config);
        const subscription = await creates.run(owner, async () => {
          if ((await subscriptions.list({ consumer: owner, limit: maxSubscriptions })).length >= maxSubscriptions) {
            throw new SubscriptionLimitError(maxSubscriptions);
          }
          return subscriptions.create({
            consumer: owner,
            transport: transport.name,
            types: body.types,
            status: prepared.status ?? body.status ?? 'active',
            config: prepared.config,
            ...(body.filter !== undefined ? { filter: body.filter } : {}),
            // A new subscription starts from now: a WebSocket/SSE client that attaches later resumes from here.
            cursor: bus.latest,
          });
        });
        return { status: 201, body: present(subscription, prepared.reveal) };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/subscriptions',
      portalToken: true,
      query: listQuery(maxSubscriptions),
      summary: 'List subscriptions in id order, a page at a time (a consumer sees its own)',
      response: { body: subscriptionPageSchema },
      async handle({ query, principal }) {
        const consumer = principal.role === 'admin' ? query.consumer : principal.consumer;
        // One more than the page, to tell whether there is more.
        const found = await subscriptions.list({
          ...(consumer !== undefined ? { consumer } : {}),
          ...(query.transport !== undefined ? { transport: query.transport } : {}),
          ...(query.status !== undefined ? { status: query.status } : {}),
          ...(query.after !== undefined ? { after: query.after } : {}),
          limit: query.limit + 1,
        });
        const page = found.slice(0, query.limit);
        const next = page.at(-1)?.id ?? query.after ?? null;
        return { body: { data: page.map((subscription) => present(subscription)), next, hasMore: found.length > query.limit } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/subscriptions/:id',
      portalToken: true,
      summary: 'Read a subscription',
      response: { body: subscriptionSchema },
      async handle({ params, principal }) {
        return { body: present(await reachable(principal, params.id as string)) };
      },
    }),
    defineRoute({
      method: 'PATCH',
      path: '/v1/subscriptions/:id',
      portalToken: true,
      body: updateBody,
      summary: 'Change types, config, status or filter',
      response: { body: subscriptionSchema },
      async handle({ params, principal, body }) {
        const current = await reachable(principal, params.id as string);
        const pending = current.status === 'pending';
        if (pending && body.status !== undefined) throw new SubscriptionPendingError(current.id);
        if (body.types !== undefined) await catalog.ensureKnown(body.types);
        // The filter, new or kept, must fit the types, new or kept.
        const filter: EventFilter | null | undefined = body.filter === undefined ? current.filter : body.filter;
        if (filter && (body.filter !== undefined || body.types !== undefined)) assertFilterFits(filter, body.types ?? current.types, catalog.list());
        let reveal: Record<string, unknown> | undefined;
        let status: SubscriptionStatus | undefined = body.status;
        let nextConfig: Record<string, unknown> | undefined;
        if (body.config !== undefined) {
          const prepared = await prepare(transportOf(current.transport), { ...current.config, ...body.config }, current);
          nextConfig = prepared.config;
          reveal = prepared.reveal;
          // A pending subscription stays pending whatever its transport answers: only verification activates it.
          status = pending ? undefined : (prepared.status ?? status);
        }
        const updated = await subscriptions.update(current.id, {
          ...(body.types !== undefined ? { types: body.types } : {}),
          ...(nextConfig !== undefined ? { config: nextConfig } : {}),
          ...(status !== undefined ? { status } : {}),
          ...(body.filter !== undefined ? { filter: body.filter } : {}),
        });
        if (!updated) throw new NotFoundError(`Subscription ${current.id}`);
        return { body: present(updated, reveal) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/subscriptions/:id',
      portalToken: true,
      summary: 'Unsubscribe',
      response: { status: 204 },
      async handle({ params, principal }) {
        const subscription = await reachable(principal, params.id as string);
        await subscriptions.delete(subscription.id);
        return { status: 204 };
      },
    }),
  ];
}
