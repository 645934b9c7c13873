import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { z } from 'zod';
import type { Broker } from './broker.js';
import type { HeraldEvent } from './envelope.js';
import { UnknownEventTypeError, ValidationError } from './errors.js';
import { EventBus } from './event-bus.js';
import { defineEventType, EventCatalog } from './event-type-catalog.js';
import { memoryBroker } from './memory-broker.js';
import type { SqlStore } from './sql/sql-store.js';
import { sqliteStore } from './sql/sqlite-store.js';
import { tempDatabase } from './temp-folder.test-support.js';

const catalog = () =>
  new EventCatalog([
    defineEventType('order.created', z.object({ orderId: z.string(), total: z.number().default(0) })),
    defineEventType('order.paid', z.object({ orderId: z.string() })),
    defineEventType('load.tick', z.object({ publisher: z.number().int(), n: z.number().int() })),
  ]);

interface Node {
  store: SqlStore;
  bus: EventBus;
  /** Every event the bus handed to its listener, flattened, in the order received. */
  received: HeraldEvent[];
  /** How many times the listener was called. */
  calls: () => number;
}

async function node(options: { path?: string; broker?: Broker; pollInterval?: number } = {}): Promise<Node> {
  const store = sqliteStore({ path: options.path ?? ':memory:' });
  await store.init();
  const broker = options.broker ?? memoryBroker();
  const bus = new EventBus({ store, broker, catalog: catalog(), pollInterval: options.pollInterval ?? 60_000, source: '/test' });
  await bus.start();
  let stopped = false;
  const stop = bus.stop.bind(bus);
  bus.stop = async () => {
    stopped = true;
    await stop();
  };
  onTestFinished(async () => {
    if (!stopped) await bus.stop();
    await store.close();
  });
  const received: HeraldEvent[] = [];
  let calls = 0;
  bus.onEvents((events) => {
    calls += 1;
    received.push(...events);
  });
  return { store, bus, received, calls: () => calls };
}

/** Asserts seqs strictly increase and nothing repeats. */
function expectStrictlyIncreasing(events: readonly HeraldEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    if (!((events[i]?.seq as number) > (events[i - 1]?.seq as number))) {
      expect.fail(`seq ${events[i]?.seq} at ${i} follows ${events[i - 1]?.seq}`);
    }
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return expect.fail('expected a rejection');
}

describe('EventBus.publish', () => {
  it('refuses an unknown type, bad data and a bad envelope, and stores nothing', async () => {
    const { bus, store, received } = await node();
    const unknown = await rejection(bus.publish({ type: 'order.deleted', data: {} }));
    expect(unknown).toBeInstanceOf(UnknownEventTypeError);

    const bad = await rejection(bus.publish({ type: 'order.created', data: { orderId: 42 } }));
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).issues.map((issue) => issue.path)).toEqual([['data', 'orderId']]);

    for (const input of [
      { type: 'order.paid', data: { orderId: 'o' }, id: 'has space' },
      { type: 'order.paid', data: { orderId: 'o' }, id: '' },
      { type: 'order.paid', data: { orderId: 'o' }, consumer: 'not a consumer!' },
      { type: 'order.paid', data: { orderId: 'o' }, subject: '' },
      { type: 'order.paid', data: { orderId: 'o' }, seq: 5 },
    ]) {
      expect(await rejection(bus.publish(input as never))).toBeInstanceOf(ValidationError);
    }

    // One bad event in a batch: nothing of the batch is stored.
    const many = await rejection(
      bus.publishMany([
        { type: 'order.paid', data: { orderId: 'fine' } },
        { type: 'order.paid', data: {} },
      ]),
    );
    expect(many).toBeInstanceOf(ValidationError);

    expect(await store.bounds()).toEqual({ oldest: null, latest: 0 });
    expect(await store.read({ after: 0, limit: 10 })).toEqual([]);
    expect(received).toEqual([]);
  });

  it('returns the stored event and created: true', async () => {
    const { bus, store } = await node();
    const before = Date.now();
    const { event, created } = await bus.publish({ type: 'order.created', data: { orderId: 'o1' }, subject: 'orders/o1', consumer: 'acme' });
    expect(created).toBe(true);
    expect(event).toEqual({
      specversion: '1.0',
      id: expect.stringMatching(/^evt_[0-9a-z]{26}$/),
      seq: 1,
      type: 'order.created',
      source: '/test',
      subject: 'orders/o1',
      time: expect.any(String),
      datacontenttype: 'application/json',
      data: { orderId: 'o1', total: 0 },
      consumer: 'acme',
    });
    expect(Date.parse(event.time)).toBeGreaterThanOrEqual(before - 1);
    expect(await store.read({ after: 0, limit: 10 })).toEqual([event]);

    const [x, y] = await bus.publishMany([
      { type: 'order.paid', data: { orderId: 'o1' } },
      { type: 'order.paid', data: { orderId: 'o2' } },
    ]);
    expect(x?.event.seq).toBe(2);
    expect(y?.event.seq).toBe(3);
    expect(x?.event.id).not.toBe(y?.event.id);
  });

  it('publishing the same id again returns the first result with created: false, and listeners see it once', async () => {
    const { bus, store, received } = await node();
    const first = await bus.publish({ type: 'order.created', data: { orderId: 'o1', total: 5 }, id: 'order-o1-created' });
    await bus.publish({ type: 'order.paid', data: { orderId: 'o1' } });
    const again = await bus.publish({ type: 'order.created', data: { orderId: 'o1', total: 999 }, id: 'order-o1-created' });
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.event).toEqual(first.event);
    expect(again.event.data).toEqual({ orderId: 'o1', total: 5 });
    expect((await store.read({ after: 0, limit: 10 })).map((e) => e.id)).toEqual(['order-o1-created', expect.any(String)]);
    await vi.waitFor(() => expect(received).toHaveLength(2));
    await bus.stop();
    expect(received.map((e) => e.seq)).toEqual([1, 2]);
  });
});

