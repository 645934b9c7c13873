import { randomBytes } from 'node:crypto';
import { defineEventType } from '@herald/core';
import { createHerald } from '@herald/server';
import { linger, waitFor } from '@herald/testkit';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { ProtocolClient } from './testing/protocol-client.js';
import { websocket } from './websocket-transport.js';

const limit = 1024 * 1024;
const eventCount = 400;
const payload = 'x'.repeat(64 * 1024);

it('closes a client that stops reading with 4429; the others keep receiving and server memory stays bounded', async () => {
  const transport = websocket({ maxBufferedAmount: limit, closeTimeout: 20_000 });
  const adminKey = randomBytes(16).toString('hex');
  const herald = createHerald({
    database: ':memory:',
    logLevel: 'silent',
    env: {},
    adminKey,
    eventTypes: [defineEventType('blob.stored', z.object({ n: z.number(), text: z.string() }))],
    transports: [transport],
  });
  const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const url = `ws://127.0.0.1:${port}/v1/ws`;
  const clients: ProtocolClient[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const client = await ProtocolClient.connect(url, { bearer: adminKey });
      await client.subscribe({ id: 'blobs', types: ['blob.*'] });
      clients.push(client);
    }
    const [slow, ...fast] = clients as [ProtocolClient, ...ProtocolClient[]];
    const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();

    let largest = 0;
    const sampler = setInterval(() => (largest = Math.max(largest, transport.stats().largestBufferedAmount)), 5);
    const started = Date.now();
    for (let n = 0; n < eventCount; n++) await herald.publish({ type: 'blob.stored', data: { n, text: payload } });
    const publishing = Date.now() - started;
    for (const client of fast) await waitFor(() => client.events('blobs').length === eventCount, 'the fast clients to receive everything', 30_000);
    clearInterval(sampler);

    const frame = Buffer.byteLength(JSON.stringify({ type: 'event', id: 'blobs', event: { data: { text: payload } } })) + 1024;
    expect(largest, 'the largest send buffer of one connection').toBeGreaterThan(limit / 2);
    expect(largest, 'the largest send buffer of one connection').toBeLessThanOrEqual(limit + frame);
    expect(transport.stats().connections, 'the slow connection is still flushing its close').toBe(3);
    expect(publishing, 'publishing 400 events with a stalled reader').toBeLessThan(20_000);

    socket.resume();
    expect(await slow.closed).toEqual({ code: 4429, reason: 'too slow: the send buffer is over its limit' });
    expect(slow.events('blobs').length).toBeLessThan(eventCount);
    await waitFor(() => transport.stats().connections === 2, 'the slow connection to be released');

    const { event } = await herald.publish({ type: 'blob.stored', data: { n: -1, text: 'after' } });
    for (const client of fast) await waitFor(() => client.events('blobs').some((received) => received.id === event.id), 'the fast clients to go on');
    await linger(100);
    for (const client of fast) expect(client.closedWith).toBeUndefined();
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await herald.close();
  }
});
