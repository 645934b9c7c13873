import type { HeraldEvent, NewEvent, PublishResult } from './envelope.js';
import { matchesPattern } from './names.js';
import type { ApiKeyRecord, LogBounds, ReadOptions, Store, StoredEventType, SubscriptionListOptions } from './store.js';
import { affectsMatching, type NewSubscription, type Subscription, type SubscriptionChanges } from './subscription.js';

/**
 * What a {@link memoryStore} keeps: its log, event types, subscriptions and keys. Give the same one to a
 * later `memoryStore({ data })` to open again what an earlier store closed, as a file would be.
 */
export class MemoryStoreData {
  /** In `seq` order. */
  readonly events: HeraldEvent[] = [];
  readonly seqById = new Map<string, number>();
  lastSeq = 0;
  readonly eventTypes = new Map<string, StoredEventType>();
  readonly subscriptions = new Map<string, Subscription>();
  subscriptionVersion = 0;
  readonly keys = new Map<string, ApiKeyRecord>();
}

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /** What the store keeps, shared with the stores given the same one (one at a time). @default a new, empty one */
  data?: MemoryStoreData;
}

/**
 * A Store that keeps everything in this process's memory: for tests, demos and a single process that
 * may lose its log when it ends. It behaves as the SQL store does (the store suite checks both): `seq`
 * order, idempotent appends, cursors that only move forward. What it returns are copies, as a database's
 * rows would be: changing them changes nothing stored.
 */
export function memoryStore(options: MemoryStoreOptions = {}): Store {
  return new MemoryStore(options.data ?? new MemoryStoreData());
}

class MemoryStore implements Store {
  readonly #data: MemoryStoreData;
  #closed = false;

  constructor(data: MemoryStoreData) {
    this.#data = data;
  }

  /** The data, once the store is open: a closed store refuses everything, as a closed database would. */
  get #open(): MemoryStoreData {
    if (this.#closed) throw new Error('The memory store is closed');
    return this.#data;
  }

  async init(): Promise<void> {
    this.#open;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async ping(): Promise<void> {
    this.#open;
  }

  async append(events: readonly NewEvent[]): Promise<PublishResult[]> {
    const data = this.#open;
    // Every event is copied before any is stored, so that one that cannot be fails the whole call and stores nothing.
    const copies = events.map(storedEvent);
    return copies.map((copy) => {
      const seq = data.seqById.get(copy.id);
      if (seq !== undefined) {
        return { event: clone(eventAt(data, seq)), created: false };
      }
      data.lastSeq += 1;
      const { specversion, id, ...rest } = copy;
      const event: HeraldEvent = { specversion, id, seq: data.lastSeq, ...rest };
      data.events.push(event);
      data.seqById.set(event.id, event.seq);
      return { event: clone(event), created: true };
    });
  }

  async read({ after, limit, types, visibleTo }: ReadOptions): Promise<HeraldEvent[]> {
    const data = this.#open;
    const everyType = !types || types.length === 0 || types.includes('**');
    const found: HeraldEvent[] = [];
    for (let at = firstAfter(data.events, after); at < data.events.length && found.length < limit; at++) {
      const event = data.events[at] as HeraldEvent;
      if (visibleTo !== undefined && event.consumer !== undefined && event.consumer !== visibleTo) continue;
      if (!everyType && !types.some((pattern) => matchesPattern(pattern, event.type))) continue;
      found.push(clone(event));
    }
    return found;
  }

  async bounds(): Promise<LogBounds> {
    const { events } = this.#open;
    return { oldest: events[0]?.seq ?? null, latest: events.at(-1)?.seq ?? 0 };
  }