describe('EventBus listeners', () => {
  it('start from the end of the log: earlier events are not replayed', async () => {
    const path = tempDatabase();
    const first = await node({ path });
    await first.bus.publish({ type: 'order.paid', data: { orderId: 'old' } });
    await first.bus.stop();
    const second = await node({ path, pollInterval: 10 });
    expect(second.bus.latest).toBe(1);
    const { event } = await second.bus.publish({ type: 'order.paid', data: { orderId: 'new' } });
    await vi.waitFor(() => expect(second.received).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(second.received).toEqual([event]);
  });

  it('get every event once, in seq order, under 50 concurrent publishers', async () => {
    const { bus, store, received } = await node({ path: tempDatabase() });
    const other: HeraldEvent[] = [];
    bus.onEvents((events) => other.push(...events));
    const perPublisher = 20;
    const published = await Promise.all(
      Array.from({ length: 50 }, async (_, publisher) => {
        const mine: HeraldEvent[] = [];
        for (let n = 0; n < perPublisher; n++) {
          const input = { type: 'load.tick', data: { publisher, n } };
          // Mix single publishes and small batches.
          if (n % 5 === 4) {
            const results = await bus.publishMany([input, { ...input, data: { publisher, n: n + 1000 } }]);
            mine.push(...results.map((r) => r.event));
          } else mine.push((await bus.publish(input)).event);
        }
        return mine;
      }),
    );
    const total = published.flat().length;
    expect(total).toBe(50 * (perPublisher + perPublisher / 5));
    await vi.waitFor(() => expect(received.length).toBeGreaterThanOrEqual(total), { timeout: 5000 });
    await bus.stop();

    const log = await store.read({ after: 0, limit: 10_000 });
    expect(log).toHaveLength(total);
    expect(received).toEqual(log);
    expect(other).toEqual(log);
    expectStrictlyIncreasing(received);
    // Each publisher's own events are in the order it published them.
    const publisherOf = (e: HeraldEvent) => (e.data as { publisher: number }).publisher;
    published.forEach((mine, publisher) => {
      expectStrictlyIncreasing(mine);
      expect(received.filter((e) => publisherOf(e) === publisher)).toEqual(mine);
    });
  });

  it('a listener that throws does not stop the others, and an unsubscribed listener hears nothing more', async () => {
    const { bus, received } = await node();
    bus.onEvents(() => {
      throw new Error('listener failure');
    });
    const late: HeraldEvent[] = [];
    const off = bus.onEvents((events) => late.push(...events));
    await bus.publish({ type: 'order.paid', data: { orderId: 'a' } });
    await vi.waitFor(() => expect(late).toHaveLength(1));
    off();
    await bus.publish({ type: 'order.paid', data: { orderId: 'b' } });
    await vi.waitFor(() => expect(received).toHaveLength(2));
    await bus.stop();
    expect(late).toHaveLength(1);
    expect(received.map((e) => (e.data as { orderId: string }).orderId)).toEqual(['a', 'b']);
  });
});

describe('two EventBus nodes on one SQLite file', () => {
  async function publishSome(bus: EventBus, count: number): Promise<HeraldEvent[]> {
    const events: HeraldEvent[] = [];
    for (let i = 0; i < count; i++) events.push((await bus.publish({ type: 'order.created', data: { orderId: `o${i}` } })).event);
    return events;
  }

  it('with separate brokers (no shared ring), the second catches up by polling the log', async () => {
    const path = tempDatabase();
    const a = await node({ path, broker: memoryBroker(), pollInterval: 20 });
    const b = await node({ path, broker: memoryBroker(), pollInterval: 20 });
    const events = await publishSome(a.bus, 30);
    await vi.waitFor(() => expect(b.received).toHaveLength(30), { timeout: 5000 });
    expect(b.received).toEqual(events);
    expect(b.bus.latest).toBe(events.at(-1)?.seq);
    // Both directions.
    const back = await publishSome(b.bus, 3);
    await vi.waitFor(() => expect(a.received).toHaveLength(33), { timeout: 5000 });
    expect(a.received).toEqual([...events, ...back]);
  });

  it('with a shared broker, the ring delivers at once: no polling needed', async () => {
    const path = tempDatabase();
    const broker = memoryBroker();
    // Polling every minute: only the broker's ring can bring the events within the wait below.
    const a = await node({ path, broker, pollInterval: 60_000 });
    const b = await node({ path, broker, pollInterval: 60_000 });
    const events = await publishSome(a.bus, 30);
    await vi.waitFor(() => expect(b.received).toHaveLength(30), { timeout: 2000, interval: 5 });
    expect(b.received).toEqual(events);
    expectStrictlyIncreasing(b.received);
  });

  it('with separate brokers and no polling, nothing arrives: the polling above is what delivered', async () => {
    const path = tempDatabase();
    const a = await node({ path, broker: memoryBroker() });
    const b = await node({ path, broker: memoryBroker(), pollInterval: 60_000 });
    await publishSome(a.bus, 5);
    await vi.waitFor(() => expect(a.received).toHaveLength(5));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(b.received).toEqual([]);
  });
});

/**
 * A broker that drops every ring, which the Broker contract allows ("a broker may drop messages"), like a
 * Redis connection that is down. The bus must not depend on hearing its own rings.
 */
function droppingBroker(): Broker {
  return {
    async publish() {},
    async subscribe() {
      return async () => {};
    },
    async close() {},
  };
}

describe('EventBus without rings', () => {
  it('still hands its own events to listeners at once, in order', async () => {
    const { bus, received } = await node({ broker: droppingBroker() });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => bus.publish({ type: 'order.paid', data: { orderId: `o${i}` } })));
    await vi.waitFor(() => expect(received).toHaveLength(50), { timeout: 2000, interval: 5 });
    expect(received.map((e) => e.seq)).toEqual(results.map((r) => r.event.seq).sort((x, y) => x - y));
  });
});

describe.each([
  ['memory broker', memoryBroker],
  ['a broker that drops rings', droppingBroker],
] as const)('EventBus.stop (%s)', (_name, broker) => {
  it('waits for in-flight publishes and hands their events to listeners, then refuses new ones', async () => {
    const { bus, store, received } = await node({ path: tempDatabase(), broker: broker() });
    const resolved: boolean[] = [];
    const publishes = Array.from({ length: 50 }, (_, i) =>
      bus.publish({ type: 'order.paid', data: { orderId: `o${i}` } }).finally(() => {
        resolved[i] = true;
      }),
    );
    await bus.stop();
    expect(resolved.filter(Boolean)).toHaveLength(50);
    const results = await Promise.all(publishes);
    expect(results.every((r) => r.created)).toBe(true);
    expect((await store.bounds()).latest).toBe(50);
    expect(received.map((e) => e.seq)).toEqual(results.map((r) => r.event.seq).sort((x, y) => x - y));

    await expect(bus.publish({ type: 'order.paid', data: { orderId: 'late' } })).rejects.toThrow(/stopped/);
    expect((await store.bounds()).latest).toBe(50);
  });
});
