import {
  ConflictError,
  type HeraldEvent,
  isSubscriptionOf,
  type PreparedConfig,
  type Subscription,
  type Transport,
  type TransportChannel,
  type TransportContext,
  type TraceFields,
} from '@herald/core';
import { z } from 'zod';
import type { PushResult } from './attempt-outcome.js';
import { DeliveryEngine } from './delivery-engine.js';
import type { Delivery, Outbox } from './outbox.js';
import { OutboxDispatcher } from './outbox-dispatcher.js';
import { type PushOptions, type ResolvedPushOptions, resolvePushOptions } from './push-options.js';
import { mountPushRoutes } from './push-routes.js';
import { ReplayRunner } from './replay-runner.js';
import { sqlOutbox } from './sql-outbox.js';

/**
 * The fields of a push transport's config that the delivery engine reads itself. A transport that offers
 * them spreads {@link pushConfigFields} into its `configSchema`.
 */
export interface PushConfig extends Record<string, unknown> {
  /** One delivery at a time, in `seq` order: a failing event holds back the ones after it. */
  ordered?: boolean | undefined;
  /** At most this many deliveries per second to this destination, across all nodes (one token bucket in the outbox). */
  rateLimit?: number | undefined;
}

/** `ordered` and `rateLimit`, for a push transport's `configSchema`: `z.strictObject({ url: ..., ...pushConfigFields })`. */
export const pushConfigFields = {
  rateLimit: z
    .number()
    .positive()
    .max(10_000)
    .optional()
    .describe('At most this many deliveries per second to this destination, across all nodes (one token bucket in the outbox)'),
  ordered: z.boolean().optional().describe('One delivery at a time, in `seq` order: a failing event holds back the ones after it'),
};

/**
 * A destination's URL, for a push transport's `configSchema`: absolute, at most 2,048 characters, of one of
 * `protocols` (`'https:'`...), with a host; with `credentials: false`, without a user or password in it.
 */
export function destinationUrl(protocols: readonly string[], message: string, { credentials = true }: { credentials?: boolean } = {}) {
  return z
    .string()
    .max(2048)
    .refine((text) => {
      const url = URL.canParse(text) ? new URL(text) : undefined;
      return url !== undefined && protocols.includes(url.protocol) && url.hostname !== '' && (credentials || (url.username === '' && url.password === ''));
    }, message);
}

/** A test of an endpoint that may not be sent anything yet (a webhook endpoint not verified): 409. */
export class EndpointNotDeliverableError extends ConflictError {
  override readonly name = 'EndpointNotDeliverableError';
  constructor(subscriptionId: string) {
    super(`Subscription ${subscriptionId} may not be sent anything yet (its endpoint is not verified): not even a test`);
  }
}

/** One delivery to send: the event, the subscription it goes to, and the delivery as the outbox keeps it. */
export interface PushMessage<TConfig extends PushConfig> {
  readonly event: HeraldEvent;
  /** The event as JSON, made once however many subscriptions it goes to. */
  readonly body: string;
  readonly subscription: Subscription<TConfig>;
  /** Its id, and `attempts`: the number of this attempt in the current round (1 for the first). */
  readonly delivery: Delivery;
  /**
   * A test event sent by `POST /v1/subscriptions/:id/test`: in no log (its `seq` is 0, its id starts with
   * `evt_test_`), not in the outbox, sent once. A transport may mark it on the wire too (the webhook
   * and AMQP transports send the header `herald-test: 1`, the NATS transport `Herald-Test: 1`).
   */
  readonly test?: boolean;
  /**
   * The W3C trace context of this attempt's span (a child of the event's publish), for the destination:
   * the webhook transport sends it as the `traceparent` and `tracestate` headers. Empty when nothing is traced.
   */
  readonly trace?: TraceFields;
}

