import type { HeraldEvent, Transport, TransportContext } from '@herald/core';

/** A transport that delivers in-process, to listeners attached by subscription id. */
export interface MemoryTransport extends Transport {
  /** Calls `listener` with each event delivered on the subscription; returns a detach function. */
  attach(subscriptionId: string, listener: (event: HeraldEvent) => void): () => void;
}

/** The smallest real transport: matches durable subscriptions and calls in-process listeners. */
export function memoryTransport(name = 'memory'): MemoryTransport {
  const listeners = new Map<string, (event: HeraldEvent) => void>();
  let stopListening: (() => void) | undefined;
  return {
    name,
    attach(subscriptionId, listener) {
      listeners.set(subscriptionId, listener);
      return () => listeners.delete(subscriptionId);
    },
    async start(context: TransportContext) {
      stopListening = context.bus.onEvents((events) => {
        for (const event of events) {
          for (const subscription of context.subscriptions.match(event, name)) listeners.get(subscription.id)?.(event);
        }
      });
    },
    async stop() {
      stopListening?.();
    },
  };
}
