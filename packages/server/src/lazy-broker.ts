import type { Broker } from '@herald/core';

/** A broker made on `init()` by `load`: lets the server pick a broker package only when it is configured. */
export function lazyBroker(load: () => Promise<Broker>): Broker {
  let broker: Broker | undefined;
  const loaded = (): Broker => {
    if (!broker) throw new Error('The broker is used before init()');
    return broker;
  };
  return {
    async init() {
      broker ??= await load();
      await broker.init?.();
    },
    publish: (channel, message) => loaded().publish(channel, message),
    subscribe: (channel, listener) => loaded().subscribe(channel, listener),
    onReconnect: (listener) => loaded().onReconnect?.(listener) ?? (() => {}),
    close: async () => broker?.close(),
  };
}
