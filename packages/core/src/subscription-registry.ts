import type { Broker, Unsubscribe } from './broker.js';
import type { HeraldEvent } from './envelope.js';
import { compileFilter, type EventPredicate } from './event-filter.js';
import { newId } from './ids.js';
import { isStorableText } from './names.js';
import type { Store, SubscriptionListOptions } from './store.js';
import { addressedTo, affectsMatching, type NewSubscription, type Subscription, type SubscriptionChanges } from './subscription.js';
import { SubscriptionMatcher } from './subscription-matcher.js';

const channel = 'herald:subscriptions';

/** A subscription as the matcher indexes it, with its filter compiled when it was indexed. */
interface Indexed {
  readonly id: string;
  readonly types: readonly string[];
  readonly subscription: Subscription;
  /** The compiled filter; {@link acceptAll} without one, so that the matching loop always makes the same kind of call. */
  readonly accepts: EventPredicate;
}

const acceptAll: EventPredicate = () => true;

/**
 * The durable subscriptions, stored in the Store and indexed in memory per transport. Changes
 * made on any node ring the others, which reload the subscription from the Store.
 */
export class SubscriptionRegistry {
  readonly #matchers = new Map<string, SubscriptionMatcher<Indexed>>();
  readonly #matchedIds = new WeakMap<HeraldEvent, Map<string, ReadonlySet<string>>>();
  readonly #store: Store;
  readonly #broker: Broker;
  readonly #removedListeners = new Set<(id: string) => void>();
  #unsubscribe?: Unsubscribe;
  #stopReconnect?: () => void;

  constructor(store: Store, broker: Broker) {
    this.#store = store;
    this.#broker = broker;
  }

  async start(): Promise<void> {
    this.#unsubscribe = await this.#broker.subscribe(channel, (id) => void this.#reloadOne(id));
    // Changes rung while the broker was away were lost: read them all again.
    this.#stopReconnect = this.#broker.onReconnect?.(() => void this.reload().catch(() => {}));
    await this.reload();
  }

  async stop(): Promise<void> {
    this.#stopReconnect?.();
    await this.#unsubscribe?.();
  }

  async create(input: Omit<NewSubscription, 'id'> & { id?: string }): Promise<Subscription> {
    const subscription = await this.#store.subscriptions.create({ ...input, id: input.id ?? newId('sub') });
    return this.#changed(subscription);
  }

  async update(id: string, changes: SubscriptionChanges): Promise<Subscription | undefined> {
    const subscription = await this.#store.subscriptions.update(id, changes);
    if (!subscription) return undefined;
    // A cursor alone changes nothing the other nodes match by (they read cursors from the store): no ring.
    if (!affectsMatching(changes)) {
      this.#index(subscription);
      return subscription;
    }
    return this.#changed(subscription);
  }

  /**
   * Moves a durable subscription's cursor forward (see `Store`): one write, no ring, no re-index, as
   * nothing reads cursors from this index (transports read them from the store when a connection attaches).
   */
  advanceCursor(id: string, seq: number): Promise<boolean> {
    return this.#store.subscriptions.advanceCursor(id, seq);
  }

  /**
   * Calls `listener` with the id of each subscription deleted: on this node as it is deleted, on the others
   * as its ring arrives (or a reload finds it gone); perhaps more than once. For the stream transports,
   * which tell the clients attached to it. Returns the function that stops it.
   */
  onRemoved(listener: (id: string) => void): () => void {
    this.#removedListeners.add(listener);
    return () => this.#removedListeners.delete(listener);
  }

  async delete(id: string): Promise<boolean> {
    const deleted = await this.#store.subscriptions.delete(id);
    this.#unindex(id);
    if (deleted) await this.#ring(id);
    return deleted;
  }

  get(id: string): Promise<Subscription | undefined> {
    return isStorableText(id) ? this.#store.subscriptions.get(id) : Promise.resolve(undefined);
  }

