import type { Store } from '@herald/core';

/** What is stored: the log's bounds, every subscription, every key and every event type. A refused request leaves it as it was. */
export async function storeSnapshot(store: Store) {
  return {
    log: await store.bounds(),
    subscriptions: await store.subscriptions.list(),
    keys: await store.keys.list(),
    eventTypes: await store.eventTypes.list(),
  };
}
