import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Broker,
  EventBus,
  EventCatalog,
  type EventMapOf,
  type EventTypeDefinition,
  type InTransaction,
  isPrunable,
  type Logger,
  LogPruner,
  memoryBroker,
  NotFoundError,
  type PublishInput,
  postgresStore,
  type PublishedInTransaction,
  type PublishResult,
  type RateLimitStore,
  SqlStore,
  type Store,
  SubscriptionRegistry,
  sqliteStore,
  type Transport,
  UnavailableError,
} from '@herald/core';
import express, { type Express, type RequestHandler } from 'express';
import { pino } from 'pino';
import proxyaddr from 'proxy-addr';
import { ApiKeys } from './api-keys.js';
import { answerClientError } from './client-errors.js';
import { PerKeyConnectionLimiter } from './connection-limiter.js';
import type { ApiSurface } from './api-surface.js';
import { type HeraldHandlers, heraldHandlers, type MountOptions } from './herald-handlers.js';
import { refuseUpgrade, TransportMount } from './http-mount.js';
import { lazyBroker } from './lazy-broker.js';
import { lazyRateLimits } from './lazy-rate-limits.js';
import { HeraldMetrics } from './metrics.js';
import { answerOptions, refuseOtherMethods } from './method-not-allowed.js';
import { connectionsWithin, openFilesLimit, openFilesShortfall } from './open-files-limit.js';
import { type HeraldOptions, type RedisEndpoint, type ResolvedOptions, resolveOptions, type SeamSource } from './options.js';
import { problemHandler } from './problem.js';
import { RequestLimiter } from './rate-limiter.js';
import { jsonBody, mountRoute, type RouteMountOptions } from './route-mount.js';
import { mountDocsRoutes, operationalRoutes } from './routes/docs-routes.js';
import { eventRoutes } from './routes/event-routes.js';
import { eventTypeRoutes, eventTypesChannel, loadStoredEventTypes } from './routes/event-type-routes.js';
import { mountHealthRoutes } from './routes/health-routes.js';
import { keyRoutes } from './routes/key-routes.js';
import { portalSessionRoutes } from './routes/portal-session-routes.js';
import { streamTokenRoutes } from './routes/stream-token-routes.js';
import { subscriptionRoutes } from './routes/subscription-routes.js';
import { transportRoutes } from './routes/transport-routes.js';
import { type Attachment, attachHandlers, type HttpServer } from './server-attachment.js';
import type { ServerContext } from './server-context.js';
import { stopOnSignals } from './stop-on-signals.js';

/** The typed `publish` input: `data` is checked against the type's schema at compile time too. */
export type TypedPublishInput<TMap> = [keyof TMap] extends [never]
  ? PublishInput
  : { [K in keyof TMap & string]: PublishInput<K, TMap[K]> }[keyof TMap & string];

export interface ListenOptions {
  /** @default the `port` option, then `PORT`, then 3000 */
  port?: number;
  /** @default the `host` option, then every interface */
  host?: string;
  /**
   * Close gracefully on SIGTERM and SIGINT, then exit: `stopOnSignals(() => herald.close(), herald.logger)`. Set it
   * false to stop your own way, such as `stopOnSignals` with more to finish after `close()`.
   * @default true
   */
  handleSignals?: boolean;
  /** What answers the requests: an app of yours that mounts `herald.app` (the upgrades still reach the transports). @default the `app` */
  handler?: (request: IncomingMessage, response: ServerResponse) => void;
}

export interface Listening {
  server: Server;
  port: number;
  /** e.g. `http://127.0.0.1:3000` */
  url: string;
}

