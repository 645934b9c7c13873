
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  type Broker,
  EventBus,
  EventCatalog,
  eventTypeFromJsonSchema,
  type HeraldEvent,
  type SqlStore,
  SubscriptionRegistry,
  sqliteStore,
} from '@herald/core';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempFolder } from '../../core/src/temp-folder.test-support.js';
import { recordingLogger } from '../../testkit/src/recording-logger.js';
import { linger } from '../../testkit/src/wait-for.js';
import { freePort } from '../../testkit/src/free-port.test-support.js';
import { type OwnRedis, ownRedis as startOwnRedis } from './own-redis.test-support.js';
import { type RedisBrokerOptions, redisBroker } from './redis-broker.js';

/** The machine's Redis, for the tests that do not restart it. */
const sharedRedisUrl = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** An initialised broker, closed after the test. A fresh prefix per test keeps parallel runs apart. */
async function broker(options: RedisBrokerOptions = {}): Promise<Broker> {
  const created = redisBroker({ url: sharedRedisUrl, maxReconnectDelay: 100, ...options });
  await created.init?.();
  onTestFinished(() => created.close());
  return created;
}

const testPrefix = () => `test-${randomBytes(6).toString('hex')}:`;

/** A redis-server of this test's own, killed after the test. */
async function ownRedis(): Promise<OwnRedis> {
  const redis = await startOwnRedis();
  onTestFinished(redis.kill);
  return redis;
}

function received(target: Broker, channel: string): Promise<string[]> {
  const messages: string[] = [];
  return target.subscribe(channel, (message) => messages.push(message)).then(() => messages);
}

