import type { Broker } from './broker.js';

/** A broker for one process: a ring reaches the listeners of this process only. */
export function memoryBroker(): Broker {
  const channels = new Map<string, Set<(message: string) => void>>();
  return {
    async publish(channel, message) {
      for (const listener of channels.get(channel) ?? []) queueMicrotask(() => listener(message));
    },
    async subscribe(channel, listener) {
      let listeners = channels.get(channel);
      if (!listeners) channels.set(channel, (listeners = new Set()));
      const own = (message: string) => listener(message);
      listeners.add(own);
      return async () => {
        listeners.delete(own);
      };
    },
    async close() {
      channels.clear();
    },
  };
}
