import { type HeraldEvent, newId, passesFilter, type Store, type Subscription, type SubscriptionRegistry } from '@herald/core';
import type { FanOut, NewDelivery, Outbox } from './outbox.js';
import type { PushConfig } from './push-transport.js';

export interface DispatcherOptions<TConfig extends PushConfig> {
  /** The fan-out position's name, and the transport whose subscriptions are matched. */
  transport: string;
  store: Store;
  outbox: Outbox;
  subscriptions: SubscriptionRegistry;
  /** Whether a subscription is one of the transport's. */
  ours(subscription: Subscription): subscription is Subscription<TConfig>;
  /** Whether a matching subscription gets deliveries (e.g. only verified endpoints). */
  accepts(subscription: Subscription<TConfig>): boolean;
  /** Events per fan-out. @default 500 */
  batchSize?: number;
  /** Events kept from the bus while the fan-out lags, before it reads the log instead. @default 10000 */
  stashLimit?: number;
}

/** A fan-out ready to commit, and the subscriptions that get deliveries from it. */
export interface PreparedFanOut<TConfig extends PushConfig> {
  fanOut: FanOut;
  /** The events it covers. */
  events: HeraldEvent[];
  subscriptions: Map<string, Subscription<TConfig>>;
}

/**
 * Turns the log into deliveries: reads the events after the durable fan-out position and makes one
 * delivery per matching subscription. The position moves in the transaction that inserts them, and
 * only from where this node saw it and while the subscriptions are as it matched them, so a crash, a
 * second node or a subscription made on another node never loses or doubles a delivery.
 */
export class OutboxDispatcher<TConfig extends PushConfig> {
  /** The transport whose subscriptions it matches. */
  readonly transport: string;
  readonly #options: DispatcherOptions<TConfig>;
  readonly #batchSize: number;
  readonly #stashLimit: number;
  /** Events from the bus with a seq above `#coveredFrom`, in order. */
  #stash: HeraldEvent[] = [];
  /** Every event after this seq is in the stash or already fanned out. */
  #coveredFrom = Number.POSITIVE_INFINITY;
  #position = 0;
  /** The version of the subscriptions the registry was last brought up to. */
  #subscriptionVersion?: number;
  #caughtUp = false;

  constructor(options: DispatcherOptions<TConfig>) {
    this.#options = options;
    this.transport = options.transport;
    this.#batchSize = options.batchSize ?? 500;
    this.#stashLimit = options.stashLimit ?? 10_000;
  }

  /** Loads the position (created at `latest` on the very first start, so the existing log is not fanned out). */
  async init(latest: number): Promise<void> {
    this.#position = await this.#options.outbox.position(this.#options.transport, latest);
    this.#coveredFrom = latest;
  }

  /** Whether the last fan-out found every event in the log fanned out, and no event came since. */
  get caughtUp(): boolean {
    return this.#caughtUp;
  }

  /** Takes the events the bus hands over, in seq order. */
  onEvents(events: readonly HeraldEvent[]): void {
    if (events.length > 0) this.#caughtUp = false;
    this.#stash.push(...events);
    if (this.#stash.length > this.#stashLimit) {
      this.#coveredFrom = (this.#stash.at(-1) as HeraldEvent).seq;
      this.#stash = [];
    }
  }

  /** The next fan-out, of `limit` events at most; undefined when every event in the log has its deliveries. */
  async next(now: number, limit = Number.POSITIVE_INFINITY): Promise<PreparedFanOut<TConfig> | undefined> {
    const from = this.#position;
    const size = Math.max(1, Math.min(this.#batchSize, limit));
    let events: HeraldEvent[];
    if (from >= this.#coveredFrom) {
      const start = this.#stash.findIndex((event) => event.seq > from);
      this.#stash = start === -1 ? [] : this.#stash.slice(start);
      events = this.#stash.slice(0, size);
    } else {
      events = await this.#options.store.read({ after: from, limit: size });
    }
    this.#caughtUp = events.length === 0;
    if (events.length === 0) return undefined;
    // A subscription created on another node is matched even before its ring arrives here: the commit checks the version.
    const subscriptionVersion = await this.#options.store.subscriptions.version();
    if (subscriptionVersion !== this.#subscriptionVersion) {
      await this.#options.subscriptions.reload(this.#options.transport);
      this.#subscriptionVersion = subscriptionVersion;
    }
    const deliveries: NewDelivery[] = [];
    const subscriptions = new Map<string, Subscription<TConfig>>();
    // Which subscriptions may take an event depends on its type and consumer only: matched once per pair in a
    // fan-out; their filters are then asked per event.
    const matched = new Map<string, Subscription<TConfig>[]>();
    const { ours, accepts } = this.#options;
    for (const event of events) {
      const key = event.consumer === undefined ? event.type : `${event.type}\n${event.consumer}`;
      let taking = matched.get(key);
      if (!taking) {
        taking = this.#options.subscriptions
          .candidates(event, this.#options.transport)
          .filter((subscription): subscription is Subscription<TConfig> => ours(subscription) && accepts(subscription));
        matched.set(key, taking);
        for (const subscription of taking) subscriptions.set(subscription.id, subscription);
      }
      for (const subscription of taking) {
        if (!passesFilter(subscription.filter, event)) continue;
        deliveries.push({
          id: newId('dlv'),
          subscriptionId: subscription.id,
          eventSeq: event.seq,
          eventId: event.id,
          nextAttemptAt: now,
        });
      }
    }
    return { fanOut: { name: this.#options.transport, from, to: (events.at(-1) as HeraldEvent).seq, deliveries, subscriptionVersion }, events, subscriptions };
  }

  /** Records where the position is after a commit (moved by this node, or found moved by another, or not moved as the subscriptions changed). */
  committed(position: number): void {
    this.#position = position;
  }
}