/** A composed Herald: the express app, the HTTP listener, publishing, and shutdown. */
export interface Herald<TMap = Record<never, never>> {
  /**
   * The express app, for `app.use('/events', herald.app)` in an express app of yours or for tests. Waits for
   * `ready` on each request. Mounted in another app, it hands the requests none of its routes takes on to the
   * routes after it; on its own, it answers them 404. For the WebSocket under a path, prefer `attach`.
   */
  readonly app: Express;
  /** Resolves when the store is migrated and the transports have started. */
  readonly ready: Promise<void>;
  readonly store: Store;
  readonly bus: EventBus;
  readonly catalog: EventCatalog;
  readonly subscriptions: SubscriptionRegistry;
  readonly logger: Logger;
  /** Issues API keys and stream tokens in code, e.g. a stream token for a signed-in user of your own page. */
  readonly keys: ApiKeys;
  /** An admin key generated on this start because none existed; shown only this once. */
  readonly generatedAdminKey: Promise<string | undefined>;
  /** Starts an HTTP server (with the transports' upgrade handlers). */
  listen(options?: ListenOptions): Promise<Listening>;
  /**
   * Attaches Herald to an HTTP server your app already has: its REST routes, WebSocket and SSE answer under
   * `basePath`, ahead of the server's own listeners, whether they were added before or after; every other
   * request and upgrade reaches them as it came. Resolves once Herald is ready. From `close()` on, Herald's
   * own routes and upgrades on the server, still listening, are answered 503 `unavailable` with `Retry-After`
   * (but `/healthz`, 200; `/readyz` is 503 `not-ready`), which clients retry, until a new Herald is attached under
   * the same base path and takes its place; every other request still reaches your app.
   */
  attach(server: HttpServer, options?: MountOptions): Promise<void>;
  /** The request handler and the upgrade handler that `attach` is made of, for a server or framework of yours. */
  handlers(options?: MountOptions): HeraldHandlers;
  /**
   * Validates, stores durably and delivers an event. Resolves once it is in the log.
   *
   * With `{ transaction }`, a kysely transaction of yours on the store's database (see `database`), the
   * event is validated first (invalid data throws before anything is written), then written in that
   * transaction: it enters the log when it commits, and never when it rolls back. It is delivered after
   * the commit by the next poll of the log (within a second), or at once when you call the result's
   * `afterCommit()`. See docs/guides/transactional-publish.md.
   */
  publish(input: TypedPublishInput<TMap>): Promise<PublishResult>;
  publish<DB>(input: TypedPublishInput<TMap>, options: InTransaction<DB>): Promise<PublishedInTransaction>;
  /** Like `publish` for several events, in order; nothing is stored unless all of them are valid. */
  publishMany(inputs: readonly TypedPublishInput<TMap>[]): Promise<PublishResult[]>;
  publishMany<DB>(inputs: readonly TypedPublishInput<TMap>[], options: InTransaction<DB>): Promise<PublishedInTransaction[]>;
  /**
   * The store's database, for your own tables and the transactions you publish in: on SQLite, Herald's
   * own connection (your transactions and Herald's writes take turns on it, so neither finds the file
   * locked); on PostgreSQL, Herald's pool (your own pool on the same database works as well). Add your
   * tables' types with `herald.database.withTables<YourTables>()`. Throws when the store is not the SQL store.
   */
  readonly database: SqlStore['database'];
  /**
   * Stops gracefully: stops accepting, lets in-flight requests and publishes finish, stops the
   * transports, then closes the broker and the store. `listen()`'s server stops taking connections and
   * serves the requests of those still open until they close; anywhere else (`attach`, `handlers()`, `app`),
   * new requests to Herald's routes are answered 503 with `Retry-After`. Safe to call more than once.
   */
  close(): Promise<void>;
}