  readonly eventTypes: Store['eventTypes'] = {
    list: async () => [...this.#open.eventTypes.values()].sort((a, b) => compare(a.name, b.name)).map(clone),
    insert: async (eventType) => {
      const { eventTypes } = this.#open;
      if (eventTypes.has(eventType.name)) return false;
      eventTypes.set(eventType.name, clone(eventType));
      return true;
    },
  };

  readonly subscriptions: Store['subscriptions'] = {
    create: async (subscription: NewSubscription) => {
      const data = this.#open;
      if (data.subscriptions.has(subscription.id)) throw new Error(`A subscription with id ${subscription.id} already exists`);
      const now = new Date().toISOString();
      const created: Subscription = clone({ ...subscription, createdAt: now, updatedAt: now });
      data.subscriptions.set(created.id, created);
      data.subscriptionVersion += 1;
      return clone(created);
    },
    get: async (id) => {
      const found = this.#open.subscriptions.get(id);
      return found && clone(found);
    },
    list: async (options: SubscriptionListOptions = {}) =>
      [...this.#open.subscriptions.values()]
        .filter(
          (subscription) =>
            (options.consumer === undefined || subscription.consumer === options.consumer) &&
            (options.transport === undefined || subscription.transport === options.transport) &&
            (options.status === undefined || subscription.status === options.status) &&
            (options.after === undefined || subscription.id > options.after),
        )
        .sort((a, b) => compare(a.id, b.id))
        .slice(0, options.limit)
        .map(clone),
    update: async (id, changes: SubscriptionChanges) => {
      const data = this.#open;
      const current = data.subscriptions.get(id);
      if (!current) return undefined;
      // A change that is present but undefined leaves the field as it is.
      const given = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
      const updated: Subscription = clone({ ...current, ...given, updatedAt: new Date().toISOString() });
      if (changes.status !== undefined && changes.status !== 'disabled' && changes.disabledReason === undefined) {
        delete updated.disabledReason;
      }
      data.subscriptions.set(id, updated);
      if (affectsMatching(changes)) data.subscriptionVersion += 1;
      return clone(updated);
    },
    advanceCursor: async (id, seq) => {
      const subscription = this.#open.subscriptions.get(id);
      if (!subscription || subscription.cursor >= seq) return false;
      subscription.cursor = seq;
      subscription.updatedAt = new Date().toISOString();
      return true;
    },
    delete: async (id) => {
      const data = this.#open;
      const deleted = data.subscriptions.delete(id);
      if (deleted) data.subscriptionVersion += 1;
      return deleted;
    },
    version: async () => this.#open.subscriptionVersion,
  };

  readonly keys: Store['keys'] = {
    put: async (key) => {
      const { keys } = this.#open;
      // As an upsert: a replaced key keeps when it was first created, and when it was last used.
      const replaced = keys.get(key.id);
      keys.set(key.id, clone({ ...key, createdAt: replaced?.createdAt ?? key.createdAt, lastUsedAt: key.lastUsedAt ?? replaced?.lastUsedAt }));
    },
    get: async (id) => {
      const found = this.#open.keys.get(id);
      return found && clone(found);
    },
    list: async () => [...this.#open.keys.values()].sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.id, b.id)).map(clone),
    deleteExpired: async (before) => {
      const { keys } = this.#open;
      let deleted = 0;
      for (const [id, key] of keys) {
        if (key.expiresAt !== undefined && key.expiresAt < before) {
          keys.delete(id);
          deleted += 1;
        }
      }
      return deleted;
    },
    revoke: async (id) => {
      const key = this.#open.keys.get(id);
      if (!key || key.revokedAt !== undefined) return false;
      key.revokedAt = new Date().toISOString();
      return true;
    },
    markUsed: async (id, at) => {
      const key = this.#open.keys.get(id);
      if (key && (key.lastUsedAt === undefined || key.lastUsedAt < at)) key.lastUsedAt = at;
    },
  };
}

/** A copy as JSON keeps it: what the SQL store would read back (fields left undefined are absent). */
function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The event as the log keeps it, in the SQL store's field order; throws when its data is not JSON. */
function storedEvent(event: NewEvent): Omit<HeraldEvent, 'seq'> {
  return clone({
    specversion: '1.0' as const,
    id: event.id,
    type: event.type,
    source: event.source,
    subject: event.subject,
    time: event.time,
    datacontenttype: event.datacontenttype,
    data: event.data ?? null,
    consumer: event.consumer,
    traceparent: event.traceparent,
    tracestate: event.tracestate,
  });
}

/** The position in `events` (in `seq` order) of the first event after `seq`. */
function firstAfter(events: readonly HeraldEvent[], seq: number): number {
  let low = 0;
  let high = events.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((events[middle] as HeraldEvent).seq <= seq) low = middle + 1;
    else high = middle;
  }
  return low;
}

function eventAt(data: MemoryStoreData, seq: number): HeraldEvent {
  return data.events[firstAfter(data.events, seq - 1)] as HeraldEvent;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
