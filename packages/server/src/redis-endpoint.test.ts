import { readFileSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { ownRedis } from '../../redis/src/own-redis.test-support.js';
import { recordingLogger } from '../../testkit/src/recording-logger.js';
import { startTestApp } from '../../testkit/src/test-app.js';
import { waitFor } from '../../testkit/src/wait-for.js';
import { testTls } from '../../webhook/src/test-tls.test-support.js';
import { createHerald } from './create-herald.js';
import type { HeraldOptions } from './options.js';

/** The machine's Redis, plain TCP. */
const machineRedis = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A Herald started with `options`, closed after the test. */
async function start(options: Partial<HeraldOptions>) {
  const app = await startTestApp([], options);
  onTestFinished(() => app.close());
  return app;
}

describe('broker and rateLimitStore as { url, tls } of a Redis', () => {
  it('makes the Redis broker and rate-limit store of a Redis that requires a client certificate: two nodes ring each other and count together, logging as a URL’s do', async () => {
    // TLS only, from clients with a certificate the test authority signed.
    const redis = await ownRedis({ tls: testTls });
    onTestFinished(redis.kill);
    const endpoint = { url: redis.url, tls: { ca: readFileSync(testTls.ca), cert: readFileSync(testTls.cert), key: readFileSync(testTls.key) } };
    const logger = recordingLogger();
    const options = { database: tempDatabase(), broker: endpoint, rateLimitStore: endpoint, rateLimit: { requests: 2, window: 60 } };
    // Each test app configures an admin key of its own, which replaces the one before: B's is the one both take.
    const a = await start({ ...options, logger });
    const b = await start(options);

    // The broker: A learns of an event type registered on B from B's ring only (or when it reconnects to Redis).
    expect((await b.api('POST', '/v1/event-types', { name: 'invoice.sent', schema: { type: 'object' } })).status).toBe(201);
    await waitFor(() => a.herald.catalog.has('invoice.sent'), "B's event type, on A");

    // The rate-limit store: the quota of a key spent on B is spent on A. Counting on its own, A would answer 200.
    const key = await b.consumerKey('acme');
    for (let n = 0; n < 2; n++) expect((await b.api('GET', '/v1/subscriptions', undefined, key)).status).toBe(200);
    expect((await a.api('GET', '/v1/subscriptions', undefined, key)).status).toBe(429);

    // Made with A's logger: each of its three connections says it was lost.
    await redis.kill();
    const lost = () => logger.entries.filter((entry) => entry.message === 'the connection to Redis failed; reconnecting');
    await waitFor(() => lost().length === 3, "A's three connections saying they were lost", 10_000);
    expect(lost().map(({ fields }) => `${fields.component} ${fields.role}`).sort()).toEqual(['broker publisher', 'broker subscriber', 'rate-limits rate-limits']);
  });

  it('takes { url } without tls as it takes the URL', async () => {
    // Failed authentications counted in the machine's Redis by address: other tests' on 127.0.0.1 must not block this one's.
    const app = await start({ broker: { url: machineRedis }, rateLimitStore: { url: machineRedis }, rateLimit: { requests: 1, window: 60 }, authFailureLimit: false });
    const key = await app.consumerKey('acme');
    expect((await app.api('GET', '/v1/subscriptions', undefined, key)).status).toBe(200);
    expect((await app.api('GET', '/v1/subscriptions', undefined, key)).status).toBe(429);
    expect((await app.herald.publish({ type: 'order.created', data: { n: 1 } })).event.type).toBe('order.created');
  });

  it('refuses, naming the option and hiding a password, a URL that is not Redis’s, members besides url and tls, and tls without rediss://', () => {
    const ca = readFileSync(testTls.ca);
    const refusals: [HeraldOptions, string][] = [
      [{ broker: { url: 'memcached://user:secret@cache:11211' } }, 'broker must be a broker or { url, tls } of a Redis, whose url is a redis:// or rediss:// URL, not "memcached://***@cache:11211"'],
      [{ rateLimitStore: { url: 'memory' } }, 'rateLimitStore must be a rate-limit store or { url, tls } of a Redis, whose url is a redis:// or rediss:// URL, not "memory"'],
      [{ broker: {} as never }, 'broker must be a broker or { url, tls } of a Redis, whose url is a redis:// or rediss:// URL'],
      [{ broker: { url: machineRedis, prefix: 'shop:' } as never }, 'broker: { url, tls } takes no prefix; for more options, give redisBroker({ url, ... }) of @herald/redis'],
      [{ rateLimitStore: { url: machineRedis, tls: { ca } } }, 'rateLimitStore: tls needs a rediss:// URL; url is redis://, without TLS'],
      [{ env: { HERALD_BROKER: 'nats://user:secret@nats:4222' } }, 'HERALD_BROKER: "nats://***@nats:4222" is not a broker this server knows (memory, or a redis:// or rediss:// URL)'],
    ];
    for (const [options, message] of refusals) expect(() => createHerald({ database: ':memory:', env: {}, ...options })).toThrow(message);
  });
});
