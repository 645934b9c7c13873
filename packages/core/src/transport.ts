import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { z } from 'zod';
import type { EventBus } from './event-bus.js';
import { HeraldError, UnavailableError } from './errors.js';
import type { EventCatalog } from './event-type-catalog.js';
import type { Logger } from './logger.js';
import type { Principal } from './principal.js';
import type { Store } from './store.js';
import type { Subscription, SubscriptionStatus } from './subscription.js';
import type { SubscriptionRegistry } from './subscription-registry.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a route handler receives: validated input and the caller. */
export interface RouteRequest<TBody = unknown, TQuery = unknown> {
  principal: Principal;
  params: Record<string, string>;
  body: TBody;
  query: TQuery;
  raw: IncomingMessage;
  response: ServerResponse;
}

/** A JSON answer; a handler that writes to `response` itself (a stream) returns nothing. */
export interface RouteResult {
  /** @default 200 */
  status?: number | undefined;
  body?: unknown;
  headers?: Record<string, string> | undefined;
  /**
   * For a `longPoll` route: whether the answer spends a request of the key's rate limit. A poll that waited and was
   * answered by a live event, or waited a while for none, is bounded by the key's connections as a stream is, and
   * spends none. @default true
   */
  countsAgainstRateLimit?: boolean;
}

/**
 * A route a transport adds to the server. The server authenticates the caller, validates the
 * body and query with the given zod schemas, and turns thrown errors into problem+json.
 */
export interface RouteDefinition<TBody = unknown, TQuery = unknown> {
  method: HttpMethod;
  /** Express-style path, e.g. `/v1/subscriptions/:id/replay`. */
  path: string;
  /** `admin` refuses consumer keys with 403. @default 'any' */
  role?: 'admin' | 'any';
  /** Also accept the credential as `?access_token=` (for browser EventSource). @default false */
  queryToken?: boolean;
  /**
   * Stream tokens (`hs_…`) may call this route: only read-only routes that limit what they answer to
   * the token's types and consumer. Every other route answers a stream token with 403. @default false
   */
  streamToken?: boolean;
  /**
   * Portal tokens (`hp_…`, a consumer's session in `@herald/portal`) may call this route: only routes that
   * limit what they do to the caller's consumer. Every other route answers a portal token with 403.
   * @default the value of `streamToken`
   */
  portalToken?: boolean;
  body?: z.ZodType<TBody>;
  query?: z.ZodType<TQuery>;
  /** One line for the generated API documents (`/openapi.json`). */
  summary?: string;
  /** The successful answer, for the generated API documents. @default 200 with a JSON body not described */
  response?: RouteResponse;
  /**
   * Each request is a client connection until its answer (a long poll): `herald_connected_clients`
   * counts it, as it counts streaming responses and upgraded sockets. A key with no request left is refused
   * before it is answered; one is spent once it is answered, unless its `RouteResult.countsAgainstRateLimit`
   * is false. Its answers are sent with `Cache-Control: no-store` and no ETag. @default false
   */
  longPoll?: boolean;
  /**
   * Headers for every answer of the route, whatever its status: set before the request is authenticated,
   * rate-limited or validated, so that those refusals carry them as well as the route's own answers do
   * (CORS headers, which a page on another origin needs to read why it was refused). @default none
   */
  headers?(request: IncomingMessage): Readonly<Record<string, string>> | undefined;
  handle(request: RouteRequest<TBody, TQuery>): Promise<RouteResult | undefined> | RouteResult | undefined;
}

/** A route's successful answer as the generated API documents describe it. */
export interface RouteResponse {
  /** @default 200 */
  status?: number;
  /** The JSON body; absent for an empty answer (204) or one left undescribed. */
  body?: z.ZodType;
  /** The media type when the answer is not JSON, e.g. `text/event-stream`. @default 'application/json' */
  mediaType?: string;
  /** @default 'OK' */
  description?: string;
}

/** Handles an HTTP upgrade on a path; the handler owns the socket from then on. */
export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Answers an unauthenticated request itself, e.g. a CORS preflight. */
export type PlainHandler = (request: IncomingMessage, response: ServerResponse) => void;

/** How a transport reaches the HTTP server it is mounted on. */
export interface HttpMount {
  route<TBody, TQuery>(definition: RouteDefinition<TBody, TQuery>): void;
  upgrade(path: string, handler: UpgradeHandler): void;
  /** Answers `OPTIONS` requests on `path` (CORS preflight, which carries no credentials) without authentication. */
  preflight?(path: string, handler: PlainHandler): void;
}

