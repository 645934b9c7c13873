import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { Broker } from './broker.js';
import { memoryBroker } from './memory-broker.js';
import type { SqlStore } from './sql/sql-store.js';
import { sqliteStore } from './sql/sqlite-store.js';
import type { Subscription } from './subscription.js';
import { SubscriptionRegistry } from './subscription-registry.js';
import { tempDatabase } from './temp-folder.test-support.js';

async function openStore(): Promise<SqlStore> {
  const store = sqliteStore({ path: ':memory:' });
  await store.init();
  onTestFinished(() => store.close());
  return store;
}

async function registry(store: SqlStore, broker: Broker = memoryBroker()): Promise<SubscriptionRegistry> {
  const r = new SubscriptionRegistry(store, broker);
  await r.start();
  onTestFinished(() => r.stop());
  return r;
}

const ids = (subscriptions: readonly Subscription[]) => subscriptions.map((s) => s.id).sort();
const input = (id: string, types: string[], extra: Partial<Subscription> = {}) => ({
  id,
  consumer: 'acme',
  transport: 'webhook',
  types,
  status: 'active' as const,
  config: {},
  cursor: 0,
  ...extra,
});

/** Lets rings already published through a memory broker, and the reloads they start, finish. */
const linger = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('SubscriptionRegistry', () => {
  it("stores a subscription's filter and matches by it; candidates ignore it; null removes it", async () => {
    const store = await openStore();
    const subs = await registry(store);
    await subs.create(input('sub_big', ['order.*'], { filter: { 'data.total': { $gte: 100 } } }));
    await subs.create(input('sub_all', ['order.*']));
    expect((await store.subscriptions.get('sub_big'))?.filter).toEqual({ 'data.total': { $gte: 100 } });
    const small = { type: 'order.created', data: { total: 99 } };
    const big = { type: 'order.created', data: { total: 100 } };
    expect(ids(subs.match(small, 'webhook'))).toEqual(['sub_all']);
    expect(ids(subs.match(big, 'webhook'))).toEqual(['sub_all', 'sub_big']);
    expect(ids(subs.candidates(small, 'webhook'))).toEqual(['sub_all', 'sub_big']);

    await subs.update('sub_big', { filter: { 'data.total': { $lt: 100 } } });
    expect(ids(subs.match(small, 'webhook'))).toEqual(['sub_all', 'sub_big']);
    const cleared = await subs.update('sub_big', { filter: null });
    expect(cleared).not.toHaveProperty('filter');
    expect(await store.subscriptions.get('sub_big')).not.toHaveProperty('filter');
    expect(ids(subs.match(big, 'webhook'))).toEqual(['sub_all', 'sub_big']);
  });

  it('create, update and delete keep match(event, transport) right', async () => {
    const store = await openStore();
    const subs = await registry(store);
    const created = await subs.create(input('sub_orders', ['order.*']));
    expect(created).toMatchObject({ id: 'sub_orders', types: ['order.*'], createdAt: expect.any(String) });
    await subs.create(input('sub_all', ['**']));
    await subs.create(input('sub_ws', ['order.*'], { transport: 'websocket' }));

    expect(ids(subs.match({ type: 'order.created' }, 'webhook'))).toEqual(['sub_all', 'sub_orders']);
    expect(ids(subs.match({ type: 'order.created' }, 'websocket'))).toEqual(['sub_ws']);
    expect(subs.match({ type: 'order.created' }, 'sse')).toEqual([]);
    expect(ids(subs.match({ type: 'invoice.paid' }, 'webhook'))).toEqual(['sub_all']);

    const updated = await subs.update('sub_orders', { types: ['invoice.*'] });
    expect(updated?.types).toEqual(['invoice.*']);
    expect(ids(subs.match({ type: 'order.created' }, 'webhook'))).toEqual(['sub_all']);
    expect(ids(subs.match({ type: 'invoice.paid' }, 'webhook'))).toEqual(['sub_all', 'sub_orders']);
    // The matched object is the current one.
    expect(subs.match({ type: 'invoice.paid' }, 'webhook').find((s) => s.id === 'sub_orders')?.types).toEqual(['invoice.*']);

    expect(await subs.delete('sub_all')).toBe(true);
    expect(await subs.delete('sub_all')).toBe(false);
    expect(ids(subs.match({ type: 'invoice.paid' }, 'webhook'))).toEqual(['sub_orders']);
    expect(subs.match({ type: 'order.created' }, 'webhook')).toEqual([]);

    expect(await subs.update('sub_missing', { types: ['x'] })).toBeUndefined();
    expect(ids(await subs.list())).toEqual(['sub_orders', 'sub_ws']);
    expect(await subs.get('sub_orders')).toEqual(updated);
    // The store agrees with the index.
    expect(await store.subscriptions.get('sub_all')).toBeUndefined();
  });

  it('generates an id when none is given', async () => {
    const subs = await registry(await openStore());
    const { id: _id, ...rest } = input('unused', ['a.b']);
    const created = await subs.create(rest);
    expect(created.id).toMatch(/^sub_[0-9a-z]{26}$/);
    expect(subs.match({ type: 'a.b' }, 'webhook')).toEqual([created]);
  });

  it('paused, disabled and pending subscriptions never match; active again matches', async () => {
    const subs = await registry(await openStore());
    await subs.create(input('sub_s', ['order.created']));
    await subs.create(input('sub_pending', ['order.created'], { status: 'pending' }));
    expect(ids(subs.match({ type: 'order.created' }, 'webhook'))).toEqual(['sub_s']);
    for (const status of ['paused', 'disabled', 'pending'] as const) {
      await subs.update('sub_s', { status });
      expect(subs.match({ type: 'order.created' }, 'webhook')).toEqual([]);
      expect(subs.match({ type: 'order.created', consumer: 'acme' }, 'webhook')).toEqual([]);
      await subs.update('sub_s', { status: 'active' });
      expect(ids(subs.match({ type: 'order.created' }, 'webhook'))).toEqual(['sub_s']);
    }
  });

  it('an event addressed to a consumer matches only that consumer’s subscriptions', async () => {
    const subs = await registry(await openStore());
    await subs.create(input('sub_acme', ['order.*'], { consumer: 'acme' }));
    await subs.create(input('sub_acme2', ['**'], { consumer: 'acme' }));
    await subs.create(input('sub_globex', ['order.*'], { consumer: 'globex' }));
    expect(ids(subs.match({ type: 'order.created' }, 'webhook'))).toEqual(['sub_acme', 'sub_acme2', 'sub_globex']);
    expect(ids(subs.match({ type: 'order.created', consumer: 'acme' }, 'webhook'))).toEqual(['sub_acme', 'sub_acme2']);
    expect(ids(subs.match({ type: 'order.created', consumer: 'globex' }, 'webhook'))).toEqual(['sub_globex']);
    expect(subs.match({ type: 'order.created', consumer: 'initech' }, 'webhook')).toEqual([]);
  });

  it('start() indexes the subscriptions already in the store', async () => {
    const store = await openStore();
    await store.subscriptions.create(input('sub_old', ['order.*']));
    await store.subscriptions.create(input('sub_old_paused', ['order.*'], { status: 'paused' }));
    const subs = await registry(store);
    expect(ids(subs.match({ type: 'order.paid' }, 'webhook'))).toEqual(['sub_old']);
  });

  it('an update with fields present but undefined keeps the subscription matching', async () => {
    const subs = await registry(await openStore());
    await subs.create(input('sub_u', ['order.*']));
    await subs.update('sub_u', { types: undefined, config: undefined });
    expect(ids(subs.match({ type: 'order.paid' }, 'webhook'))).toEqual(['sub_u']);
  });
});

