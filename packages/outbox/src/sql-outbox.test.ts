import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresStore, sqliteStore } from '@herald/core';
import { newEvent, runOutboxSuite } from '../../testkit/src/index.js';
import { afterEach, describe, expect, it } from 'vitest';
// By path, as the integration tests do: the one helper that makes PostgreSQL databases for tests.
import { freshDatabase } from '../../core/src/sql/postgres.test-support.js';
import { commitLevelsStore } from '../../core/src/sql/sqlite.test-support.js';
import { sqlOutbox } from './sql-outbox.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

runOutboxSuite('SQLite', {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-suite-'));
    const path = join(dir, 'herald.db');
    return { open: () => sqliteStore({ path }), dispose: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  outbox: sqlOutbox,
});

runOutboxSuite('PostgreSQL', {
  async create() {
    const { url, drop } = await freshDatabase();
    return { open: () => postgresStore({ url }), dispose: drop };
  },
  outbox: sqlOutbox,
});

describe('sqlOutbox', () => {
  it('is one outbox per store, made once however many push transports ask for it', async () => {
    const store = sqliteStore({ path: ':memory:' });
    cleanups.push(() => store.close());
    await store.init();
    const [first, second] = await Promise.all([sqlOutbox(store), sqlOutbox(store)]);
    expect(first).toBe(second);
    expect(await sqlOutbox(store)).toBe(first);
  });

  it('refuses a store that is not the SQL store, saying what to give instead', async () => {
    const store = sqliteStore({ path: ':memory:' });
    cleanups.push(() => store.close());
    // Any other Store: one without the SQL store's extensions.
    const other = new Proxy(store, { get: (target, key) => (key === 'extend' ? undefined : Reflect.get(target, key)) });
    await expect(sqlOutbox(other)).rejects.toThrow(/`outbox` of their own/);
  });
});

describe('the outbox on SQLite with synchronous=FULL', () => {
  it('commits unsynced (NORMAL), and the store is back to FULL after each commit, a failed one too', async () => {
    const { store, level, levels } = await commitLevelsStore(join(tempDir(), 'herald.db'));
    cleanups.push(() => store.close());
    const outbox = await sqlOutbox(store);

    const [appended] = await store.append([newEvent('sync.one')]);
    const now = Date.now();
    const lease = { worker: 'wkr_sync', now, until: now + 60_000 };
    const from = await outbox.position('webhook', 0);
    levels.length = 0;
    await outbox.commit({ lease, fanOut: { name: 'webhook', from, to: appended?.event.seq as number, deliveries: [], subscriptionVersion: await store.subscriptions.version() } });
    await store.append([newEvent('sync.two')]);
    expect(levels).toEqual([1, 2]);
    expect(level()).toBe(2);

    const unbindable = { id: 'dlv_sync', subscriptionId: 'sub_sync', eventSeq: 1, eventId: {} as string, nextAttemptAt: now };
    await expect(outbox.commit({ lease, unhold: [unbindable] })).rejects.toThrow(/bind/);
    expect(level()).toBe(2);
    await store.append([newEvent('sync.three')]);
    expect(levels).toEqual([1, 2, 2]);
    expect(await outbox.position('webhook', 0)).toBe(appended?.event.seq);
  });
});