/** Everything a transport is given when it starts. */
export interface TransportContext {
  store: Store;
  bus: EventBus;
  catalog: EventCatalog;
  subscriptions: SubscriptionRegistry;
  logger: Logger;
  http: HttpMount;
  /**
   * Resolves an API key or stream token to its principal; throws UnauthorizedError. `from`: the request
   * that carried it (a WebSocket upgrade, say): its client address's failed authentications count
   * against the same limit as the REST API's, and past it this throws RateLimitedError without looking.
   */
  authenticate(credential: string, from?: IncomingMessage): Promise<Principal>;
  /** Calls `listener` with the id of every key revoked on any node; returns a function that stops it. */
  onKeyRevoked(listener: (keyId: string) => void): () => void;
  /** The environment the server was configured from. */
  env: Readonly<Record<string, string | undefined>>;
  /** Aborted when the server begins to stop. */
  signal: AbortSignal;
  /** What the transport reports for `/metrics`, labelled with its name. */
  metrics: TransportMetrics;
  /** Counts long-lived connections (WebSocket, SSE, ...) per key across every transport, against one limit. */
  connections: ConnectionLimiter;
}

/**
 * The server's count of open long-lived connections per credential (an API key or a stream token),
 * shared by every transport so that one limit holds for all of them together.
 */
export interface ConnectionLimiter {
  /**
   * Counts one more connection for `principal`'s credential. Returns the function that releases it
   * (call it once, when the connection closes), or `undefined` when the credential is at its limit:
   * then refuse the connection with {@link TooManyConnectionsError} (HTTP 429). Throws
   * {@link NodeAtCapacityError} (HTTP 503) when the server holds as many connections as it allows in all.
   */
  acquire(principal: Principal): (() => void) | undefined;
}

/** The server holds as many long-lived connections as it allows in all (`HERALD_MAX_CONNECTIONS`): 503, to try again later or another node. */
export class NodeAtCapacityError extends UnavailableError {
  override readonly name: string = 'NodeAtCapacityError';
  constructor(max: number) {
    super(`This server holds as many open connections as it allows (${max}); try again later, or another node`, 5, 'node-at-capacity');
  }
  /** `Retry-After`, and the connection closed after the answer: a client kept waiting would hold one of the server's files. */
  override headers(): Record<string, string> {
    return { ...super.headers(), connection: 'close' };
  }
}

/** The credential already holds as many connections as the server allows ({@link ConnectionLimiter}): 429. */
export class TooManyConnectionsError extends HeraldError {
  override readonly name: string = 'TooManyConnectionsError';
  constructor() {
    super(
      'too-many-connections',
      429,
      'This key (or stream token) already holds as many open connections as the server allows; close one, or try again later',
      'Too many connections',
    );
  }
}

/**
 * A transport's measurements for `/metrics`. The server itself counts open connections (upgraded
 * sockets and streaming responses), so a transport reports only what it alone can see.
 */
export interface TransportMetrics {
  /**
   * One delivery ended: `outcome` is e.g. `delivered`, `failed` or `dropped`; `latencyMs` is the
   * time from the event's publication (its `time`) to this delivery.
   */
  delivered(outcome: string, latencyMs: number): void;
  /**
   * Deliveries of several events that ended alike at the same moment (a batch written to one connection in
   * one write): one {@link delivered} each, `atMs - publishedAt[i]` after its event's publication, said at once.
   * Optional: without it, {@link delivered} is called for each.
   */
  deliveredAll?(outcome: string, publishedAt: readonly number[], atMs: number): void;
  /**
   * Reads the transport's backlog (e.g. webhook deliveries waiting in the outbox) each time metrics are scraped.
   * `scope` says whose it is: `node`, work this node holds (in its memory), which adds up across nodes; or
   * `shared`, work that every node sharing the store reads alike (the outbox's pending rows), which does not.
   * A transport may report one backlog of each scope.
   * @default 'node'
   */
  backlog(read: () => number | Promise<number>, scope?: 'node' | 'shared'): void;
  /** A durable subscription attached with a cursor older than the log keeps, and was reset. */
  cursorReset?(): void;
}

/** Says to `metrics` that the events published at `publishedAt` (ms since the epoch) were delivered to one connection now, with `outcome`. */
export function countDeliveries(metrics: TransportMetrics, outcome: string, publishedAt: readonly number[], atMs = Date.now()): void {
  if (metrics.deliveredAll) metrics.deliveredAll(outcome, publishedAt, atMs);
  else for (const at of publishedAt) metrics.delivered(outcome, atMs - at);
}

/** A transport's stored config, what the creator is shown once, and the initial status. */
export interface PreparedConfig<TConfig extends Record<string, unknown> = Record<string, unknown>> {
  config: TConfig;
  /** Shown once in the create (or change) response, e.g. a generated webhook secret. */
  reveal?: Record<string, unknown>;
  /** @default 'active' */
  status?: SubscriptionStatus;
}

/** The frames of a transport's wire protocol by name, for the AsyncAPI document. */
export interface TransportFrames {
  /** What clients send (the schemas the transport validates them with). @default none */
  readonly client?: Readonly<Record<string, z.ZodType>>;
  /** What the transport sends, besides the events of the catalog. @default none */
  readonly server?: Readonly<Record<string, z.ZodType>>;
}

