import { randomBytes } from 'node:crypto';
import type { Broker, RateLimitStore } from '@herald/core';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type LogEntry, recordingLogger } from '../../testkit/src/recording-logger.js';
import { startTcpRelay } from '../../testkit/src/tcp-relay.test-support.js';
import { linger, waitFor } from '../../testkit/src/wait-for.js';
import { ownRedis } from './own-redis.test-support.js';
import { redisBroker } from './redis-broker.js';
import type { RedisOptions } from './redis-connection.js';
import { redisRateLimits } from './redis-rate-limits.js';

/** The machine's Redis: the tests end only their own connections, never the server. */
const sharedRedisUrl = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A broker and a rate-limit store as one node has them, logging to one logger, closed after the test unless before. */
async function node(url: string, prefix: string, options: RedisOptions = {}) {
  const logger = recordingLogger();
  const broker = redisBroker({ url, prefix, maxReconnectDelay: 100, logger, ...options });
  const limits = redisRateLimits({ url, prefix, maxReconnectDelay: 100, logger, ...options });
  await Promise.all([broker.init?.(), limits.init?.()]);
  const close = async () => {
    await Promise.all([broker.close(), limits.close?.()]);
  };
  onTestFinished(close);
  /** What the connections said, sorted: level, message and role. */
  const logged = () => logger.entries.map(({ level, message, fields }: LogEntry) => [level, message, fields.role]).sort();
  return { broker: broker as Broker, limits: limits as RateLimitStore, logger, logged, close };
}

const lost = 'the connection to Redis failed; reconnecting';
const back = 'reconnected to Redis';

describe('the connections to Redis', () => {
  it('each log once when Redis closes them without an error (CLIENT KILL) and once when they are back; not when Herald closes them', async () => {
    // A space, which Redis refuses in a connection name, is written `_` there.
    const prefix = `test ${randomBytes(6).toString('hex')}:`;
    const { broker, limits, logger, logged, close } = await node(sharedRedisUrl, prefix);
    const rings: string[] = [];
    await broker.subscribe('ch', (message) => rings.push(message));
    let reconnects = 0;
    broker.onReconnect?.(() => reconnects++);

    const admin = new Redis(sharedRedisUrl);
    onTestFinished(() => void admin.disconnect());
    const named = prefix.replace(' ', '_');
    const ours = ((await admin.client('LIST')) as string)
      .split('\n')
      .map((line) => ({ id: /\bid=(\d+)/.exec(line)?.[1], name: /\bname=(\S*)/.exec(line)?.[1] }))
      .filter(({ name }) => name?.startsWith(named));
    expect(ours.map(({ name }) => name).sort()).toEqual([`${named}herald-publisher`, `${named}herald-rate-limits`, `${named}herald-subscriber`]);
    for (const { id } of ours) await admin.client('KILL', 'ID', id as string);

    await waitFor(() => logged().length === 6 && reconnects === 1, 'each connection to say it was lost and is back');
    expect(logged()).toEqual([
      ['info', back, 'publisher'],
      ['info', back, 'rate-limits'],
      ['info', back, 'subscriber'],
      ['warn', lost, 'publisher'],
      ['warn', lost, 'rate-limits'],
      ['warn', lost, 'subscriber'],
    ]);
    // Closed without an error: none to log.
    expect(logger.entries.filter(({ fields }) => 'err' in fields)).toEqual([]);
    // Back indeed: subscribed again, and counting in Redis.
    await broker.publish('ch', 'after');
    await waitFor(() => rings.includes('after'), 'a ring after the connections came back');
    expect((await limits.take('k', 1, 60_000)).allowed).toBe(true);

    await close();
    await linger();
    expect(logged()).toHaveLength(6);
  });

  it('log an outage once each, however many reconnections fail during it, and a count fails saying Redis is not reachable', async () => {
    const relay = await startTcpRelay(new URL(sharedRedisUrl).host);
    onTestFinished(() => relay.close());
    const url = `redis://${relay.address}`;
    const { limits, logged } = await node(url, `test-${randomBytes(6).toString('hex')}:`);
    expect((await limits.take('k', 10, 60_000)).used).toBe(1);

    await relay.cut();
    await waitFor(() => logged().length === 3, 'each connection to say it was lost');
    const failure = await limits.take('k', 10, 60_000).catch((error: unknown) => error);
    expect(failure).toMatchObject({ message: `Redis is not reachable at ${url}: the connection is lost; reconnecting`, redisError: expect.any(Error) });
    await expect(limits.peek('k')).rejects.toThrow(`Redis is not reachable at ${url}: the connection is lost; reconnecting`);
    // Reconnections are tried every 100 ms meanwhile, each refused.
    await linger(1_000);
    expect(logged()).toEqual([
      ['warn', lost, 'publisher'],
      ['warn', lost, 'rate-limits'],
      ['warn', lost, 'subscriber'],
    ]);

    await relay.resume();
    await waitFor(() => logged().length === 6, 'each connection to say it is back');
    expect(logged().slice(0, 3)).toEqual([
      ['info', back, 'publisher'],
      ['info', back, 'rate-limits'],
      ['info', back, 'subscriber'],
    ]);
    expect((await limits.take('k', 10, 60_000)).used).toBe(2);
  });

  describe("are kept from Redis's `timeout` for idle clients (1 s here) by a PING", () => {
    /** Idle past the server's `timeout`, the node's connections say nothing, and ring and count at once after. */
    async function staysUp(config: string[], options: RedisOptions) {
      const redis = await ownRedis({ config: ['--timeout', '1', ...config] });
      onTestFinished(redis.kill);
      const { broker, limits, logger } = await node(redis.url, 'test:', options);
      const rings: string[] = [];
      await broker.subscribe('ch', (message) => rings.push(message));
      let reconnects = 0;
      broker.onReconnect?.(() => reconnects++);
      // A client that sends nothing is closed meanwhile: the server's timeout holds.
      const idle = new Redis(redis.url, { retryStrategy: () => null });
      onTestFinished(() => void idle.disconnect());
      let idleClosed = false;
      idle.on('close', () => {
        idleClosed = true;
      });

      await linger(3_500);
      expect(idleClosed).toBe(true);
      expect(logger.entries).toEqual([]);
      expect(reconnects).toBe(0);
      await broker.publish('ch', 'after the idle time');
      await waitFor(() => rings.length === 1, 'the ring after the idle time');
      expect((await limits.take('k', 1, 60_000)).allowed).toBe(true);
    }

    it('as often as Redis says its `timeout` needs', () => staysUp([], {}), 15_000);

    it('every `pingInterval` ms where Redis refuses CONFIG, as managed Redis often does', () => staysUp(['--rename-command', 'CONFIG', ''], { pingInterval: 400 }), 15_000);

    it('refuse a `pingInterval` that is no number of ms a timer takes', () => {
      for (const pingInterval of [-1, Number.NaN, 2 ** 31]) {
        expect(() => redisBroker({ pingInterval })).toThrow('redisBroker: `pingInterval` must be from 0 to 2147483647 ms');
        expect(() => redisRateLimits({ pingInterval })).toThrow('redisRateLimits: `pingInterval` must be from 0 to 2147483647 ms');
      }
    });
  });
});