describe('two SubscriptionRegistry instances sharing one store and one memory broker', () => {
  it('see each other’s creates, updates and deletes', async () => {
    const store = await openStore();
    const broker = memoryBroker();
    const a = await registry(store, broker);
    const b = await registry(store, broker);

    await a.create(input('sub_1', ['order.*']));
    await vi.waitFor(() => expect(ids(b.match({ type: 'order.created' }, 'webhook'))).toEqual(['sub_1']));

    await a.update('sub_1', { types: ['invoice.paid'] });
    await vi.waitFor(() => expect(b.match({ type: 'order.created' }, 'webhook')).toEqual([]));
    expect(ids(b.match({ type: 'invoice.paid' }, 'webhook'))).toEqual(['sub_1']);

    await b.create(input('sub_2', ['invoice.*'], { consumer: 'globex' }));
    await vi.waitFor(() => expect(ids(a.match({ type: 'invoice.paid' }, 'webhook'))).toEqual(['sub_1', 'sub_2']));

    await b.update('sub_1', { status: 'paused' });
    await vi.waitFor(() => expect(ids(a.match({ type: 'invoice.paid' }, 'webhook'))).toEqual(['sub_2']));

    await a.delete('sub_2');
    await vi.waitFor(() => expect(b.match({ type: 'invoice.paid' }, 'webhook')).toEqual([]));

    await b.update('sub_1', { status: 'active' });
    await vi.waitFor(() => expect(ids(a.match({ type: 'invoice.paid', consumer: 'acme' }, 'webhook'))).toEqual(['sub_1']));
    expect(a.match({ type: 'invoice.paid', consumer: 'globex' }, 'webhook')).toEqual([]);
  });

  it('tells each its listeners of a deletion, made on it or on the other; a store that fails a ring’s read deletes nothing', async () => {
    const path = tempDatabase();
    const store = sqliteStore({ path });
    await store.init();
    onTestFinished(() => store.close());
    const broker = memoryBroker();
    const a = await registry(store, broker);
    const b = await registry(store, broker);
    const heard = { a: new Set<string>(), b: new Set<string>() };
    a.onRemoved((id) => heard.a.add(id));
    const stop = b.onRemoved((id) => heard.b.add(id));
    await a.create(input('sub_1', ['order.*']));
    await a.create(input('sub_2', ['order.*']));
    await a.update('sub_1', { status: 'paused' });
    await linger();
    expect(heard).toEqual({ a: new Set(), b: new Set() });

    await a.delete('sub_1');
    expect(heard.a).toEqual(new Set(['sub_1']));
    await vi.waitFor(() => expect(heard.b).toEqual(new Set(['sub_1'])));

    // A node whose store fails the read a ring starts (here: its connection closed) keeps the subscription as it was.
    const elsewhere = sqliteStore({ path });
    const c = await registry(elsewhere, broker);
    const heardOnC: string[] = [];
    c.onRemoved((id) => heardOnC.push(id));
    await elsewhere.close();
    await broker.publish('herald:subscriptions', 'sub_2');
    await linger();
    expect(heardOnC).toEqual([]);
    expect(ids(c.match({ type: 'order.created' }, 'webhook'))).toEqual(['sub_2']);

    stop();
    await b.delete('sub_2');
    await linger();
    expect(heard).toEqual({ a: new Set(['sub_1', 'sub_2']), b: new Set(['sub_1']) });
  });

  it('a cursor update rings nobody; every other change rings once', async () => {
    const store = await openStore();
    const broker = memoryBroker();
    const a = await registry(store, broker);
    const rung: string[] = [];
    await broker.subscribe('herald:subscriptions', (id) => rung.push(id));
    await a.create(input('sub_cursor', ['order.*']));
    await a.update('sub_cursor', { cursor: 41 });
    await a.update('sub_cursor', { cursor: 42 });
    await a.update('sub_cursor', { types: ['order.**'] });
    await linger();
    expect(rung).toEqual(['sub_cursor', 'sub_cursor']);
    expect((await store.subscriptions.get('sub_cursor'))?.cursor).toBe(42);
  });

  it('a stopped registry no longer hears the other’s changes; a fresh one loads them from the store', async () => {
    const store = await openStore();
    const broker = memoryBroker();
    const a = await registry(store, broker);
    const b = await registry(store, broker);
    await b.stop();
    await a.create(input('sub_late', ['order.*']));
    await linger();
    expect(b.match({ type: 'order.paid' }, 'webhook')).toEqual([]);
    const c = await registry(store, broker);
    expect(ids(c.match({ type: 'order.paid' }, 'webhook'))).toEqual(['sub_late']);
  });
});
