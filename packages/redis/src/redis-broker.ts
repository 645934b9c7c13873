import type { Broker, Unsubscribe } from '@herald/core';
import type { Redis } from 'ioredis';
import { connectAll, type RedisOptions, redisConnection, redisDefaults } from './redis-connection.js';

export interface RedisBrokerOptions extends RedisOptions {
  /** How long a ring may take to send before it is given up (the nodes then find the event by polling), in ms. @default 2000 */
  publishTimeout?: number;
  /** Rings kept while Redis is unreachable, sent once it is back; past this the oldest are dropped. @default 1000 */
  maxHeldRings?: number;
}

/**
 * A broker for several Herald nodes: rings go through Redis pub/sub to every node. Redis is only the
 * doorbell: after a lost connection (a Redis restart) it reconnects, subscribes again, sends the rings
 * it held, and tells the node to catch up from the Store (`onReconnect`), so a lost ring loses nothing.
 */
export function redisBroker(options: RedisBrokerOptions = {}): Broker {
  return new RedisBroker(options);
}

class RedisBroker implements Broker {
  /** How its connections are made, and what they log to. */
  readonly #redis: ReturnType<typeof redisDefaults>;
  readonly #publishTimeout: number;
  readonly #maxHeldRings: number;
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  readonly #reconnectListeners = new Set<() => void>();
  /** Rings that could not be sent while Redis was away, oldest first, by channel and message. */
  #held = new Map<string, [channel: string, message: string]>();
  #publisher?: Redis;
  #subscriber?: Redis;
  #closed = false;

  constructor(options: RedisBrokerOptions) {
    this.#redis = redisDefaults(options, 'redisBroker');
    this.#publishTimeout = options.publishTimeout ?? 2_000;
    this.#maxHeldRings = options.maxHeldRings ?? 1_000;
  }

  async init(): Promise<void> {
    if (this.#publisher) return;
    const publisher = this.#connection('publisher');
    const subscriber = this.#connection('subscriber');
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    subscriber.on('message', (channel: string, message: string) => this.#dispatch(channel, message));
    try {
      await connectAll([publisher, subscriber], this.#redis.url, this.#redis.connectTimeout);
    } catch (error) {
      this.#publisher = this.#subscriber = undefined;
      throw error;
    }
    publisher.on('ready', () => this.#sendHeld());
    subscriber.on('ready', () => void this.#resubscribe());
  }

  async publish(channel: string, message: string): Promise<void> {
    const publisher = this.#publisher;
    if (!publisher || this.#closed) return;
    if (publisher.status !== 'ready') return this.#hold(channel, message);
    try {
      await publisher.publish(this.#redis.prefix + channel, message);
    } catch (error) {
      this.#redis.logger?.warn({ err: error, channel }, 'a ring could not be sent to Redis; it is sent again once Redis answers');
      this.#hold(channel, message);
    }
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe> {
    let listeners = this.#listeners.get(channel);
    if (!listeners) {
      this.#listeners.set(channel, (listeners = new Set()));
      // While Redis is away the channel is subscribed on reconnection, with all the others.
      if (this.#subscriber?.status === 'ready') {
        await this.#subscriber.subscribe(this.#redis.prefix + channel).catch((error: unknown) => {
          this.#redis.logger?.warn({ err: error, channel }, 'subscribing failed; it is tried again when the connection to Redis is back');
        });
      }
    }
    const own = (message: string) => listener(message);
    listeners.add(own);
    return async () => {
      listeners.delete(own);
      if (listeners.size > 0 || this.#listeners.get(channel) !== listeners) return;
      this.#listeners.delete(channel);
      if (this.#subscriber?.status === 'ready') await this.#subscriber.unsubscribe(this.#redis.prefix + channel).catch(() => {});
    };
  }

  onReconnect(listener: () => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#reconnectListeners.clear();
    await Promise.all([this.#publisher, this.#subscriber].map((connection) => connection?.quit().catch(() => connection.disconnect())));
  }

  #connection(role: 'publisher' | 'subscriber'): Redis {
    // Commands are never queued while disconnected: a ring is held by this broker instead, and sent once.
    return redisConnection({ ...this.#redis, role, commandTimeout: this.#publishTimeout, closed: () => this.#closed });
  }

  #dispatch(prefixed: string, message: string): void {
    if (!prefixed.startsWith(this.#redis.prefix)) return;
    for (const listener of this.#listeners.get(prefixed.slice(this.#redis.prefix.length)) ?? []) {
      try {
        listener(message);
      } catch (error) {
        this.#redis.logger?.error({ err: error, channel: prefixed }, 'a broker listener threw');
      }
    }
  }

  #hold(channel: string, message: string): void {
    this.#held.set(`${channel}\n${message}`, [channel, message]);
    if (this.#held.size > this.#maxHeldRings) this.#held.delete(this.#held.keys().next().value as string);
  }

  /** Sends the rings held while Redis was away, in order. */
  #sendHeld(): void {
    const held = [...this.#held.values()];
    this.#held.clear();
    for (const [channel, message] of held) void this.publish(channel, message);
  }

  /**
   * The subscriber is (re)connected: Redis forgot its channels, and rings sent meanwhile were lost.
   * Subscribe again first, then tell the node to catch up, so nothing falls between the two.
   */
  async #resubscribe(): Promise<void> {
    const subscriber = this.#subscriber;
    if (!subscriber || this.#closed) return;
    const channels = [...this.#listeners.keys()].map((channel) => this.#redis.prefix + channel);
    try {
      if (channels.length > 0) await subscriber.subscribe(...channels);
    } catch (error) {
      // The connection broke again; the next 'ready' tries again.
      this.#redis.logger?.warn({ err: error }, 'subscribing again after reconnecting to Redis failed');
      return;
    }
    for (const listener of this.#reconnectListeners) {
      try {
        listener();
      } catch (error) {
        this.#redis.logger?.error({ err: error }, 'a reconnect listener threw');
      }
    }
  }
}
