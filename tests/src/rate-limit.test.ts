import { redisRateLimits } from '@herald/redis';
import { memoryTransport, recordingLogger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { websocket } from '@herald/websocket';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { tempDatabase } from '../../packages/core/src/temp-folder.test-support.js';
import { machineRedisUrl, ownRedis } from './multi-node-cluster.js';

async function start(options: Parameters<typeof startTestApp>[1] = {}): Promise<TestApp> {
  const app = await startTestApp([memoryTransport(), websocket()], options);
  onTestFinished(() => app.close());
  return app;
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function call(app: TestApp, method: string, path: string, key?: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${app.baseUrl}${path}`, {
    method,
    headers: { ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/** `RateLimit: "name";r=R;t=T` → its parts. */
function rateLimitOf(answer: Answer): { policy: string; remaining: number; reset: number } | undefined {
  const match = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(answer.headers.get('ratelimit') ?? '');
  return match ? { policy: match[1] as string, remaining: Number(match[2]), reset: Number(match[3]) } : undefined;
}

const wrongKey = 'hk_0123456789abcdef0123_0000000000000000000000000000000000000000000000000000000000000000';

describe('rate limits (issue 13)', () => {
  it('counts each key’s requests, says so in RateLimit headers, and answers 429 past the quota, storing nothing', async () => {
    const app = await start({ rateLimit: { requests: 5, window: 60 } });
    const key = await app.consumerKey('acme');
    for (let n = 1; n <= 4; n++) {
      const answer = await call(app, 'GET', '/v1/subscriptions', key);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('ratelimit-policy')).toBe('"key";q=5;w=60');
      expect(rateLimitOf(answer)).toEqual({ policy: 'key', remaining: 5 - n, reset: expect.any(Number) });
      expect(rateLimitOf(answer)?.reset).toBeGreaterThan(0);
      expect(rateLimitOf(answer)?.reset).toBeLessThanOrEqual(60);
    }
    expect((await call(app, 'POST', '/v1/subscriptions', key, { transport: 'memory', types: ['order.*'] })).status).toBe(201);

    const before = await app.herald.store.subscriptions.list();
    const refused = await call(app, 'POST', '/v1/subscriptions', key, { transport: 'memory', types: ['invoice.*'] });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ type: 'urn:herald:problem:rate-limited', status: 429 });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(rateLimitOf(refused)).toEqual({ policy: 'key', remaining: 0, reset: retryAfter });
    expect(refused.headers.get('ratelimit-policy')).toBe('"key";q=5;w=60');
    expect(await app.herald.store.subscriptions.list()).toEqual(before);

    // Other keys, and stream tokens, count on their own.
    expect((await call(app, 'GET', '/v1/subscriptions', await app.consumerKey('beta'))).status).toBe(200);
    const token = (await app.herald.keys.createStreamToken(await app.herald.keys.authenticate(key), {})).key;
    expect(rateLimitOf(await call(app, 'GET', '/v1/events', token))).toMatchObject({ policy: 'key', remaining: 4 });
  });

  it('leaves admin keys unlimited by default, and limits them with adminRateLimit', async () => {
    const open = await start({ rateLimit: { requests: 2, window: 60 } });
    for (let n = 0; n < 50; n++) {
      const answer = await call(open, 'POST', '/v1/events', open.adminKey, { type: 'order.created', data: { n } });
      expect(answer.status).toBe(202);
      expect(answer.headers.get('ratelimit')).toBeNull();
    }
    const limited = await start({ adminRateLimit: { requests: 3, window: 10 } });
    const statuses = [];
    for (let n = 0; n < 4; n++) statuses.push((await call(limited, 'POST', '/v1/events', limited.adminKey, { type: 'order.created', data: { n } })).status);
    expect(statuses).toEqual([202, 202, 202, 429]);
    expect((await limited.herald.store.bounds()).latest).toBe(3);
  });

  it('takes the limits from the environment, and turns them off', async () => {
    const fromEnv = await start({ env: { HERALD_RATE_LIMIT: '3/2m', HERALD_ADMIN_RATE_LIMIT: '7/10s', HERALD_AUTH_FAILURE_LIMIT: '4/30s' } });
    expect((await call(fromEnv, 'GET', '/v1/subscriptions', await fromEnv.consumerKey('acme'))).headers.get('ratelimit-policy')).toBe('"key";q=3;w=120');
    expect((await call(fromEnv, 'GET', '/v1/keys', fromEnv.adminKey)).headers.get('ratelimit-policy')).toBe('"admin";q=7;w=10');
    expect((await call(fromEnv, 'GET', '/v1/keys', wrongKey)).headers.get('ratelimit-policy')).toBe('"auth-failures";q=4;w=30');

    const off = await start({ env: { HERALD_RATE_LIMIT: 'off', HERALD_AUTH_FAILURE_LIMIT: 'off' } });
    const key = await off.consumerKey('acme');
    for (let n = 0; n < 700; n++) expect((await call(off, 'GET', '/v1/event-types', key)).headers.get('ratelimit')).toBeNull();
    for (let n = 0; n < 100; n++) expect((await call(off, 'GET', '/v1/event-types', wrongKey)).status).toBe(401);

    await expect(startTestApp([], { env: { HERALD_RATE_LIMIT: 'lots' } })).rejects.toThrow(/HERALD_RATE_LIMIT/);
    await expect(startTestApp([], { env: { HERALD_RATE_LIMIT: '0/1m' } })).rejects.toThrow(/HERALD_RATE_LIMIT/);
  });

  it('holds a generous quota by default', async () => {
    const app = await start();
    const answer = await call(app, 'GET', '/v1/subscriptions', await app.consumerKey('acme'));
    expect(answer.headers.get('ratelimit-policy')).toBe('"key";q=600;w=60');
    expect((await call(app, 'GET', '/v1/keys', wrongKey)).headers.get('ratelimit-policy')).toBe('"auth-failures";q=60;w=60');
  });

  it('limits failed authentications per client address, so keys cannot be guessed at line rate', async () => {
    const app = await start({ authFailureLimit: { requests: 3, window: 60 } });
    const key = await app.consumerKey('acme');
    const failures = [];
    for (let n = 0; n < 3; n++) failures.push(await call(app, 'GET', '/v1/subscriptions', n === 0 ? undefined : wrongKey));
    expect(failures.map((answer) => answer.status)).toEqual([401, 401, 401]);
    expect(failures.map((answer) => rateLimitOf(answer)?.remaining)).toEqual([2, 1, 0]);

    // From now on this address is not even authenticated: a right key and a wrong one get the same answer.
    for (const attempt of [wrongKey, key, app.adminKey]) {
      const answer = await call(app, 'GET', '/v1/subscriptions', attempt);
      expect(answer.status).toBe(429);
      expect(answer.body).toMatchObject({ type: 'urn:herald:problem:rate-limited' });
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(rateLimitOf(answer)).toMatchObject({ policy: 'auth-failures', remaining: 0 });
    }
    // Operations and documents answer whatever the limits.
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/asyncapi.json', '/docs']) {
      const answer = await fetch(`${app.baseUrl}${path}`);
      expect({ path, status: answer.status, limited: answer.headers.get('ratelimit') }).toEqual({ path, status: 200, limited: null });
    }
  });

  it('counts failed WebSocket authentications against the same address limit, on the upgrade and in the auth message', async () => {
    const app = await start({ authFailureLimit: { requests: 3, window: 60 } });
    const key = await app.consumerKey('acme');
    const url = `${app.baseUrl.replace(/^http/, 'ws')}/v1/ws`;
    /** Opens a WebSocket, with `bearer` on the upgrade or `token` in an auth message: the upgrade's refusal status, or how it closed. */
    const open = (credential: { bearer?: string; token?: string }) =>
      new Promise<{ refused?: number; closed?: number; ready?: boolean }>((resolve) => {
        const ws = new WebSocket(url, 'herald.v1', credential.bearer ? { headers: { authorization: `Bearer ${credential.bearer}` } } : {});
        ws.on('unexpected-response', (_request, response) => resolve({ refused: response.statusCode }));
        ws.on('error', () => {});
        ws.on('open', () => credential.token && ws.send(JSON.stringify({ type: 'auth', token: credential.token })));
        ws.on('message', (data) => {
          if (JSON.parse(String(data)).type === 'ready') {
            resolve({ ready: true });
            ws.close();
          }
        });
        ws.on('close', (code) => resolve({ closed: code }));
      });

    expect(await open({ bearer: key })).toEqual({ ready: true });
    expect(await open({ token: key })).toEqual({ ready: true });
    expect(await open({ bearer: wrongKey })).toEqual({ refused: 401 });
    expect(await open({ token: wrongKey })).toEqual({ closed: 4401 });
    expect((await call(app, 'GET', '/v1/subscriptions', wrongKey)).status).toBe(401);

    // Three failures from this address, whichever way they came: now nothing from it is looked at.
    expect((await call(app, 'GET', '/v1/subscriptions', key)).status).toBe(429);
    expect(await open({ bearer: key })).toEqual({ refused: 429 });
    expect(await open({ token: key })).toEqual({ closed: 1013 });
  });

  it('gives the quota back when its window ends', async () => {
    const app = await start({ rateLimit: { requests: 2, window: 3 } });
    const key = await app.consumerKey('acme');
    expect((await call(app, 'GET', '/v1/subscriptions', key)).status).toBe(200);
    expect((await call(app, 'GET', '/v1/subscriptions', key)).status).toBe(200);
    const refused = await call(app, 'GET', '/v1/subscriptions', key);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3);
    await waitFor(async () => (await call(app, 'GET', '/v1/subscriptions', key)).status === 200, 'the next window', 10_000);
  });
});

describe('rate limits across nodes, counted in Redis', () => {
  /** Two nodes on one SQLite file (so one key works on both), each with its own connection to the Redis at `url`. */
  async function twoNodes(url: string, options: Parameters<typeof startTestApp>[1] = {}, commandTimeout = 500) {
    const database = tempDatabase();
    const logger = recordingLogger();
    // A prefix of the test's own keeps its counts apart from other runs' on the machine's Redis.
    const store = () => redisRateLimits({ url, maxReconnectDelay: 100, commandTimeout, prefix: `${database}:` });
    const node = () => start({ database, logger, rateLimitStore: store(), ...options });
    const a = await node();
    const b = await node();
    return { a, b, logger };
  }

  it('counts a key’s requests on every node against one quota, and each node on its own while Redis is down', async () => {
    const redis = await ownRedis();
    try {
      const { a, b, logger } = await twoNodes(redis.url, { rateLimit: { requests: 6, window: 60 } });
      // Through B, whose admin key is the one stored last; the consumer's key works on both.
      const key = await b.consumerKey('acme');
      const answers = [];
      for (let n = 0; n < 6; n++) answers.push(await call(n % 2 === 0 ? a : b, 'GET', '/v1/subscriptions', key));
      expect(answers.map((answer) => [answer.status, rateLimitOf(answer)?.remaining])).toEqual([
        [200, 5],
        [200, 4],
        [200, 3],
        [200, 2],
        [200, 1],
        [200, 0],
      ]);
      for (const node of [a, b]) {
        const refused = await call(node, 'GET', '/v1/subscriptions', key);
        expect(refused.status).toBe(429);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      }

      // Redis away: the API still answers, each node counting the key on its own.
      await redis.kill();
      expect(rateLimitOf(await call(a, 'GET', '/v1/subscriptions', key))?.remaining).toBe(5);
      expect(rateLimitOf(await call(a, 'GET', '/v1/subscriptions', key))?.remaining).toBe(4);
      expect(rateLimitOf(await call(b, 'GET', '/v1/subscriptions', key))?.remaining).toBe(5);
      expect(rateLimitOf(await call(b, 'GET', '/v1/subscriptions', key))?.remaining).toBe(4);
      expect(logger.entries.filter((line) => line.level === 'warn' && /rate-limit store failed/.test(line.message ?? ''))).toHaveLength(2);

      // Redis back, empty: once each node asks it again (a second after its last failure), they count together
      // again. On its own, a node has 3 left at most by now, so 5 and 4 come from Redis only.
      await redis.start();
      await waitFor(async () => rateLimitOf(await call(a, 'GET', '/v1/subscriptions', key))?.remaining === 5, 'A counting in Redis again', 10_000);
      await waitFor(async () => rateLimitOf(await call(b, 'GET', '/v1/subscriptions', key))?.remaining === 4, 'B counting in Redis with A', 10_000);
      expect(logger.entries.some((line) => line.level === 'info' && /rate-limit store answers again/.test(line.message ?? ''))).toBe(true);
    } finally {
      await redis.kill();
    }
  });

  it('asks a Redis that hangs again a second later, so that it costs one request its timeout, not every request', async () => {
    const redis = await ownRedis();
    try {
      const { a, b } = await twoNodes(redis.url, { rateLimit: { requests: 100, window: 60 } }, 1_000);
      const key = await b.consumerKey('acme');
      expect((await call(a, 'GET', '/v1/subscriptions', key)).status).toBe(200);
      const timed = async () => {
        const started = performance.now();
        const { status } = await call(a, 'GET', '/v1/subscriptions', key);
        return { status, waited: performance.now() - started >= 900 };
      };
      redis.freeze();
      expect(await timed()).toEqual({ status: 200, waited: true });
      expect([await timed(), await timed(), await timed()]).toEqual(Array(3).fill({ status: 200, waited: false }));
      redis.thaw();
    } finally {
      await redis.kill();
    }
  });

  it('counts the failed authentications of an address on every node', async () => {
    const { a, b } = await twoNodes(machineRedisUrl, { authFailureLimit: { requests: 3, window: 60 } });
    const key = await b.consumerKey('acme');
    const failures = [await call(a, 'GET', '/v1/subscriptions', wrongKey), await call(b, 'GET', '/v1/subscriptions', wrongKey), await call(a, 'GET', '/v1/subscriptions', wrongKey)];
    expect(failures.map((answer) => [answer.status, rateLimitOf(answer)?.remaining])).toEqual([
      [401, 2],
      [401, 1],
      [401, 0],
    ]);
    // Now neither node looks at a credential from this address, a right key as a wrong one.
    expect((await call(b, 'GET', '/v1/subscriptions', key)).status).toBe(429);
    expect((await call(a, 'GET', '/v1/subscriptions', key)).status).toBe(429);
  });

  it('logs when the Redis of HERALD_RATE_LIMIT_STORE and HERALD_BROKER goes away, and when it is back', async () => {
    const redis = await ownRedis();
    try {
      const logger = recordingLogger();
      await start({ database: tempDatabase(), logger, env: { HERALD_RATE_LIMIT_STORE: redis.url, HERALD_BROKER: redis.url } });
      const roles = (message: string) => logger.entries.filter((line) => line.message === message).map((line) => line.fields.role);
      await redis.kill();
      await waitFor(() => roles('the connection to Redis failed; reconnecting').length === 3, 'three connections saying they failed', 10_000);
      expect(roles('the connection to Redis failed; reconnecting').sort()).toEqual(['publisher', 'rate-limits', 'subscriber']);
      await redis.start();
      await waitFor(() => roles('reconnected to Redis').length === 3, 'three connections saying they are back', 10_000);
    } finally {
      await redis.kill();
    }
  });

  it('takes the store from HERALD_RATE_LIMIT_STORE, and refuses one it does not know', async () => {
    const database = tempDatabase();
    const env = { HERALD_RATE_LIMIT: '4/1m', HERALD_RATE_LIMIT_STORE: machineRedisUrl };
    const a = await start({ database, env });
    const b = await start({ database, env });
    const key = await b.consumerKey('acme');
    const remaining = [];
    for (const node of [a, b, a, b]) remaining.push(rateLimitOf(await call(node, 'GET', '/v1/subscriptions', key))?.remaining);
    expect(remaining).toEqual([3, 2, 1, 0]);
    await expect(startTestApp([], { env: { HERALD_RATE_LIMIT_STORE: 'memcached://127.0.0.1' } })).rejects.toThrow(/HERALD_RATE_LIMIT_STORE/);
  });
});
