import { randomBytes } from 'node:crypto';
import type { RateLimitStore } from '@herald/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freePort } from '../../testkit/src/free-port.test-support.js';
import { ownRedis } from './own-redis.test-support.js';
import { type RedisRateLimitsOptions, redisRateLimits } from './redis-rate-limits.js';

/** The machine's Redis, for the tests that do not stop it. */
const sharedRedisUrl = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A store as one node has it, initialised, closed after the test. */
async function node(options: RedisRateLimitsOptions): Promise<RateLimitStore> {
  const store = redisRateLimits({ url: sharedRedisUrl, maxReconnectDelay: 100, ...options });
  await store.init?.();
  onTestFinished(() => store.close?.());
  return store;
}

const testPrefix = () => `test-${randomBytes(6).toString('hex')}:`;

describe('redisRateLimits', () => {
  it('counts the hits of every node against one limit, never past it however many count at once', async () => {
    const prefix = testPrefix();
    const [a, b] = await Promise.all([node({ prefix }), node({ prefix })]);
    const takes = await Promise.all(Array.from({ length: 60 }, (_, n) => (n % 2 === 0 ? a : b).take('key:k1', 25, 60_000)));
    expect(takes.filter((take) => take.allowed)).toHaveLength(25);
    expect(takes.filter((take) => take.allowed).map((take) => take.used).sort((x, y) => x - y)).toEqual(Array.from({ length: 25 }, (_, n) => n + 1));
    for (const take of takes) {
      expect(take.resetMs).toBeGreaterThan(55_000);
      expect(take.resetMs).toBeLessThanOrEqual(60_000);
    }
    const peeked = await b.peek('key:k1');
    expect(peeked.used).toBe(25);
    expect((await a.take('key:k2', 25, 60_000)).used).toBe(1);
    expect(await a.peek('key:never')).toEqual({ used: 0, resetMs: 0 });
  });

  it('opens a new window once the last one ends, timed by Redis', async () => {
    const store = await node({ prefix: testPrefix() });
    expect(await store.take('k', 1, 300)).toMatchObject({ used: 1, allowed: true });
    expect(await store.take('k', 1, 300)).toMatchObject({ used: 1, allowed: false });
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await store.peek('k')).toEqual({ used: 0, resetMs: 0 });
    expect(await store.take('k', 1, 300)).toMatchObject({ used: 1, allowed: true });
  });

  it('keeps deployments with different prefixes apart', async () => {
    const [shop, blog] = await Promise.all([node({ prefix: testPrefix() }), node({ prefix: testPrefix() })]);
    expect((await shop.take('k', 1, 60_000)).allowed).toBe(true);
    expect((await shop.take('k', 1, 60_000)).allowed).toBe(false);
    expect((await blog.take('k', 1, 60_000)).allowed).toBe(true);
  });

  it('fails init loudly when Redis is not there, saying why, and refuses a URL that is not Redis', async () => {
    const port = await freePort();
    const unreachable = redisRateLimits({ url: `redis://user:secret@127.0.0.1:${port}`, connectTimeout: 1_000 });
    await expect(unreachable.init?.()).rejects.toThrow(`Redis is not reachable at redis://***@127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);
    await unreachable.close?.();
    expect(() => redisRateLimits({ url: 'http://127.0.0.1:6379' })).toThrow(/redis:\/\//);
  });

  it('fails a count at once while Redis is down, or within its timeout while Redis hangs, saying which, and counts again once it is back', async () => {
    const redis = await ownRedis();
    onTestFinished(redis.kill);
    const store = await node({ url: redis.url, commandTimeout: 300 });
    expect((await store.take('k', 10, 60_000)).used).toBe(1);

    redis.freeze();
    let startedAt = Date.now();
    await expect(store.take('k', 10, 60_000)).rejects.toThrow(`Redis at ${redis.url} did not answer within 300 ms`);
    expect(Date.now() - startedAt).toBeLessThan(2_000);
    redis.thaw();

    await redis.kill();
    startedAt = Date.now();
    const unreachable = `Redis is not reachable at ${redis.url}: the connection is lost; reconnecting`;
    await expect(store.take('k', 10, 60_000)).rejects.toThrow(unreachable);
    await expect(store.peek('k')).rejects.toThrow(unreachable);
    expect(Date.now() - startedAt).toBeLessThan(2_000);

    await redis.start();
    // A Redis that keeps nothing starts the count again.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const counted = await store.take('k', 10, 60_000).catch(() => undefined);
      if (counted) {
        expect(counted).toMatchObject({ used: 1, allowed: true });
        break;
      }
      if (Date.now() > deadline) throw new Error('the store did not count again after Redis came back');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
});
