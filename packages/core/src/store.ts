import type { Transaction } from 'kysely';
import type { HeraldEvent, NewEvent, PublishResult } from './envelope.js';
import type { NewSubscription, Subscription, SubscriptionChanges, SubscriptionStatus } from './subscription.js';

/** Which part of the log to read. */
export interface ReadOptions {
  /** Read events with a `seq` greater than this. */
  after: number;
  /** At most this many events. */
  limit: number;
  /** Only these types and patterns. @default every type */
  types?: readonly string[];
  /**
   * Only what this consumer may see: events addressed to it or to everyone (`''`: only those addressed to
   * everyone; see `visibleTo(principal)`). @default everything
   */
  visibleTo?: string;
}

/** Which subscriptions `subscriptions.list` gives, and how many. */
export interface SubscriptionListOptions {
  /** Only this consumer's. @default every consumer's */
  consumer?: string;
  /** Only those of this transport. @default every transport's */
  transport?: string;
  /** Only those in this status. @default every status */
  status?: SubscriptionStatus;
  /** Only those whose id sorts after this one: the last id of the previous page. @default from the first */
  after?: string;
  /** At most this many. @default all of them */
  limit?: number;
}

/** An event type registered over the API, as stored. */
export interface StoredEventType {
  name: string;
  description?: string;
  /** JSON Schema of the data. */
  schema?: Record<string, unknown>;
  /** Its own retention (e.g. `90d`), instead of the log's. */
  retention?: string;
  /** `subject`: beyond the retention, the newest event of each subject is kept. */
  compaction?: 'subject';
  createdAt: string;
}

export type Role = 'admin' | 'consumer';

/** An API key or stream token as stored: never the key itself, only its SHA-256. */
export interface ApiKeyRecord {
  id: string;
  role: Role;
  /** The consumer a `consumer` key is bound to. */
  consumer?: string;
  /** Hex SHA-256 of the key. */
  hash: string;
  /** What the key is for, in the words of whoever made it (1 to 100 characters). */
  name?: string;
  /** The id of the admin key that made it (`key_admin`: the environment's admin key); absent for a key made without a request. */
  createdBy?: string;
  createdAt: string;
  /** When it last authenticated a request, as often as the server records it (see `keys.markUsed`). */
  lastUsedAt?: string;
  revokedAt?: string;
  /** Stream tokens: when the token stops working. */
  expiresAt?: string;
  /** Stream tokens: the API key that issued it; revoking that key ends the token too. */
  parentId?: string;
  /** Stream tokens: the event types and patterns it is limited to. */
  types?: string[];
}

/**
 * The first and last `seq` the log holds; `oldest` is null while it is empty. Once retention pruned it,
 * `oldest` is the first `seq` from which the log is whole (older events that their type keeps, by a longer
 * retention or compaction, may still be read).
 */
export interface LogBounds {
  oldest: number | null;
  latest: number;
}

/**
 * The durable side of Herald: the event log, the catalog's API-registered types, subscriptions and
 * API keys. Implementations: the SQL store in this package (SQLite, PostgreSQL). What push transports
 * keep (their outbox of deliveries) is not here: `@herald/outbox` extends the SQL store with it.
 */
export interface Store {
  /** Creates or migrates the schema. Call once before anything else. */
  init(): Promise<void>;
  /** Finishes pending appends, then releases the database. */
  close(): Promise<void>;
  /**
   * Resolves when the database answers and takes writes (`/readyz` asks it). The SQL store rejects with
   * a `StoreUnavailableError` while its writes are refused, until a write succeeds again.
   */
  ping(): Promise<void>;

  /**
   * Appends events durably, giving each the next `seq`. Idempotent on `id`: an event whose id
   * is already in the log is not stored again, and its first result comes back with `created: false`.
   * Results are in the order of the input.
   */
  append(events: readonly NewEvent[]): Promise<PublishResult[]>;
  /**
   * Appends events in `transaction`, a kysely transaction of the app's own on the store's database:
   * they enter the log if it commits, and never if it rolls back. Results as `append`.
   * @default absent: the store takes no transaction of the app's (publishing with one throws)
   */
  appendIn?<DB>(transaction: Transaction<DB>, events: readonly NewEvent[]): Promise<PublishResult[]>;
  /** Events after `options.after`, in `seq` order. */
  read(options: ReadOptions): Promise<HeraldEvent[]>;
  bounds(): Promise<LogBounds>;

  readonly eventTypes: {
    list(): Promise<StoredEventType[]>;
    /** Inserts, or does nothing when the name is taken; true when inserted. */
    insert(eventType: StoredEventType): Promise<boolean>;
  };

  readonly subscriptions: {
    create(subscription: NewSubscription): Promise<Subscription>;
    get(id: string): Promise<Subscription | undefined>;
    /** In `id` order (generated ids sort by creation time), so that `after` and `limit` page through them. */
    list(options?: SubscriptionListOptions): Promise<Subscription[]>;
    update(id: string, changes: SubscriptionChanges): Promise<Subscription | undefined>;
    /**
     * Moves the subscription's cursor forward to `seq`, never back: true when it moved (false when the
     * subscription is gone or its cursor was at `seq` or past it). Does not count as a change (see `version`).
     */
    advanceCursor(id: string, seq: number): Promise<boolean>;
    /** True when there was one to delete. */
    delete(id: string): Promise<boolean>;
    /**
     * Counts the changes to what subscriptions match: creates, deletes, and updates of anything but
     * the cursor. Moves in the same transaction as the change.
     */
    version(): Promise<number>;
  };

  readonly keys: {
    /** Inserts, or replaces the key with the same id; a replaced key keeps its `createdAt`, and its `lastUsedAt` unless `key` has one. */
    put(key: ApiKeyRecord): Promise<void>;
    get(id: string): Promise<ApiKeyRecord | undefined>;
    list(): Promise<ApiKeyRecord[]>;
    /** Deletes stream tokens that expired before this time (RFC 3339); returns how many. */
    deleteExpired(before: string): Promise<number>;
    /** True when there was an unrevoked key to revoke. */
    revoke(id: string): Promise<boolean>;
    /**
     * Records that the key authenticated a request at `at` (RFC 3339): moves its `lastUsedAt` forward, never back.
     * Nothing happens to a key that is not stored.
     */
    markUsed(id: string, at: string): Promise<void>;
  };
}
