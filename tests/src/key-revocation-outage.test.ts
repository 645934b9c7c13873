import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sqliteStore } from '@herald/core';
import { redisBroker } from '@herald/redis';
import { createHerald } from '@herald/server';
import { testEventTypes } from '@herald/testkit';
import { websocket } from '@herald/websocket';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { tempFolder } from '../../packages/core/src/temp-folder.test-support.js';
import { ownRedis, waitFor } from './multi-node-cluster.js';

/** A node on the shared SQLite file, ringing through `redisUrl` and holding no rings while Redis is away. */
async function node(database: string, redisUrl: string, adminKey: string) {
  const herald = createHerald({
    store: sqliteStore({ path: database }),
    broker: redisBroker({ url: redisUrl, maxHeldRings: 0, maxReconnectDelay: 100 }),
    adminKey,
    env: {},
    logLevel: 'silent',
    eventTypes: testEventTypes,
    transports: [websocket()],
  });
  onTestFinished(() => herald.close());
  const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  return url;
}

describe('key revocation through a Redis outage', () => {
  it('a key revoked on one node while Redis is down closes its WebSocket on another node once Redis is back', async () => {
    const dir = tempFolder();
    const redis = await ownRedis();
    onTestFinished(() => redis.kill());
    const adminKey = `admin-${randomBytes(16).toString('hex')}`;
    const database = join(dir, 'herald.db');
    const a = await node(database, redis.url, adminKey);
    const b = await node(database, redis.url, adminKey);

    const created = await fetch(`${a}/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'consumer', consumer: 'acme' }),
    });
    const { id, key } = (await created.json()) as { id: string; key: string };
    const socket = new WebSocket(`${b.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
    onTestFinished(() => socket.terminate());
    let closed: number | undefined;
    socket.on('close', (code) => {
      closed = code;
    });
    await new Promise<void>((ready, fail) => {
      socket.once('error', fail);
      socket.on('message', (data) => {
        if ((JSON.parse(data.toString()) as { type: string }).type === 'ready') ready();
      });
    });

    await redis.kill();
    const revoked = await fetch(`${a}/v1/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminKey}` } });
    expect(revoked.status).toBe(204);
    // The ring of the revocation was lost (A holds none): B finds it in the store when it reconnects.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(closed).toBeUndefined();
    await redis.start();
    await waitFor(() => closed !== undefined, "B to close the revoked key's WebSocket", 15_000);
    expect(closed).toBe(4401);
  });
});
