import type { Broker, EventBus, EventCatalog, Logger, Store, SubscriptionRegistry, Transport } from '@herald/core';
import type { ApiKeys } from './api-keys.js';

/** What the built-in routes work with. */
export interface ServerContext {
  store: Store;
  broker: Broker;
  bus: EventBus;
  catalog: EventCatalog;
  subscriptions: SubscriptionRegistry;
  keys: ApiKeys;
  transports: ReadonlyMap<string, Transport>;
  logger: Logger;
  /** Durable subscriptions one consumer may hold. */
  maxSubscriptions: number;
  /** Where consumers open the portal, when it is not `/portal` next to the API. */
  portalUrl?: string;
}
