import { randomBytes } from 'node:crypto';
import { sqliteStore, StreamSessions, type Transport } from '@herald/core';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { memoryTransport } from '../../testkit/src/memory-transport.js';
import { restClient } from '../../testkit/src/test-app.js';
import { createHerald } from './create-herald.js';

/** A transport that only opens stream sessions, for an ad hoc subscription as a WebSocket or SSE client would make. */
function streamProbe(): Transport & { sessions(): StreamSessions } {
  let sessions: StreamSessions | undefined;
  return {
    name: 'probe',
    async start(context) {
      sessions = new StreamSessions(context, { transport: 'probe' });
    },
    async stop() {
      await sessions?.stop();
    },
    sessions() {
      if (!sessions) throw new Error('the probe has not started');
      return sessions;
    },
  };
}

/**
 * Two nodes on one SQLite file, each with its own memory broker: no ring passes between them, so the
 * store is the only way node B can learn of a type registered on node A.
 */
async function twoNodes() {
  const path = tempDatabase();
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const start = async () => {
    const store = sqliteStore({ path });
    const probe = streamProbe();
    const herald = createHerald({ store, adminKey, env: {}, logLevel: 'silent', transports: [memoryTransport(), probe] });
    onTestFinished(() => herald.close());
    const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
    return { herald, store, probe, ...restClient(url, adminKey) };
  };
  // One after the other: both migrate the same file.
  const a = await start();
  const b = await start();
  const register = async (name: string) => {
    const registered = await a.api('POST', '/v1/event-types', { name, schema: { type: 'object', properties: { n: { type: 'number' } } } });
    expect(registered.status).toBe(201);
    expect(b.herald.catalog.has(name)).toBe(false);
    return name;
  };
  return { a, b, adminKey, register };
}

const unknownType = { type: 'urn:herald:problem:unknown-event-type', status: 422 };

describe('an event type registered on one node, used at once on another that has not heard of it', () => {
  it('is published (202), by the REST API and in code', async () => {
    const { b, register } = await twoNodes();
    const type = await register('parcel.sent');
    expect(await b.api('POST', '/v1/events', { type, data: { n: 1 } })).toMatchObject({ status: 202 });

    const inCode = await register('parcel.lost');
    expect((await b.herald.publish({ type: inCode, data: { n: 2 } })).created).toBe(true);
  });

  it('gets a stream token (201), and an ad hoc stream subscription', async () => {
    const { b, register } = await twoNodes();
    const forToken = await register('parcel.sent');
    expect(await b.api('POST', '/v1/stream-tokens', { types: [forToken] })).toMatchObject({ status: 201, body: { types: [forToken] } });

    const forStream = await register('parcel.lost');
    const session = b.probe.sessions().open(await b.herald.keys.authenticate(await b.consumerKey('acme')));
    onTestFinished(() => session.close());
    await expect(session.subscribe({ types: [forStream] }).resolve()).resolves.toBeUndefined();
  });

  it('gets a durable subscription (201), and a PATCH of its types (200)', async () => {
    const { b, register } = await twoNodes();
    const type = await register('parcel.sent');
    const created = await b.api('POST', '/v1/subscriptions', { transport: 'memory', consumer: 'acme', types: [type] });
    expect(created).toMatchObject({ status: 201, body: { types: [type] } });

    const retyped = await register('parcel.lost');
    const patched = await b.api('PATCH', `/v1/subscriptions/${created.body.id}`, { types: [type, retyped] });
    expect(patched).toMatchObject({ status: 200, body: { types: [type, retyped] } });
  });

  it('is read by name (200)', async () => {
    const { b, register } = await twoNodes();
    const type = await register('parcel.sent');
    expect(await b.api('GET', `/v1/event-types/${type}`)).toMatchObject({ status: 200, body: { name: type, origin: 'api' } });
  });
});

describe('a type no node registered (a typo)', () => {
  it('is still refused with 422, reading the store once for a client that repeats it', async () => {
    const { b } = await twoNodes();
    const reads = vi.spyOn(b.store.eventTypes, 'list');
    for (let i = 0; i < 5; i++) {
      expect(await b.api('POST', '/v1/events', { type: 'parcel.snet', data: {} })).toMatchObject({ status: 422, body: unknownType });
    }
    expect(reads).toHaveBeenCalledTimes(1);
    expect(await b.api('POST', '/v1/stream-tokens', { types: ['parcel.snet'] })).toMatchObject({ status: 422, body: unknownType });
    expect(reads).toHaveBeenCalledTimes(1);

    // Misses that come together share the reloads: one running, and at most one more for those that came meanwhile.
    const together = await Promise.all(
      Array.from({ length: 10 }, () => b.api('POST', '/v1/subscriptions', { transport: 'memory', consumer: 'acme', types: ['parcel.recieved'] })),
    );
    for (const refused of together) expect(refused).toMatchObject({ status: 422, body: unknownType });
    expect(reads.mock.calls.length).toBeLessThanOrEqual(3);
  });

  it('of a known type reads nothing', async () => {
    const { a, b } = await twoNodes();
    await a.api('POST', '/v1/event-types', { name: 'parcel.sent' });
    expect(await b.api('POST', '/v1/events', { type: 'parcel.sent', data: {} })).toMatchObject({ status: 202 });
    const reads = vi.spyOn(b.store.eventTypes, 'list');
    for (let i = 0; i < 3; i++) expect(await b.api('POST', '/v1/events', { type: 'parcel.sent', data: {} })).toMatchObject({ status: 202 });
    expect(await b.api('POST', '/v1/stream-tokens', { types: ['parcel.*'] })).toMatchObject({ status: 201 });
    expect(reads).not.toHaveBeenCalled();
  });
});
