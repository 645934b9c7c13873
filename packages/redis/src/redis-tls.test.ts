import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { waitFor } from '../../testkit/src/wait-for.js';
import { startTlsProxy, type TlsProxy, testTls } from '../../webhook/src/test-tls.test-support.js';
import { envConfiguredNode, type HeraldNode, spawnHeraldNode } from '../../testkit/src/herald-node.test-support.js';
import { ownRedis } from './own-redis.test-support.js';
import { redisBroker } from './redis-broker.js';
import type { RedisOptions } from './redis-connection.js';
import { redisRateLimits } from './redis-rate-limits.js';

/** The machine's Redis, plain TCP: the proxy puts TLS in front of it. */
const machineRedis = new URL(process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');

interface SseFrame {
  event: string;
  data: string;
}

/** An SSE stream of `node`'s, read as it comes: its frames so far, and whether the server ended it. Cancelled when the test finishes. */
async function openStream(node: HeraldNode, key: string, types: string): Promise<{ frames: SseFrame[]; readonly ended: boolean }> {
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  const response = await fetch(`${node.baseUrl}/v1/stream?types=${types}`, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal });
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const frames: SseFrame[] = [];
  let ended = false;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const blocks = buffer.split('\n\n');
      buffer = blocks.pop() as string;
      for (const block of blocks) {
        const field = (name: string) => block.split('\n').find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2);
        const event = field('event');
        if (event !== undefined) frames.push({ event, data: field('data') ?? '' });
      }
    }
    ended = true;
  })().catch(() => {});
  return {
    frames,
    get ended() {
      return ended;
    },
  };
}

/**
 * A TLS-terminating endpoint in front of the machine's Redis, with a certificate for localhost that the test authority
 * signed, closed after the test; and the machine's Redis URL (its credentials and database, if any) over TLS to it,
 * by the name its certificate is for.
 */
async function redisBehindTls(): Promise<{ proxy: TlsProxy; url: string }> {
  const proxy = await startTlsProxy({ host: machineRedis.hostname, port: Number(machineRedis.port || 6379) });
  onTestFinished(() => proxy.close());
  const url = new URL(machineRedis.href);
  url.protocol = 'rediss:';
  url.hostname = 'localhost';
  url.port = String(proxy.port);
  return { proxy, url: url.href };
}

/** `url` as Herald shows it, its password hidden. */
const shown = (url: string) => url.replace(/\/\/[^@/]*@/, '//***@');

/** A node configured by `env` and logging at warn. */
const startNode = (env: Record<string, string | undefined>) =>
  spawnHeraldNode(envConfiguredNode, [], { HERALD_LOG_LEVEL: 'warn', ...env });

/** A consumer key made on `node`: its id and the key. */
async function consumerKey(node: HeraldNode, consumer: string): Promise<{ id: string; key: string }> {
  const { status, body } = await node.api('POST', '/v1/keys', { role: 'consumer', consumer });
  expect(status).toBe(201);
  return body;
}

describe('Redis behind TLS (rediss://)', () => {
  it('rings the other node and counts its rate limits over rediss:// from nodes that trust the private authority (NODE_EXTRA_CA_CERTS); a node without it does not start, and says the certificate is why', async () => {
    const { proxy, url: redisUrl } = await redisBehindTls();
    const env = {
      // One SQLite file for the nodes: Herald's SQLite store takes several processes (it waits out the write lock of another).
      HERALD_DATABASE: tempDatabase(),
      HERALD_BROKER: redisUrl,
      HERALD_RATE_LIMIT_STORE: redisUrl,
      HERALD_ADMIN_KEY: randomBytes(32).toString('hex'),
      HERALD_RATE_LIMIT: '3/1m',
      // Failed authentications counted in Redis by address: other tests' on 127.0.0.1 must not block this one's.
      HERALD_AUTH_FAILURE_LIMIT: 'off',
    };
    // Node reads NODE_EXTRA_CA_CERTS only when a process starts: three Herald processes, the same but for it.
    const [nodeA, nodeB, distrusting] = [
      startNode({ ...env, NODE_EXTRA_CA_CERTS: testTls.ca }),
      startNode({ ...env, NODE_EXTRA_CA_CERTS: testTls.ca }),
      startNode({ ...env, NODE_EXTRA_CA_CERTS: undefined }),
    ];
    const [a, b] = await Promise.all([nodeA.started, nodeB.started]);
    // Each trusting node's three connections (the broker's publisher and subscriber, the rate-limit store's) went
    // through the proxy: six handshakes, each naming the URL's host (SNI), which the certificate is checked against.
    expect(proxy.servernames).toEqual(Array(6).fill('localhost'));

    // The broker: a key revoked on A ends at once the stream it has open on B. B learns of a revocation from the
    // ring only (or from the store when it reconnects to Redis): without a working broker the stream stays open.
    const reader = await consumerKey(a, 'reader');
    const stream = await openStream(b, reader.key, 'order.created');
    await waitFor(() => stream.frames.some((frame) => frame.event === 'ready'), "the stream's ready frame on B", 5_000);
    // The stream is live and carries A's events (the poll of the log would bring them too, within a second).
    expect((await a.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 } })).status).toBe(202);
    await waitFor(() => stream.frames.some((frame) => frame.event === 'order.created'), 'the event published on A, on B', 5_000);
    expect((await a.api('DELETE', `/v1/keys/${reader.id}`)).status).toBe(204);
    await waitFor(() => stream.ended, 'the stream on B to end', 2_000);
    expect(stream.frames.at(-1)).toEqual({ event: 'end', data: JSON.stringify({ reason: 'revoked', message: 'the key was revoked' }) });

    // The rate-limit store: the quota of a key spent on A is spent on B. Counting on its own, B would answer 200.
    const spender = await consumerKey(a, 'spender');
    for (let n = 0; n < 3; n++) expect((await a.api('GET', '/v1/subscriptions', undefined, spender.key)).status).toBe(200);
    const refused = await b.api('GET', '/v1/subscriptions', undefined, spender.key);
    expect(refused.status).toBe(429);

    // Without the authority: TLS refuses the certificate, and the node does not start, saying so in one line of its
    // log (pino's): no connection says it is reconnecting, as none is, and the reason is said once.
    expect(await distrusting.exited).toBe(1);
    expect(distrusting.logs.filter((log) => JSON.stringify(log).includes('Redis'))).toEqual([
      expect.objectContaining({
        msg: 'Herald failed to start',
        err: expect.objectContaining({ message: `Redis is not reachable at ${shown(redisUrl)}: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)` }),
      }),
    ]);
    // None of its handshakes completed: still only the trusting nodes' six.
    expect(proxy.servernames).toHaveLength(6);
  });
});