describe('redisBroker', () => {
  it('rings every node subscribed to a channel, and no other channel', async () => {
    const prefix = testPrefix();
    const [a, b, c] = await Promise.all([broker({ prefix }), broker({ prefix }), broker({ prefix })]);
    const onB = await received(b as Broker, 'herald:events');
    const onC = await received(c as Broker, 'herald:events');
    const otherChannel = await received(c as Broker, 'herald:subscriptions');
    await a?.publish('herald:events', '41');
    await a?.publish('herald:events', '42');
    await waitFor(() => onB.length === 2 && onC.length === 2, 'both rings on B and C');
    expect(onB).toEqual(['41', '42']);
    expect(onC).toEqual(['41', '42']);
    expect(otherChannel).toEqual([]);
  });

  it('keeps deployments with different prefixes apart', async () => {
    const [mine, theirs] = await Promise.all([broker({ prefix: testPrefix() }), broker({ prefix: testPrefix() })]);
    const onMine = await received(mine as Broker, 'herald:events');
    const onTheirs = await received(theirs as Broker, 'herald:events');
    await theirs?.publish('herald:events', '7');
    await waitFor(() => onTheirs.length === 1, 'the ring within their deployment');
    // Redis delivers in order on one connection: a later ring of ours arriving first means theirs never will.
    await mine?.publish('herald:events', '8');
    await waitFor(() => onMine.length === 1, 'our own ring');
    expect(onMine).toEqual(['8']);
  });

  it('stops ringing a listener once it unsubscribes; other listeners of the channel go on', async () => {
    const prefix = testPrefix();
    const [a, b] = await Promise.all([broker({ prefix }), broker({ prefix })]);
    const first: string[] = [];
    const second: string[] = [];
    const stopFirst = await (b as Broker).subscribe('ch', (message) => first.push(message));
    await (b as Broker).subscribe('ch', (message) => second.push(message));
    await a?.publish('ch', '1');
    await waitFor(() => first.length === 1 && second.length === 1, 'the first ring');
    await stopFirst();
    await a?.publish('ch', '2');
    await waitFor(() => second.length === 2, 'the second ring');
    expect(first).toEqual(['1']);
  });

  it('fails init loudly when Redis is not there, saying why, and logs nothing of reconnecting, which it does not do', async () => {
    const port = await freePort();
    const logger = recordingLogger();
    const unreachable = redisBroker({ url: `redis://127.0.0.1:${port}`, connectTimeout: 1_000, logger });
    const failure = await unreachable.init?.().catch((error: unknown) => error);
    expect(failure).toMatchObject({ message: `Redis is not reachable at redis://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`, code: 'ECONNREFUSED' });
    await linger();
    expect(logger.entries).toEqual([]);
    await unreachable.close();
    expect(() => redisBroker({ url: 'http://127.0.0.1:6379' })).toThrow(/redis:\/\//);
  });

  it('asks whether the server takes TLS when a rediss:// URL leads to one that does not answer', async () => {
    // The machine's Redis, which speaks no TLS: the handshake waits for an answer that never comes.
    const plain = redisBroker({ url: `rediss://${sharedRedisUrl.replace(/^redis:\/\//, '')}`, connectTimeout: 1_000 });
    const failure = await plain.init?.().catch((error: unknown) => error);
    await plain.close();
    expect((failure as Error).message).toMatch(/^Redis is not reachable at rediss:\/\/.*: .*\(the URL says rediss:\/\/: does the server take TLS there\?\)$/);
  });

  it('survives a Redis restart: publishing never hangs, then it subscribes again, sends held rings, and says it reconnected', async () => {
    const redis = await ownRedis();
    const logger = recordingLogger();
    const [a, b] = await Promise.all([broker({ url: redis.url }), broker({ url: redis.url, logger })]);
    const onB = await received(b as Broker, 'herald:events');
    const logged = () => logger.entries.map(({ level, message, fields }) => [level, message, fields.role]);
    let reconnectsOfB = 0;
    b?.onReconnect?.(() => reconnectsOfB++);
    await a?.publish('herald:events', '1');
    await waitFor(() => onB.length === 1, 'the ring before the restart');

    await redis.kill();
    const started = Date.now();
    await a?.publish('herald:events', '2');
    await a?.publish('herald:events', '3');
    await a?.publish('herald:events', '3');
    expect(Date.now() - started).toBeLessThan(1_000);

    await waitFor(() => logged().length === 2, "B's connections to say they failed");

    await redis.start();
    await waitFor(() => reconnectsOfB === 1, 'B to say it reconnected');
    await waitFor(() => logged().length === 4, "B's connections to say they are back");
    const failed = 'the connection to Redis failed; reconnecting';
    expect(logged().sort()).toEqual([
      ['info', 'reconnected to Redis', 'publisher'],
      ['info', 'reconnected to Redis', 'subscriber'],
      ['warn', failed, 'publisher'],
      ['warn', failed, 'subscriber'],
    ]);
    // The restarted Redis counts from zero: A sent the rings it held, each once, with no new publish.
    const admin = new Redis(redis.url);
    onTestFinished(() => void admin.disconnect());
    const publishes = async () => Number(/cmdstat_publish:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    await waitFor(async () => (await publishes()) === 2, 'A to send its two held rings');
    await a?.publish('herald:events', '4');
    await waitFor(() => onB.includes('4'), 'a ring after the restart');
    // Whether B heard the held rings depends on which connection came back first; B's own catch-up covers the other case.
    expect(onB.filter((message) => message !== '2' && message !== '3')).toEqual(['1', '4']);
    expect([...onB].sort()).toEqual(onB);
    expect(await publishes()).toBe(3);
  });
});

describe('redisBroker with the event bus and the subscription registry', () => {
  const catalog = () => {
    const created = new EventCatalog();
    created.add(eventTypeFromJsonSchema('tick', { type: 'object' }), 'api');
    return created;
  };

  /** A node: its own store on a shared SQLite file, its own broker, a bus that never polls by itself. */
  async function node(path: string, url: string) {
    const store: SqlStore = sqliteStore({ path });
    await store.init();
    // No held rings: what the node finds after the restart it must find by catching up from the store.
    const nodeBroker = await broker({ url, maxHeldRings: 0 });
    const bus = new EventBus({ store, broker: nodeBroker, catalog: catalog(), pollInterval: 3_600_000 });
    const subscriptions = new SubscriptionRegistry(store, nodeBroker);
    await bus.start();
    await subscriptions.start();
    onTestFinished(async () => {
      await bus.stop();
      await subscriptions.stop();
      await store.close();
    });
    const heard: HeraldEvent[] = [];
    bus.onEvents((events) => heard.push(...events));
    return { bus, heard, subscriptions };
  }

  /** Two nodes on one SQLite file and a redis-server of their own. */
  async function twoNodes() {
    const dir = tempFolder();
    const redis = await ownRedis();
    return { redis, a: await node(join(dir, 'herald.db'), redis.url), b: await node(join(dir, 'herald.db'), redis.url) };
  }

  it('publishing does not wait for a Redis that hangs, and the other node hears the ring once it answers again', async () => {
    const { redis, a, b } = await twoNodes();

    // Stopped, not killed: the connections stay open and every command waits (up to publishTimeout, 2 s).
    redis.freeze();
    onTestFinished(() => redis.thaw());
    const started = Date.now();
    await a.bus.publish({ type: 'tick', data: { n: 1 } });
    expect(Date.now() - started).toBeLessThan(500);
    expect(a.heard).toHaveLength(1);
    redis.thaw();
    await a.bus.publish({ type: 'tick', data: { n: 2 } });
    await waitFor(() => b.heard.length === 2, 'B to hear both events');
    expect(b.heard.map((event) => event.data)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('a node catches up from the store with what was published and changed while Redis was down', async () => {
    const { redis, a, b } = await twoNodes();

    await a.bus.publish({ type: 'tick', data: { n: 1 } });
    await waitFor(() => b.heard.length === 1, 'the ring before the restart');

    await redis.kill();
    await a.bus.publish({ type: 'tick', data: { n: 2 } });
    await a.bus.publish({ type: 'tick', data: { n: 3 } });
    const created = await a.subscriptions.create({ consumer: 'acme', transport: 'memory', types: ['tick'], status: 'active', config: {}, cursor: 0 });
    expect(b.subscriptions.match({ type: 'tick' }, 'memory')).toEqual([]);

    await redis.start();
    await waitFor(() => b.heard.length === 3, 'B to catch up with the events published during the outage');
    expect(b.heard.map((event) => event.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    await waitFor(() => b.subscriptions.match({ type: 'tick' }, 'memory').length === 1, 'B to learn of the new subscription');
    expect(b.subscriptions.match({ type: 'tick' }, 'memory')[0]?.id).toBe(created.id);
  });
});