/**
 * How `/asyncapi.json` describes a transport: the channel its consumers get events on, the server that channel
 * is on, and its messages. Every mounted transport has a channel: one that describes nothing gets the catalog's
 * events, titled with its name.
 */
export interface TransportChannel {
  /** @default the transport's name */
  readonly title?: string;
  /** How a consumer uses the channel (CommonMark). @default none */
  readonly description?: string;
  /** Where the messages travel. @default none named */
  readonly server?: TransportServer;
  /**
   * Where the messages go on the server: a path, a routing key, a subject. `{name}` stands for what each
   * subscription says (see `variables`). @default null: each subscription's own
   */
  readonly address?: string | null;
  /** What each `{name}` of `server.host` and `address` stands for, by name. @default none */
  readonly variables?: Readonly<Record<string, string>>;
  /** The catalog's events, one message per type, as the transport sends them; `false` when it sends them only inside its frames. @default {} */
  readonly events?: TransportEvents | false;
  /** Its wire protocol's frames besides the events. @default none */
  readonly frames?: TransportFrames;
  /** AsyncAPI bindings by protocol (`{ amqp: { ... } }`): of the channel, and of the operation by which the transport sends. @default none */
  readonly bindings?: { readonly channel?: Readonly<Record<string, unknown>>; readonly operation?: Readonly<Record<string, unknown>> };
}

/** The server a transport's channel is on, as AsyncAPI has it. */
export interface TransportServer {
  /** `ws`, `http`, `https`, `amqp`, `nats`, `mqtt`... */
  readonly protocol: string;
  /** @default none */
  readonly protocolVersion?: string;
  /**
   * `host[:port]`; `{name}` for what each subscription says (a webhook's endpoint, a consumer's broker).
   * @default the Herald server's own host, under the path Herald is served at
   */
  readonly host?: string;
  /** @default none */
  readonly description?: string;
}

/** How a transport sends the catalog's events, besides the envelope as the payload. */
export interface TransportEvents {
  /** The headers (or message properties) each message carries, as a zod object. @default none */
  readonly headers?: z.ZodType;
  /** The payload's media type. @default 'application/json' */
  readonly contentType?: string;
}

/**
 * How a transport reaches its consumers: Herald sends each event to a destination (`push`: webhook, queue),
 * the client holds a connection open (`stream`: WebSocket, SSE), or the client asks (`pull`: long polling).
 */
export type TransportKind = 'push' | 'stream' | 'pull';

/**
 * A way of delivering events: webhook, WebSocket, SSE, or a contributor's. Like a kysely
 * Dialect: a small object with an explicit lifecycle that the server drives. `TConfig` is the config its
 * subscriptions store, `TInput` what its `configSchema` gives (the same, unless `prepareConfig` completes
 * it, as the webhook transport fills in a generated secret). A server takes transports of any config.
 */
export interface Transport<TConfig extends Record<string, unknown> = Record<string, unknown>, TInput extends Record<string, unknown> = TConfig> {
  /** The `transport` value of its subscriptions. */
  readonly name: string;
  /** How it reaches its consumers, as `GET /v1/transports` tells clients such as the portal. `definePushTransport` sets `push`. @default 'stream' */
  readonly kind?: TransportKind;
  /** Validates `Subscription.config`; its output is what is stored, its input what `/openapi.json` describes. @default config must be an empty object */
  readonly configSchema?: z.ZodType<TInput>;
  /** Completes a validated config on create or change (generates secrets). @default stored as given */
  prepareConfig?(config: TInput, previous?: Subscription<TConfig>): Promise<PreparedConfig<TConfig>> | PreparedConfig<TConfig>;
  /** The config as the API shows it, secrets left out. @default the stored config */
  publicConfig?(config: TConfig): Record<string, unknown>;
  /** How `/asyncapi.json` describes it. @default a channel of the catalog's events, titled with its name */
  readonly channel?: TransportChannel;
  start(context: TransportContext): Promise<void>;
  /** Graceful: finishes in-flight work and closes connections properly. */
  stop(): Promise<void>;
}

/**
 * Whether `subscription` is one of `transport`'s, and so has its config: the server validates every
 * config a subscription is created or changed with against its transport's `configSchema` (and lets
 * `prepareConfig` complete it) before it is stored.
 */
export function isSubscriptionOf<TConfig extends Record<string, unknown>, TInput extends Record<string, unknown>>(
  transport: Transport<TConfig, TInput>,
  subscription: Subscription,
): subscription is Subscription<TConfig> {
  return subscription.transport === transport.name;
}

/** Infers a route's body and query types from its schemas: `defineRoute({ body: z.object(...), handle({ body }) {...} })`. */
export function defineRoute<TBody = unknown, TQuery = unknown>(route: RouteDefinition<TBody, TQuery>): RouteDefinition {
  return route as RouteDefinition;
}
