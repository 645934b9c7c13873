import type { Store } from '@herald/core';

/** A fresh, empty database that can be opened, closed and opened again. */
export interface StoreUnderTest {
  /** A new Store on this database (not yet initialised). */
  open(): Store;
  /** Drops the database. */
  dispose(): Promise<void>;
}

export interface StoreHarness {
  /** Makes a new empty database. */
  create(): Promise<StoreUnderTest>;
}

/** Runs `check` on a new store on a fresh database; closes the store `check` returns and drops the database. */
export async function withStore(harness: StoreHarness, check: (store: Store, database: StoreUnderTest) => Promise<Store>): Promise<void> {
  const database = await harness.create();
  let store = database.open();
  try {
    await store.init();
    store = await check(store, database);
  } finally {
    await store.close().catch(() => {});
    await database.dispose();
  }
}
