import {
  actsWithKey,
  canAccess,
  type HeraldEvent,
  memoryStore,
  outsideScope,
  type Principal,
  takesEvent,
  type Transport,
  type TransportContext,
  visibleTo,
} from '@herald/core';
import { describe, expect, it } from 'vitest';
import { type MemoryTransport, memoryTransport } from './memory-transport.js';
import type { TestApp } from './test-app.js';
import { type ClientConnection, type ConnectRequest, ConnectionRefusedError, type Receiver, type TransportHarness } from './transport-harness.js';
import { runTransportSuite, transportSuiteCases } from './transport-suite.js';

/** A harness over a memory transport (or a broken variant with the same attach API). */
function harnessFor(create: () => MemoryTransport): TransportHarness {
  let current: MemoryTransport;
  return {
    transport: () => (current = create()),
    async receive(app: TestApp, { consumer, types }): Promise<Receiver> {
      const key = await app.consumerKey(consumer);
      const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types }, key);
      if (status !== 201) throw new Error(`creating a subscription answered ${status}`);
      const events: HeraldEvent[] = [];
      const detach = current.attach(body.id, (event) => events.push(event));
      return { subscriptionId: body.id, events, close: async () => void detach() };
    },
  };
}

runTransportSuite('memory', harnessFor(() => memoryTransport()));
runTransportSuite('memory, on a Herald whose store is memoryStore()', {
  ...harnessFor(() => memoryTransport()),
  // Read for each case's server: a store of its own.
  get options() {
    return { store: memoryStore() };
  },
});
runTransportSuite('memory, streaming', streamingHarness({ scope: true, revocation: true }));

/** Delivers every event of the subscribed types, ignoring status and addressing. */
function careless(): MemoryTransport {
  const inner = memoryTransport();
  const listeners = new Map<string, (event: HeraldEvent) => void>();
  let stop: (() => void) | undefined;
  return {
    ...inner,
    attach(id, listener) {
      listeners.set(id, listener);
      return () => listeners.delete(id);
    },
    async start(context: TransportContext) {
      stop = context.bus.onEvents((events) => {
        for (const event of events) {
          for (const subscription of context.subscriptions.match({ type: event.type }, 'memory')) listeners.get(subscription.id)?.(event);
        }
      });
    },
    async stop() {
      stop?.();
    },
  };
}

/** Swaps every two events of a subscription: the second is delivered before the first. */
function swapping(): MemoryTransport {
  const listeners = new Map<string, (event: HeraldEvent) => void>();
  const held = new Map<string, HeraldEvent>();
  let stop: (() => void) | undefined;
  const transport: Transport = {
    name: 'memory',
    async start(context) {
      stop = context.bus.onEvents((events) => {
        for (const event of events) {
          for (const { id } of context.subscriptions.match(event, 'memory')) {
            const first = held.get(id);
            if (!first) {
              held.set(id, event);
              continue;
            }
            held.delete(id);
            listeners.get(id)?.(event);
            listeners.get(id)?.(first);
          }
        }
      });
    },
    async stop() {
      stop?.();
    },
  };
  return {
    ...transport,
    attach(id, listener) {
      listeners.set(id, listener);
      return () => listeners.delete(id);
    },
  };
}

/** What a streaming transport checks; a broken one skips some. */
interface Checks {
  scope: boolean;
  revocation: boolean;
}

/**
 * A streaming transport in-process: clients connect by calling the harness, with the checks a real
 * one makes (authentication, consumer, scope, the connection limit, revocation), or some of them skipped.
 */
function streamingHarness(checks: Checks): TransportHarness {
  let context: TransportContext;
  let stopListening: (() => void) | undefined;
  const open = new Set<{ principal: Principal; wants: (event: HeraldEvent) => boolean; events: HeraldEvent[]; end(): void }>();
  const connect = async (_app: TestApp, request: ConnectRequest): Promise<ClientConnection> => {
    const principal = await context.authenticate(request.credential).catch((error: Error) => {
      throw new ConnectionRefusedError('unauthorized', error.message);
    });
    let types = request.types ?? [];
    let wants = (event: HeraldEvent) => takesEvent(event, types, visibleTo(principal));
    if (request.subscription !== undefined) {
      const id = request.subscription;
      const subscription = await context.subscriptions.get(id);
      if (!subscription || !canAccess(principal, subscription)) throw new ConnectionRefusedError('not-found', id);
      types = subscription.types;
      wants = (event) => context.subscriptions.matchedIds(event, 'memory').has(id);
    }
    if (checks.scope && outsideScope(principal.types, types).length > 0) throw new ConnectionRefusedError('forbidden', types.join(','));
    const release = context.connections.acquire(principal);
    if (!release) throw new ConnectionRefusedError('too-many-connections', principal.keyId);
    let ended!: () => void;
    const connection = {
      principal,
      wants,
      events: [] as HeraldEvent[],
      ended: new Promise<void>((resolve) => (ended = resolve)),
      end() {
        if (!open.delete(connection)) return;
        release();
        ended();
      },
      close: async () => connection.end(),
    };
    open.add(connection);
    return connection;
  };
  return {
    transport: () => ({
      name: 'memory',
      async start(started) {
        context = started;
        const stopDelivering = started.bus.onEvents((events) => {
          for (const connection of open) connection.events.push(...events.filter(connection.wants));
        });
        const stopRevoking = started.onKeyRevoked((keyId) => {
          for (const connection of open) if (checks.revocation && actsWithKey(connection.principal, keyId)) connection.end();
        });
        stopListening = () => {
          stopDelivering();
          stopRevoking();
        };
      },
      async stop() {
        stopListening?.();
        for (const connection of open) connection.end();
      },
    }),
    async receive(app, { consumer, types }): Promise<Receiver> {
      const key = await app.consumerKey(consumer);
      const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types }, key);
      if (status !== 201) throw new Error(`creating a subscription answered ${status}`);
      return { subscriptionId: body.id, ...(await connect(app, { credential: key, subscription: body.id })) };
    },
    connect,
  };
}

describe('the transport suite fails a broken transport', () => {
  const caseNamed = (harness: TransportHarness, name: string) => {
    const found = transportSuiteCases(harness).find((check) => check.name.includes(name));
    if (!found) throw new Error(`no case named ${name}`);
    return found;
  };

  it('that ignores consumer addressing', async () => {
    await expect(caseNamed(harnessFor(careless), 'consumer addressing').run()).rejects.toThrow(/what (alpha|beta) received/);
  });

  it('that lets a stream token stream beyond its types', async () => {
    const broken = streamingHarness({ scope: false, revocation: true });
    await expect(caseNamed(broken, "stream token's connections within its types").run()).rejects.toThrow(/with a token for order\.\*/);
  });

  it('that keeps the connections of a revoked key open', async () => {
    const broken = streamingHarness({ scope: true, revocation: false });
    await expect(caseNamed(broken, 'revoked key').run()).rejects.toThrow(/was not ended within/);
  }, 20_000);

  it('that delivers out of seq order', async () => {
    await expect(caseNamed(harnessFor(swapping), 'matching events').run()).rejects.toThrow(/the events received/);
  });
});
