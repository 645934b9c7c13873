import { describe, expect, it } from 'vitest';
// By path rather than by package name: @herald/testkit depends on @herald/core, so a dependency back would be a cycle.
import { newEvent, runStoreSuite } from '../../testkit/src/store-suite.js';
import type { PublishResult } from './envelope.js';
import { MemoryStoreData, memoryStore } from './memory-store.js';

runStoreSuite('memory', {
  async create() {
    const data = new MemoryStoreData();
    return { open: () => memoryStore({ data }), dispose: async () => {} };
  },
});

describe('memoryStore', () => {
  it('keeps copies: changing what it was given or what it answered changes nothing stored', async () => {
    const store = memoryStore();
    await store.init();
    const input = newEvent('order.created', { data: { lines: [1, 2] } });
    const [result] = (await store.append([input])) as [PublishResult];
    (input.data as { lines: number[] }).lines.push(3);
    (result.event.data as { lines: number[] }).lines.push(4);
    const [read] = await store.read({ after: 0, limit: 1 });
    expect(read?.data).toEqual({ lines: [1, 2] });
  });

  it('stores nothing of a call with an event it cannot keep as JSON', async () => {
    const store = memoryStore();
    await store.init();
    await expect(store.append([newEvent('order.created'), newEvent('order.created', { data: { n: 1n } })])).rejects.toThrow(/BigInt/);
    expect(await store.bounds()).toEqual({ oldest: null, latest: 0 });
  });

  it('refuses everything once closed', async () => {
    const store = memoryStore();
    await store.init();
    await store.close();
    await expect(store.append([newEvent('order.created')])).rejects.toThrow('The memory store is closed');
    await expect(store.ping()).rejects.toThrow('The memory store is closed');
  });
});