  /** See the store's `subscriptions.list`. */
  list(options?: SubscriptionListOptions): Promise<Subscription[]> {
    return this.#store.subscriptions.list(options);
  }

  /**
   * The ids of what {@link match} gives, worked out once per event object and transport: transports
   * ask it for each connection attached to a durable subscription.
   */
  matchedIds(event: HeraldEvent, transport: string): ReadonlySet<string> {
    let byTransport = this.#matchedIds.get(event);
    if (!byTransport) this.#matchedIds.set(event, (byTransport = new Map()));
    let ids = byTransport.get(transport);
    if (!ids) byTransport.set(transport, (ids = new Set(this.match(event, transport).map((subscription) => subscription.id))));
    return ids;
  }

  /** How many subscriptions of `transport` are active. */
  countActive(transport: string): number {
    let count = 0;
    for (const { subscription } of this.#matchers.get(transport)?.values() ?? []) if (subscription.status === 'active') count += 1;
    return count;
  }

  /**
   * The active subscriptions of `transport` that should receive `event`: of its type, addressed to their
   * consumer, and let through by their filter (which reads the members `event` has).
   */
  match(event: Pick<HeraldEvent, 'type' | 'consumer'>, transport: string): Subscription[] {
    const taken: Subscription[] = [];
    for (const { subscription, accepts } of this.#matchers.get(transport)?.match(event.type) ?? []) {
      if (subscription.status !== 'active' || !addressedTo(event, subscription.consumer)) continue;
      if (accepts(event as HeraldEvent)) taken.push(subscription);
    }
    return taken;
  }

  /**
   * What {@link match} gives before the filters: it depends on the event's type and consumer only, so a
   * fan-out works it out once per pair and applies each subscription's filter (`passesFilter`) per event.
   */
  candidates(event: Pick<HeraldEvent, 'type' | 'consumer'>, transport: string): Subscription[] {
    const taken: Subscription[] = [];
    for (const { subscription } of this.#matchers.get(transport)?.match(event.type) ?? []) {
      if (subscription.status === 'active' && addressedTo(event, subscription.consumer)) taken.push(subscription);
    }
    return taken;
  }

  async #changed(subscription: Subscription): Promise<Subscription> {
    this.#index(subscription);
    await this.#ring(subscription.id);
    return subscription;
  }

  async #ring(id: string): Promise<void> {
    await this.#broker.publish(channel, id).catch(() => {});
  }

  async #reloadOne(id: string): Promise<void> {
    let subscription: Subscription | undefined;
    try {
      subscription = await this.#store.subscriptions.get(id);
    } catch {
      // Kept as it was, rather than taken for deleted: the next reload (a fan-out's, a reconnection's) reads it again.
      return;
    }
    if (subscription) this.#index(subscription);
    else this.#unindex(id);
  }

  /** Reads the subscriptions (of one transport) from the store again, for changes whose ring this node missed. */
  async reload(transport?: string): Promise<void> {
    const stored = await this.#store.subscriptions.list(transport === undefined ? {} : { transport });
    const ids = new Set(stored.map((subscription) => subscription.id));
    for (const subscription of stored) this.#index(subscription);
    const matchers = transport === undefined ? [...this.#matchers.values()] : [this.#matchers.get(transport)].filter((m) => m !== undefined);
    const missing = matchers.flatMap((matcher) => [...matcher.values()]).filter(({ id }) => !ids.has(id));
    // Each on its own: one may have been created after the list was read.
    for (const { id } of missing) await this.#reloadOne(id);
  }

  #index(subscription: Subscription): void {
    let matcher = this.#matchers.get(subscription.transport);
    if (!matcher) this.#matchers.set(subscription.transport, (matcher = new SubscriptionMatcher()));
    const { id, types, filter } = subscription;
    matcher.set({ id, types, subscription, accepts: filter === undefined ? acceptAll : compileFilter(filter) });
  }

  #unindex(id: string): void {
    for (const matcher of this.#matchers.values()) matcher.delete(id);
    for (const listener of this.#removedListeners) listener(id);
  }
}
