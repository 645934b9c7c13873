import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  exactlyOnceInOrder,
  freshDatabase,
  type NodeProcess,
  type OwnRedis,
  ownRedis,
  type Published,
  publishMany,
  socketClient,
  startNodes,
  streamClient,
  waitFor,
  type WebhookReceiver,
  webhookReceiver,
} from './multi-node-cluster.js';

/**
 * Three nodes on a redis-server of this test's own, which it kills and starts again while A and B
 * publish: Redis is only the doorbell, so nothing published is lost and nothing arrives twice.
 */
describe('three Herald nodes through a Redis restart', () => {
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const nodes: NodeProcess[] = [];
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let redis: OwnRedis | undefined;
  let receiver: WebhookReceiver | undefined;

  beforeAll(async () => {
    redis = await ownRedis();
    database = await freshDatabase();
    const explicit = { HERALD_ADMIN_KEY: adminKey, MULTI_NODE_DATABASE: database.url, MULTI_NODE_REDIS: redis.url };
    // C is configured as the server app is, by HERALD_DATABASE and HERALD_BROKER.
    const fromEnv = { HERALD_ADMIN_KEY: adminKey, MULTI_NODE_FROM_ENV: '1', HERALD_DATABASE: database.url, HERALD_BROKER: redis.url };
    nodes.push(...(await startNodes([['A', explicit], ['B', explicit], ['C', fromEnv]])));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await receiver?.close();
    await database?.drop();
    await redis?.kill();
  }, 90_000);

  it('clients on C and a webhook receive everything A and B published before, during and after the restart, once each', async () => {
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const hooks = await webhookReceiver();
    receiver = hooks;
    const subscription = await api(c, adminKey, 'POST', '/v1/subscriptions', {
      transport: 'webhook',
      types: ['order.*'],
      config: { url: hooks.url },
      consumer: 'acme',
    });
    expect(subscription.status, JSON.stringify(subscription.body)).toBe(201);
    const socket = await socketClient(c, adminKey, ['order.*']);
    const stream = await streamClient(c, adminKey, ['order.*']);
    try {
      const published: Published[] = [];
      const publishing = Promise.all([
        publishMany(a, adminKey, { count: 400, concurrency: 4, into: published }),
        publishMany(b, adminKey, { count: 400, concurrency: 4, into: published }),
      ]);
      await waitFor(() => socket.events.length >= 100, 'the first events on C');
      await redis?.kill();
      const atKill = published.length;
      await waitFor(() => published.length >= atKill + 50, 'publishes while Redis is down', 60_000);
      const whileDown = published.length - atKill;
      await redis?.start();
      await publishing;

      expect(whileDown).toBeGreaterThanOrEqual(50);
      expect(published.length).toBe(800);
      await waitFor(() => socket.events.length >= published.length, 'every event over the WebSocket on C', 60_000);
      await waitFor(() => stream.events.length >= published.length, 'every event over SSE on C', 60_000);
      await waitFor(() => hooks.received.size >= published.length, 'every webhook delivered', 60_000);
      await new Promise((done) => setTimeout(done, 1_500));
      expect([...hooks.received.keys()].sort()).toEqual(published.map((event) => event.id).sort());
      expect([...hooks.received].filter(([, times]) => times.length > 1)).toEqual([]);
      expect(exactlyOnceInOrder(socket.events, published)).toEqual([]);
      expect(exactlyOnceInOrder(stream.events, published)).toEqual([]);
      expect(socket.events.length).toBe(published.length);
      expect(stream.events.length).toBe(published.length);
    } finally {
      socket.close();
      stream.close();
    }
  }, 180_000);
});
