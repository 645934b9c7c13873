import { defineRoute, type HeraldEvent, memoryStore, type Transport } from '@herald/core';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryTransport } from './memory-transport.js';
import { createTransportContext, type TestTransportContext } from './transport-context.js';
import { waitFor } from './wait-for.js';

const contexts: TestTransportContext[] = [];
afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
});

async function started(options: Parameters<typeof createTransportContext>[0] = {}): Promise<TestTransportContext> {
  const context = await createTransportContext(options);
  contexts.push(context);
  return context;
}

describe('createTransportContext', () => {
  it('runs a transport without a server: its subscriptions match what the bus publishes', async () => {
    const context = await started();
    const transport = memoryTransport();
    await transport.start(context);
    const subscription = await context.subscriptions.create({ consumer: 'acme', transport: 'memory', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
    const received: HeraldEvent[] = [];
    transport.attach(subscription.id, (event) => received.push(event));
    await context.bus.publish({ type: 'invoice.paid', data: { n: 1 } });
    const { event } = await context.bus.publish({ type: 'order.created', data: { n: 2 } });
    await waitFor(() => received.length === 1, 'the order event');
    expect(received.map((delivered) => delivered.id)).toEqual([event.id]);
    await transport.stop();
  });

  it('authenticates the keys it issues, tells of their revocation, and counts connections per key', async () => {
    const context = await started({ maxConnectionsPerKey: 1 });
    const { record, key } = await context.keys.create('consumer', 'acme');
    const principal = await context.authenticate(key);
    expect(principal).toMatchObject({ role: 'consumer', consumer: 'acme', keyId: record.id });
    await expect(context.authenticate(`${key}x`)).rejects.toThrow();
    const revoked: string[] = [];
    context.onKeyRevoked((keyId) => revoked.push(keyId));
    const release = context.connections.acquire(principal);
    expect(release).toBeTypeOf('function');
    expect(context.connections.acquire(principal)).toBeUndefined();
    release?.();
    expect(context.connections.acquire(principal)).toBeTypeOf('function');
    await context.keys.revoke(record.id);
    await waitFor(() => revoked.includes(record.id), 'the revocation');
    await expect(context.authenticate(key)).rejects.toThrow();
  });

  it('records what a transport mounts and reports, and aborts its signal on close', async () => {
    const context = await createTransportContext({ store: memoryStore(), env: { HERALD_TEST: 'yes' } });
    const transport: Transport = {
      name: 'recording',
      async start({ http, metrics, env }) {
        http.route(defineRoute({ method: 'GET', path: '/v1/recording', handle: () => ({ body: env.HERALD_TEST }) }));
        http.upgrade('/v1/recording/socket', () => {});
        metrics.delivered('delivered', 12);
        metrics.backlog(() => 3);
      },
      async stop() {},
    };
    await transport.start(context);
    expect(context.routes.map((route) => `${route.method} ${route.path}`)).toEqual(['GET /v1/recording']);
    expect([...context.upgrades.keys()]).toEqual(['/v1/recording/socket']);
    expect(context.delivered).toEqual([{ outcome: 'delivered', latencyMs: 12 }]);
    expect(await context.backlogs()).toEqual([3]);
    expect(context.signal.aborted).toBe(false);
    await context.close();
    expect(context.signal.aborted).toBe(true);
    await expect(context.store.ping()).rejects.toThrow('closed');
  });
});