/** The store `HERALD_DATABASE` names; it logs when it starts refusing writes, and when it takes them again. */
function storeFrom({ database, logPartitionSize }: ResolvedOptions, logger: Logger): Store {
  if (/^postgres(ql)?:\/\//.test(database)) return postgresStore({ url: database, logger, ...(logPartitionSize !== undefined ? { logPartitionSize } : {}) });
  return sqliteStore({ path: database, logger });
}

/** The broker of `source`; one made of a Redis logs when its connection fails, and when it is back. */
function brokerFrom(source: SeamSource<Broker>, logger: Logger): Broker {
  if (source === 'memory') return memoryBroker();
  if ('made' in source) return source.made;
  return lazyBroker(async () => (await redisPackage(source.name)).redisBroker(redisOptions(source, logger)));
}

/** The rate-limit store of `source`, logging as the broker does; undefined for `memory`, each node counting on its own. */
function rateLimitStoreFrom(source: SeamSource<RateLimitStore>, logger: Logger): RateLimitStore | undefined {
  if (source === 'memory') return undefined;
  if ('made' in source) return source.made;
  return lazyRateLimits(async () => (await redisPackage(source.name)).redisRateLimits(redisOptions(source, logger)));
}

const redisOptions = ({ url, tls }: RedisEndpoint, logger: Logger) => ({ url, ...(tls ? { tls } : {}), logger });

/** `@herald/redis`, an optional peer dependency that only a server using Redis installs; `name`, the option or variable that gave the Redis. */
function redisPackage(name: string): Promise<typeof import('@herald/redis')> {
  return import('@herald/redis').catch((error: unknown) => {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const missing = code === 'ERR_MODULE_NOT_FOUND' && typeof message === 'string' && message.includes("'@herald/redis'");
    throw new Error(
      missing
        ? `${name}: a Redis needs the @herald/redis package, which is not installed (npm install @herald/redis, where @herald/server or @herald/cli is)`
        : `${name}: cannot load @herald/redis, which a Redis needs: ${String(message ?? error)}`,
      { cause: error },
    );
  });
}

/** Prunes the log of a store that can be pruned (the SQL store), by the log's and each type's retention. */
function logPruner(store: Store, catalog: EventCatalog, resolved: ResolvedOptions, logger: Logger): LogPruner | undefined {
  if (!isPrunable(store)) return undefined;
  const log = { retention: resolved.logRetention, ...(resolved.logMaxEvents !== undefined ? { maxEvents: resolved.logMaxEvents } : {}) };
  // Checked now, so that a bad retention fails the start rather than every round.
  catalog.retentionRules(log);
  return new LogPruner({ log: store, rules: () => catalog.retentionRules(log), logger });
}

/**
 * Composes Herald: `createHerald({ store, broker, transports: [webhook(), websocket(), sse()], eventTypes })`.
 * Starts at once in the background; `ready`, `listen()` and `publish()` wait for it.
 */
export function createHerald<const TEventTypes extends readonly EventTypeDefinition[] = []>(
  options: HeraldOptions<TEventTypes> = {},
): Herald<EventMapOf<TEventTypes>> {
  const env = options.env ?? process.env;
  const resolved = resolveOptions(options, env);
  // Each line written as it is logged, not in the background: at exit, pino writes out what a background write left
  // behind, and retried that forever on a stdout whose reader had gone (`herald serve | head -1`): the process never exited.
  const logger: Logger = options.logger ?? pino({ level: resolved.logLevel, name: 'herald' }, pino.destination({ sync: true }));
  const store = options.store ?? storeFrom(resolved, logger.child({ component: 'store' }));
  const broker = brokerFrom(resolved.broker, logger.child({ component: 'broker' }));
  const rateLimitStore = rateLimitStoreFrom(resolved.rateLimitStore, logger.child({ component: 'rate-limits' }));
  const catalog = new EventCatalog(options.eventTypes ?? []);
  const bus = new EventBus({
    store,
    broker,
    catalog,
    logger: logger.child({ component: 'bus' }),
    ...(options.source !== undefined ? { source: options.source } : {}),
  });
  const subscriptions = new SubscriptionRegistry(store, broker);
  const keys = new ApiKeys(store, broker, { logger: logger.child({ component: 'keys' }) });
  const transports = new Map<string, Transport>();
  for (const transport of options.transports ?? []) {
    if (transports.has(transport.name)) throw new Error(`Two transports are named "${transport.name}"`);
    transports.set(transport.name, transport);
  }
  const context: ServerContext = {
    store,
    broker,
    bus,
    catalog,
    subscriptions,
    keys,
    transports,
    logger,
    maxSubscriptions: resolved.maxSubscriptions,
    ...(resolved.portalUrl !== undefined ? { portalUrl: resolved.portalUrl } : {}),
  };
  // A type this node has not heard of yet may have just been registered on another: the store says.
  catalog.reloadOnMiss(() => loadStoredEventTypes(context));
  const authenticate = (credential: string) => keys.authenticate(credential);
  const abort = new AbortController();
  let stopping = false;
  /** The requests of `listen()`'s own server, which it serves until their connections close, stopping or not. */
  const ownRequests = new WeakSet<IncomingMessage>();
  /** The answers under way on Herald's routes reached another way than `listen()`'s server, which close() lets finish before it closes the store. */
  const answering = new Set<ServerResponse>();
  let allAnswered: (() => void) | undefined;
  // Once stopping, a request that reaches Herald by another way than `listen()`'s server (`attach`, `handlers()`, `herald.app`
  // in an app of yours) is refused: that server goes on taking them, and Herald's store closes.
  const admit = (request: IncomingMessage, response?: ServerResponse) => {
    // close() waits for the connections of `listen()`'s own server: nothing to count for them.
    if (ownRequests.has(request)) return;
    if (stopping) throw new UnavailableError('Herald is stopping (or stopped) here; try again shortly, or on another node');
    if (!response || answering.has(response)) return;
    answering.add(response);
    response.once('close', () => {
      answering.delete(response);
      if (answering.size === 0) allAnswered?.();
    });
  };
  const admitted: RequestHandler = (req, res, next) => {
    admit(req, res);
    next();
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  if (resolved.trustProxy !== undefined) app.set('trust proxy', resolved.trustProxy);
  const api = express.Router();
  const transportRouter = express.Router();
  const metrics = new HeraldMetrics(() => bus.latest, () => keys.cachedCredentials());
  const pruner = logPruner(store, catalog, resolved, logger.child({ component: 'retention' }));
  if (pruner && isPrunable(store)) metrics.log(store, pruner);
  bus.onEvents(metrics.published);
  const limiter = new RequestLimiter(resolved.rateLimits, rateLimitStore, logger.child({ component: 'rate-limits' }), metrics.limits);
  const routeOptions: RouteMountOptions = { authenticate, limiter, readBody: jsonBody(resolved.bodyLimit), admit };
  // A credential a transport got from a request of its own (a WebSocket upgrade): its address counts as the REST API's would.
  const authenticateFrom = (credential: string, from?: IncomingMessage) =>
    from ? limiter.credential(proxyaddr(from, app.get('trust proxy fn')), () => authenticate(credential)) : authenticate(credential);
  const mount = new TransportMount(transportRouter, routeOptions, metrics.connection);
  mount.answerFirst(
    app,
    (error) => logger.error({ err: error }, 'unexpected error'),
    (request) => stopping && ownRequests.has(request),
  );
  const openFiles = openFilesLimit();
  const maxConnections = resolved.maxConnections?.value ?? (openFiles === undefined ? undefined : connectionsWithin(openFiles));
  const connections = new PerKeyConnectionLimiter(resolved.maxConnectionsPerKey, maxConnections);

  let started: Transport[] = [];
  let generatedAdminKey: string | undefined;
  const ready = (async () => {
    await store.init();
    await broker.init?.();
    await rateLimitStore?.init?.();
    await loadStoredEventTypes(context);
    await broker.subscribe(eventTypesChannel, () => void loadStoredEventTypes(context));
    broker.onReconnect?.(() => void loadStoredEventTypes(context));
    const shortfall = openFilesShortfall(resolved.maxConnections, openFiles);
    if (shortfall) logger.warn(shortfall);
    generatedAdminKey = await keys.bootstrap(resolved.adminKey);
    if (generatedAdminKey) logger.warn(`Generated an admin key, shown only this once: keep it (or set HERALD_ADMIN_KEY): ${generatedAdminKey}`);
    await keys.start();
    await subscriptions.start();
    await bus.start();
    for (const transport of transports.values()) {
      await transport.start({
        store,
        bus,
        catalog,
        subscriptions,
        logger: logger.child({ transport: transport.name }),
        http: mount.forTransport(transport.name),
        authenticate: authenticateFrom,
        onKeyRevoked: (listener) => keys.onRevoked(listener),
        env,
        signal: abort.signal,
        metrics: metrics.forTransport(transport.name, transport.kind ?? 'stream'),
        connections,
      });
      started = [...started, transport];
    }
    // After the transports: a push transport's outbox holds the events its pending deliveries need.
    pruner?.start();
  })();
  ready.catch((error: unknown) => logger.error({ err: error }, 'Herald failed to start'));
  const generatedAdminKeyOnceReady = ready.then(() => generatedAdminKey);
  // Rejects as `ready` does; an app that handles `ready` need not handle this one too.
  generatedAdminKeyOnceReady.catch(() => {});

  app.use(async (_req, _res, next) => {
    await ready;
    next();
  });
  mountHealthRoutes(app, store, () => stopping);
  const builtInRoutes = [...keyRoutes(context), ...eventTypeRoutes(context), ...eventRoutes(context), ...subscriptionRoutes(context), ...streamTokenRoutes(context), ...portalSessionRoutes(context), ...transportRoutes(context)];
  for (const route of builtInRoutes) mountRoute(api, route, routeOptions);
  const surface = (): ApiSurface => ({
    routes: [...builtInRoutes.map((definition) => ({ definition })), ...mount.routes],
    upgrades: mount.upgrades,
    plainRoutes: operationalRoutes,
    catalog,
    transports,
  });
  // OPTIONS on a served path: its methods, unless a transport answers it itself (a CORS preflight). Read once the
  // transports have added their routes (every request waits for `ready`).
  let optionsAnswers: RequestHandler | undefined;
  app.use((req, res, next) => {
    if (req.method !== 'OPTIONS') return next();
    optionsAnswers ??= answerOptions(surface(), mount.preflights);
    optionsAnswers(req, res, next);
  });
  mountDocsRoutes(app, surface, metrics, admitted);
  app.use(api);
  app.use(transportRouter);
  // What no route takes: 405 for a path served with other methods, else 404; unless an app of yours mounts
  // this one, or a handler hands it on. Read once the transports have added their routes (every request waits for `ready`).
  let mounted = false;
  app.on('mount', () => (mounted = true));
  const passOn = new WeakSet<IncomingMessage>();
  let otherMethods: RequestHandler | undefined;
  app.use((req, res, next) => {
    if (mounted || passOn.has(req)) return next();
    otherMethods ??= refuseOtherMethods(surface());
    otherMethods(req, res, (error?: unknown) => next(error ?? new NotFoundError(`Route ${req.method} ${req.path}`)));
  });
  app.use(problemHandler((error) => logger.error({ err: error }, 'unexpected error')));
  const attachments: Attachment[] = [];
  const handlers = (mountOptions?: MountOptions) => heraldHandlers(app, passOn, (...upgrade) => mount.takeUpgrade(...upgrade), mountOptions);

  let server: Server | undefined;
  let closing: Promise<void> | undefined;
  const removeSignalHandlers: (() => void)[] = [];

  const close = () =>
    (closing ??= (async () => {
      stopping = true;
      // Attached, Herald stays in front of the server, answering its own routes 503, until another takes its place.
      for (const attachment of attachments) attachment.retire();
      abort.abort();
      for (const remove of removeSignalHandlers.splice(0)) remove();
      await ready.catch(() => {});
      const serverClosed = server ? new Promise<void>((resolve) => server?.close(() => resolve())) : Promise.resolve();
      server?.closeIdleConnections();
      for (const transport of [...started].reverse()) {
        await transport.stop().catch((error: unknown) => logger.error({ err: error, transport: transport.name }, 'a transport failed to stop'));
      }
      const answered = answering.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (allAnswered = resolve));
      const timeout = setTimeout(() => {
        server?.closeAllConnections();
        for (const response of answering) response.destroy();
      }, options.shutdownTimeout ?? 10_000);
      await Promise.all([serverClosed, answered]);
      clearTimeout(timeout);
      await pruner?.stop();
      await bus.stop();
      await subscriptions.stop();
      await keys.stop();
      await broker.close();
      await rateLimitStore?.close?.();
      await store.close();
    })());

  return {
    app,
    ready,
    store,
    bus,
    catalog,
    subscriptions,
    logger,
    keys,
    generatedAdminKey: generatedAdminKeyOnceReady,
    async listen(listenOptions = {}) {
      await ready;
      const handler = listenOptions.handler ?? app;
      const httpServer = createServer((request, response) => {
        ownRequests.add(request);
        handler(request, response);
      });
      httpServer.on('clientError', answerClientError);
      const { handleUpgrade } = handlers();
      httpServer.on('upgrade', (request, socket, head) => {
        if (!handleUpgrade(request, socket, head)) refuseUpgrade(socket);
      });
      const port = listenOptions.port ?? resolved.port;
      const host = listenOptions.host ?? options.host;
      await new Promise<void>((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(port, host, () => resolve());
      });
      server = httpServer;
      if (listenOptions.handleSignals ?? true) removeSignalHandlers.push(stopOnSignals(close, logger));
      const address = httpServer.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? (address.address === '::' ? 'localhost' : `[${address.address}]`) : address.address;
      return { server: httpServer, port: address.port, url: `http://${shownHost === '0.0.0.0' ? 'localhost' : shownHost}:${address.port}` };
    },
    async attach(server, attachOptions) {
      if (stopping) throw new Error('This Herald is closed: attach a new one');
      const attachment = attachHandlers(server, handlers(attachOptions));
      attachments.push(attachment);
      try {
        await ready;
      } catch (error) {
        attachment.detach();
        throw error;
      }
    },
    handlers,
    publish: (async <DB>(input: PublishInput, publishOptions?: InTransaction<DB>) => {
      await ready;
      return publishOptions ? bus.publish(input, publishOptions) : bus.publish(input);
    }) as Herald<EventMapOf<TEventTypes>>['publish'],
    publishMany: (async <DB>(inputs: readonly PublishInput[], publishOptions?: InTransaction<DB>) => {
      await ready;
      return publishOptions ? bus.publishMany(inputs, publishOptions) : bus.publishMany(inputs);
    }) as Herald<EventMapOf<TEventTypes>>['publishMany'],
    get database() {
      if (!(store instanceof SqlStore)) throw new Error('herald.database: this Herald’s store is not the SQL store (SQLite or PostgreSQL)');
      return store.database;
    },
    close,
  };
}
