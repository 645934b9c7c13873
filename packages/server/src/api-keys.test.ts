import { memoryBroker, type SqlStore, sqliteStore } from '@herald/core';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { holdSqliteLock } from '../../core/src/sql/sqlite.test-support.js';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { recordingLogger } from '../../testkit/src/recording-logger.js';
import { waitFor } from '../../testkit/src/wait-for.js';
import { ApiKeys, type ApiKeysOptions } from './api-keys.js';

async function sqlite(path = tempDatabase(), lockTimeout?: number): Promise<SqlStore> {
  const store = sqliteStore({ path, ...(lockTimeout !== undefined ? { lockTimeout } : {}) });
  onTestFinished(() => store.close());
  await store.init();
  return store;
}

/** A node's keys on `store`, on a clock the test moves (`clock.at`, in ms). */
async function node(store: SqlStore, clock: { at: number }, options: ApiKeysOptions = {}): Promise<ApiKeys> {
  const keys = new ApiKeys(store, memoryBroker(), { now: () => clock.at, ...options });
  await keys.start();
  onTestFinished(() => keys.stop());
  return keys;
}

const at = (ms: number) => new Date(ms).toISOString();
const start = Date.parse('2026-03-01T12:00:00.000Z');

describe("an API key's last use", () => {
  it('is written at its first use, then at most once a minute, on each node, and not while another node wrote it lately', async () => {
    const store = await sqlite();
    const written = vi.spyOn(store.keys, 'markUsed');
    const clock = { at: start };
    const [first, second] = [await node(store, clock), await node(store, clock)];
    const { record, key } = await first.create('consumer', 'acme');
    expect(record).not.toHaveProperty('lastUsedAt');
    const lastUsedAt = async () => (await store.keys.get(record.id))?.lastUsedAt;

    await first.authenticate(key);
    expect(written).toHaveBeenCalledTimes(1);
    await waitFor(async () => (await lastUsedAt()) === at(start), 'the first use to be written');

    // Within the minute: neither this node, nor another that reads the use the first wrote, writes again.
    for (const later of [1, 30_000, 59_999]) {
      clock.at = start + later;
      await first.authenticate(key);
      await second.authenticate(key);
    }
    expect(written).toHaveBeenCalledTimes(1);
    expect(await lastUsedAt()).toBe(at(start));

    // A minute on, the next use is written; the other node, once it has read that use (its cache holds a key 5 s), does not write it again.
    clock.at = start + 60_000;
    await second.authenticate(key);
    expect(written).toHaveBeenCalledTimes(2);
    await waitFor(async () => (await lastUsedAt()) === at(start + 60_000), 'the use a minute on to be written');
    clock.at = start + 70_000;
    await first.authenticate(key);
    expect(written).toHaveBeenCalledTimes(2);

  });

  it("is an API key's only: a stream token's use writes nothing, and only the key that issued it was used", async () => {
    const store = await sqlite();
    const written = vi.spyOn(store.keys, 'markUsed');
    const clock = { at: start };
    const keys = await node(store, clock);
    const { key } = await keys.create('consumer', 'acme');
    const issuer = await keys.authenticate(key);
    const { key: token } = await keys.createStreamToken(issuer, {});
    clock.at = start + 120_000;
    await keys.authenticate(token);
    expect(written.mock.calls).toEqual([[issuer.keyId, at(start)]]);
  });

  it('that cannot be written is a warning: the request goes on without waiting for the write, and stopping waits for it', async () => {
    const path = tempDatabase();
    const store = await sqlite(path, 300);
    const logger = recordingLogger();
    const clock = { at: start };
    const keys = await node(store, clock, { logger });
    const { record, key } = await keys.create('consumer', 'acme');
    const holder = await holdSqliteLock(path);
    onTestFinished(() => holder.kill());

    // The write waits for the lock (300 ms, on timers), and the request has its answer before that.
    expect(await keys.authenticate(key)).toMatchObject({ keyId: record.id, consumer: 'acme' });
    expect(logger.entries.filter((entry) => entry.level === 'warn')).toEqual([]);
    // Stopping waits for the writes under way (this one, until it gives up on the lock), so that the store can close after it.
    await keys.stop();
    expect(logger.entries).toEqual([
      {
        level: 'warn',
        fields: { err: expect.objectContaining({ code: 'store-locked' }), keyId: record.id },
        message: 'could not record when the key was last used; the request went on',
      },
    ]);
    await holder.release();

    // The failed write held the next one back for the interval, as a written one would have.
    clock.at = start + 60_000;
    await keys.authenticate(key);
    await waitFor(async () => (await store.keys.get(record.id))?.lastUsedAt === at(start + 60_000), 'the next use to be written');
  });
});

describe('who made a key', () => {
  it('is the admin key a request named, and nobody for a key made by code, such as a generated admin key', async () => {
    const store = await sqlite();
    const keys = await node(store, { at: start });
    const generated = await keys.bootstrap(undefined);
    const [bootstrapped] = await store.keys.list();
    expect(generated).toMatch(/^hk_/);
    expect(bootstrapped).not.toHaveProperty('createdBy');
    expect(bootstrapped).not.toHaveProperty('name');

    const { record } = await keys.create('consumer', 'acme', { name: 'billing', createdBy: bootstrapped?.id as string });
    expect(await store.keys.get(record.id)).toEqual({ ...record, name: 'billing', createdBy: bootstrapped?.id });
  });
});