/** What a push transport's own parts (routes, a verifier) are given as it starts. */
export interface PushContext<TConfig extends PushConfig> extends TransportContext {
  /** Where the deliveries are. */
  readonly outbox: Outbox;
  /** Whether a subscription is one of this transport's, with its config. */
  owns(subscription: Subscription): subscription is Subscription<TConfig>;
  /** Tells this node's delivery engine that a subscription changed (a rotated secret, a verified endpoint). */
  refresh(subscription: Subscription<TConfig>): void;
  /** The transport's options, with the environment (`HERALD_ALLOW_PRIVATE`) and the defaults applied. */
  readonly options: ResolvedPushOptions;
}

interface PushTransportParts<TConfig extends PushConfig, TInput extends Record<string, unknown>> {
  /** The `transport` value of its subscriptions. */
  readonly name: string;
  /** Validates `Subscription.config`. */
  readonly configSchema: z.ZodType<TInput>;
  /** Completes a validated config on create or change (generates secrets). @default stored as given */
  prepareConfig?(config: TInput, previous?: Subscription<TConfig>): Promise<PreparedConfig<TConfig>> | PreparedConfig<TConfig>;
  /** The config as the API shows it, secrets left out. @default the stored config */
  publicConfig?(config: TConfig): Record<string, unknown>;
  /** How `/asyncapi.json` describes it. @default a channel of the catalog's events, titled with its name */
  readonly channel?: TransportChannel;
  /** How deliveries are made, or a function of the server's environment that says. @default the defaults of {@link PushOptions} */
  options?: PushOptions | ((env: Readonly<Record<string, string | undefined>>) => PushOptions);
  /** Whether an active subscription may be sent anything now (e.g. only once its endpoint is verified). @default always */
  deliverable?(subscription: Subscription<TConfig>): boolean;
  /** Starts what else the transport runs (routes of its own, a verifier), before the first delivery. */
  start?(context: PushContext<TConfig>): Promise<void> | void;
  /** Stops it, after the last delivery. */
  stop?(): Promise<void> | void;
}

/**
 * A push transport: where and how one delivery is sent. Everything else (the outbox, fan-out, claims
 * under leases, retries, the attempts, retry and replay routes) is {@link definePushTransport}'s.
 */
export interface PushTransportDefinition<TConfig extends PushConfig, TInput extends Record<string, unknown> = TConfig, TTarget = TConfig>
  extends PushTransportParts<TConfig, TInput> {
  /**
   * What every send to a stored config shares, worked out once per config rather than per delivery (a
   * parsed URL, signing keys, the key of a connection pool). @default the config itself
   */
  target?(config: TConfig): TTarget;
  /**
   * Sends one delivery to `target` (the subscription's). Resolves with what came of it; a rejection is a
   * failed attempt with the error's message. It must end within the `timeout` option: the engine
   * starts an attempt only while the lease has that long left.
   */
  send(message: PushMessage<TConfig>, target: TTarget): Promise<PushResult>;
}

/** A transport made by {@link definePushTransport}. */
export interface PushTransport<TConfig extends PushConfig, TInput extends Record<string, unknown> = TConfig> extends Transport<TConfig, TInput> {
  /** This node's worker id, as stored in the leases it takes. Set once started. */
  readonly workerId: string | undefined;
}

/**
 * Gives a push transport durable at-least-once delivery: every event its subscriptions match becomes
 * a delivery in the outbox, in the transaction that moves its fan-out position, and is sent with
 * `send`, retried on the schedule until it is delivered or the schedule runs out. Several push
 * transports on one server share the outbox and the routes of the attempts API
 * (`GET /v1/subscriptions/:id/deliveries`, `GET /v1/deliveries/:id`, `POST /v1/deliveries/:id/retry`,
 * `POST|GET|DELETE /v1/subscriptions/:id/replay`).
 */
