import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { waitFor } from '../../testkit/src/wait-for.js';
import { startTlsProxy, testTls } from '../../webhook/src/test-tls.test-support.js';
import { type HeraldNode, spawnHeraldNode } from '../../testkit/src/herald-node.test-support.js';

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

/** A node of herald-node-main.test-support.ts, configured by `env` and logging at warn. */
const startNode = (env: Record<string, string | undefined>) =>
  spawnHeraldNode(new URL('./herald-node-main.test-support.ts', import.meta.url), [], { HERALD_LOG_LEVEL: 'warn', ...env });

/** A consumer key made on `node`: its id and the key. */
async function consumerKey(node: HeraldNode, consumer: string): Promise<{ id: string; key: string }> {
  const { status, body } = await node.api('POST', '/v1/keys', { role: 'consumer', consumer });
  expect(status).toBe(201);
  return body;
}

describe('Redis behind TLS (rediss://)', () => {
  it('rings the other node and counts its rate limits over rediss:// from nodes that trust the private authority (NODE_EXTRA_CA_CERTS); a node without it does not start, and says the certificate is why', async () => {
    // A TLS-terminating endpoint in front of the machine's Redis, with a certificate for localhost that the test authority signed.
    const proxy = await startTlsProxy({ host: machineRedis.hostname, port: Number(machineRedis.port || 6379) });
    onTestFinished(() => proxy.close());
    // The machine's Redis URL (its credentials and database, if any), over TLS to the proxy, by the name its certificate is for.
    const tlsUrl = new URL(machineRedis.href);
    tlsUrl.protocol = 'rediss:';
    tlsUrl.hostname = 'localhost';
    tlsUrl.port = String(proxy.port);
    const redisUrl = tlsUrl.href;
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

    // Without the authority: TLS refuses the certificate, and the node does not start, saying so.
    expect(await distrusting.exited).toBe(1);
    const failed = distrusting.logs.find((log) => log.msg === 'Herald failed to start') as { err: { message: string } } | undefined;
    const shownUrl = redisUrl.replace(/\/\/[^@/]*@/, '//***@');
    expect(failed?.err.message).toContain(`Redis is not reachable at ${shownUrl}: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`);
    // None of its handshakes completed: still only the trusting nodes' six.
    expect(proxy.servernames).toHaveLength(6);
  });
});
