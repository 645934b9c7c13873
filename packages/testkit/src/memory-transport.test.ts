import type { HeraldEvent, Transport, TransportContext } from '@herald/core';
import { describe, expect, it } from 'vitest';
import { type MemoryTransport, memoryTransport } from './memory-transport.js';
import type { TestApp } from './test-app.js';
import { type Receiver, runTransportSuite, type TransportHarness, transportSuiteCases } from './transport-suite.js';

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

describe('the transport suite fails a broken transport', () => {
  const caseNamed = (harness: TransportHarness, name: string) => {
    const found = transportSuiteCases(harness).find((check) => check.name.includes(name));
    if (!found) throw new Error(`no case named ${name}`);
    return found;
  };

  it('that ignores consumer addressing', async () => {
    await expect(caseNamed(harnessFor(careless), 'consumer addressing').run()).rejects.toThrow(/what (alpha|beta) received/);
  });

  it('that delivers out of seq order', async () => {
    await expect(caseNamed(harnessFor(swapping), 'matching events').run()).rejects.toThrow(/the events received/);
  });
});