export function definePushTransport<TInput extends PushConfig, TConfig extends PushConfig = TInput, TTarget = TConfig>(
  definition: PushTransportDefinition<TConfig, TInput, TTarget> & { target(config: TConfig): TTarget },
): PushTransport<TConfig, TInput>;
export function definePushTransport<TInput extends PushConfig, TConfig extends PushConfig = TInput>(
  definition: PushTransportDefinition<TConfig, TInput, TConfig>,
): PushTransport<TConfig, TInput>;
export function definePushTransport<TInput extends PushConfig, TConfig extends PushConfig, TTarget>(
  definition: PushTransportDefinition<TConfig, TInput, TTarget | TConfig>,
): PushTransport<TConfig, TInput> {
  const { name } = definition;
  let engine: DeliveryEngine<TConfig, TTarget | TConfig> | undefined;
  let replays: ReplayRunner | undefined;
  let stopListening: (() => void) | undefined;
  let unmount: (() => void) | undefined;

  const transport: PushTransport<TConfig, TInput> = {
    name,
    kind: 'push',
    configSchema: definition.configSchema,
    ...(definition.prepareConfig ? { prepareConfig: definition.prepareConfig.bind(definition) } : {}),
    ...(definition.publicConfig ? { publicConfig: definition.publicConfig.bind(definition) } : {}),
    ...(definition.channel ? { channel: definition.channel } : {}),
    get workerId() {
      return engine?.worker;
    },

    async start(context) {
      const given = typeof definition.options === 'function' ? definition.options(context.env) : definition.options;
      const options = resolvePushOptions(name, given ?? {}, context.env);
      const outbox = options.outbox ?? (await sqlOutbox(context.store));
      const ours = (subscription: Subscription): subscription is Subscription<TConfig> => isSubscriptionOf(transport, subscription);
      const deliverable = (subscription: Subscription<TConfig>) => subscription.status === 'active' && (definition.deliverable?.(subscription) ?? true);
      const { store, subscriptions } = context;
      const dispatcher = new OutboxDispatcher<TConfig>({ transport: name, outbox, store, subscriptions, ours, accepts: deliverable });
      const worker = (engine = new DeliveryEngine<TConfig, TTarget | TConfig>({
        transport: name,
        context,
        outbox,
        options,
        dispatcher,
        deliverable,
        ours,
        target: definition.target ? definition.target.bind(definition) : (config) => config,
        send: definition.send.bind(definition),
      }));
      const wake = (subscription: Subscription) => {
        if (ours(subscription)) worker.wake(subscription);
      };
      replays = new ReplayRunner(context, outbox, {
        transport: name,
        worker: worker.worker,
        lease: options.lease,
        wake,
        handOver: {
          room: (subscription, now) => (ours(subscription) ? worker.replayRoom(subscription, now) : undefined),
          take: (subscription, claimed, hold) => {
            if (ours(subscription)) worker.takeReplayed(subscription, claimed, hold);
          },
          holds: (subscriptionId, seq) => worker.holdsReplayed(subscriptionId, seq),
          settled: (subscriptionId, seq) => worker.settledUpTo(subscriptionId, seq),
        },
      });
      await definition.start?.({ ...context, outbox, owns: ours, refresh: (subscription) => worker.refresh(subscription), options });
      const test = (subscription: Subscription, event: HeraldEvent) => {
        if (!ours(subscription)) throw new Error(`Subscription ${subscription.id} is not one of the ${name} transport's`);
        // Unverified endpoints are sent nothing, not even a test; paused and disabled ones are, on request.
        if (!(definition.deliverable?.(subscription) ?? true)) throw new EndpointNotDeliverableError(subscription.id);
        return worker.test(subscription, event);
      };
      unmount = mountPushRoutes(context, name, { outbox, replays, wake, test });

      // The bus hands over every event after `latest`, so the two must be taken together.
      const latest = context.bus.latest;
      stopListening = context.bus.onEvents((events) => {
        dispatcher.onEvents(events);
        worker.eventsArrived();
      });
      await dispatcher.init(latest);
      worker.start();
    },

    async stop() {
      stopListening?.();
      await replays?.stop();
      await engine?.stop();
      unmount?.();
      await definition.stop?.();
    },
  };
  return transport;
}
