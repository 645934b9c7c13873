import {
  type Broker,
  EventBus,
  EventCatalog,
  type EventTypeDefinition,
  type HttpMount,
  type Logger,
  memoryBroker,
  memoryStore,
  type PlainHandler,
  type RouteDefinition,
  type Store,
  SubscriptionRegistry,
  silentLogger,
  type TransportContext,
  type UpgradeHandler,
} from '@herald/core';
import { ApiKeys, PerKeyConnectionLimiter } from '@herald/server';
import { testEventTypes } from './test-app.js';

/** Options of {@link createTransportContext}. */
export interface TransportContextOptions {
  /** The store, initialised by the factory (`init` may run twice on it) and closed with the context. @default memoryStore() */
  store?: Store;
  /** Closed with the context. @default memoryBroker() */
  broker?: Broker;
  /** The catalog's event types. @default testEventTypes */
  eventTypes?: readonly EventTypeDefinition[];
  /** @default {} */
  env?: Readonly<Record<string, string | undefined>>;
  /** @default silentLogger */
  logger?: Logger;
  /** Long-lived connections per credential, across the transports given this context. @default 100 */
  maxConnectionsPerKey?: number;
}

/** One delivery a transport reported through `metrics.delivered`. */
export interface ReportedDelivery {
  outcome: string;
  latencyMs: number;
}

/**
 * A real {@link TransportContext} without a server, for a transport's unit tests: what the transport
 * mounts and reports is recorded rather than served, keys are issued by `keys`, and `close()` stops it all.
 */
export interface TestTransportContext extends TransportContext {
  /** Issues API keys and stream tokens that `authenticate` takes, and revokes them (which `onKeyRevoked` hears). */
  keys: ApiKeys;
  /** The routes the transport mounted through `http`, in order. */
  readonly routes: readonly RouteDefinition[];
  /** The upgrade handlers it mounted, by path. */
  readonly upgrades: ReadonlyMap<string, UpgradeHandler>;
  /** The preflight handlers it mounted, by path. */
  readonly preflights: ReadonlyMap<string, PlainHandler>;
  /** Every delivery it reported, in order. */
  readonly delivered: readonly ReportedDelivery[];
  /** Reads the backlogs it reported, as a metrics scrape does. */
  backlogs(): Promise<number[]>;
  /** Aborts `signal`, then stops the bus, the registry and the keys, and closes the broker and the store. */
  close(): Promise<void>;
}

/**
 * A started {@link TestTransportContext}: the store (a memory store unless given), a memory broker, the
 * catalog of `testEventTypes`, the event bus, the subscription registry and API keys, as `createHerald`
 * gives them to a transport. `await transport.start(context)`, then publish with `context.bus.publish`.
 */
export async function createTransportContext(options: TransportContextOptions = {}): Promise<TestTransportContext> {
  const store = options.store ?? memoryStore();
  const broker = options.broker ?? memoryBroker();
  const logger = options.logger ?? silentLogger;
  await store.init();
  await broker.init?.();
  const catalog = new EventCatalog(options.eventTypes ?? testEventTypes);
  const bus = new EventBus({ store, broker, catalog, logger });
  const subscriptions = new SubscriptionRegistry(store, broker);
  const keys = new ApiKeys(store, broker);
  await keys.start();
  await subscriptions.start();
  await bus.start();

  const routes: RouteDefinition[] = [];
  const upgrades = new Map<string, UpgradeHandler>();
  const preflights = new Map<string, PlainHandler>();
  const http: HttpMount = {
    route: (definition) => void routes.push(definition as RouteDefinition),
    upgrade: (path, handler) => void upgrades.set(path, handler),
    preflight: (path, handler) => void preflights.set(path, handler),
  };
  const delivered: ReportedDelivery[] = [];
  const backlogReaders: (() => number | Promise<number>)[] = [];
  const abort = new AbortController();
  return {
    store,
    bus,
    catalog,
    subscriptions,
    logger,
    http,
    authenticate: (credential) => keys.authenticate(credential),
    onKeyRevoked: (listener) => keys.onRevoked(listener),
    env: options.env ?? {},
    signal: abort.signal,
    metrics: {
      delivered: (outcome, latencyMs) => void delivered.push({ outcome, latencyMs }),
      backlog: (read) => void backlogReaders.push(read),
    },
    connections: new PerKeyConnectionLimiter(options.maxConnectionsPerKey ?? 100),
    keys,
    routes,
    upgrades,
    preflights,
    delivered,
    backlogs: () => Promise.all(backlogReaders.map((read) => read())),
    async close() {
      abort.abort();
      await bus.stop();
      await subscriptions.stop();
      keys.stop();
      await broker.close();
      await store.close();
    },
  };
}