/**
 * Starts a broker and a rate-limit store with `options`, closed after the test: a ring the broker's publisher
 * connection sends, its subscriber connection hears, and the rate-limit store's connection counts.
 */
async function ringAndCount(options: RedisOptions): Promise<void> {
  const broker = redisBroker(options);
  const limits = redisRateLimits(options);
  onTestFinished(() => broker.close());
  onTestFinished(async () => {
    await limits.close?.();
  });
  await Promise.all([broker.init?.(), limits.init?.()]);
  const heard: string[] = [];
  await broker.subscribe('ch', (message) => heard.push(message));
  await broker.publish('ch', 'ring');
  await waitFor(() => heard.length === 1, 'the ring', 5_000);
  expect(await limits.take('k', 5, 60_000)).toMatchObject({ used: 1, allowed: true });
}

describe('the tls option', () => {
  const ca = readFileSync(testTls.ca);

  it('trusts the authority of `ca` on every connection, without NODE_EXTRA_CA_CERTS; without it, init fails, saying the certificate is why', async () => {
    const { proxy, url } = await redisBehindTls();
    const prefix = `test-${randomBytes(6).toString('hex')}:`;
    await ringAndCount({ url, prefix, tls: { ca } });
    // Each connection's TLS still names the URL's host (SNI).
    expect(proxy.servernames).toEqual(['localhost', 'localhost', 'localhost']);

    const distrusting = redisBroker({ url, prefix });
    await expect(distrusting.init?.()).rejects.toThrow(`Redis is not reachable at ${shown(url)}: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`);
    await distrusting.close();
    expect(proxy.servernames).toHaveLength(3);
  });

  it('presents the client certificate of `cert` and `key` to a Redis that requires one (mutual TLS); without one, Redis refuses the connection and init fails', async () => {
    // A redis-server taking TLS only, from clients with a certificate the test authority signed: here, its own.
    const redis = await ownRedis({ tls: testTls });
    onTestFinished(redis.kill);
    const mutual = { ca, cert: readFileSync(testTls.cert), key: readFileSync(testTls.key) };
    await ringAndCount({ url: redis.url, tls: mutual });
    // By an IPv6 address, which the certificate names too: no server name is sent for it (it had its brackets).
    await ringAndCount({ url: redis.url.replace('localhost', '[::1]'), prefix: 'by-address:', tls: mutual });

    const anonymous = redisRateLimits({ url: redis.url, tls: { ca } });
    // Redis ends the connection of a client that presented none. Under TLS 1.3 the client may have written its first
    // command by then, and hear only that the connection was reset.
    const certificateRequired = 'tlsv13 alert certificate required \\(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\\)';
    await expect(anonymous.init?.()).rejects.toThrow(new RegExp(`^Redis is not reachable at ${redis.url}: (${certificateRequired}|write ECONNRESET)$`));
    await anonymous.close?.();
  });

  it('is refused with a redis:// URL, which is not TLS', () => {
    for (const make of [redisBroker, redisRateLimits]) {
      expect(() => make({ url: 'redis://127.0.0.1:6379', tls: { ca } })).toThrow('`tls` needs a rediss:// URL; `url` is redis://, without TLS');
    }
  });
});
