import type { Store } from '@herald/core';

/**
 * What is stored: the log's bounds, every subscription, every key and every event type. A refused request leaves it as it was,
 * but for when its key was last used (`lastUsedAt`): the key authenticated it, refused or not.
 */
export async function storeSnapshot(store: Store) {
  return {
    log: await store.bounds(),
    subscriptions: await store.subscriptions.list(),
    keys: (await store.keys.list()).map(({ lastUsedAt: _lastUsedAt, ...key }) => key),
    eventTypes: await store.eventTypes.list(),
  };
}
