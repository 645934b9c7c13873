/** Stops a broker subscription. */
export type Unsubscribe = () => Promise<void>;

/**
 * Rings every node. Only a doorbell: a node that misses a ring catches up from the Store, so a
 * broker may drop messages. Implementations: {@link memoryBroker} (one process) and `@herald/redis`.
 */
export interface Broker {
  /** Connects. @default nothing to do */
  init?(): Promise<void>;
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe>;
  /**
   * Calls `listener` each time the broker is back after losing its connection: rings sent meanwhile
   * were lost, so the listener catches up from the Store. Returns a function that stops it.
   * @default never called (a broker that cannot lose its connection)
   */
  onReconnect?(listener: () => void): () => void;
  close(): Promise<void>;
}
