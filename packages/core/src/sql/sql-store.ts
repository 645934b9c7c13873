import { type Kysely, type RawBuilder, type Selectable, sql, type Transaction } from 'kysely';
import { setTimeout as delay } from 'node:timers/promises';
import type { HeraldEvent, NewEvent, PublishResult } from '../envelope.js';
import { StoreUnavailableError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { matchesPattern } from '../names.js';
import type { ApiKeyRecord, LogBounds, ReadOptions, Role, Store, StoredEventType, SubscriptionListOptions } from '../store.js';
import type { EventFilter } from '../event-filter.js';
import { affectsMatching, type Subscription, type SubscriptionChanges, type SubscriptionStatus } from '../subscription.js';
import { migrate, runMigrations } from './migrations.js';
import type { ApiKeysTable, EventRow, EventsTable, HeraldDatabase, SubscriptionsTable } from './schema.js';
import { errorCode, type SqlFlavor } from './sql-flavor.js';
import type { RetentionRules } from '../log-retention.js';
import { type LogHold, logFloor, type PruneResult, SqlLogPruner } from './log-prune.js';
import { defaultLogPartitionSize, isMissingPartition, LogPartitionMaker } from './log-partitions.js';
import { logBytes } from './log-size.js';
import { ManyRowInsert } from './many-row-insert.js';
import type { SqlStoreContext, SqlStoreExtension } from './sql-extension.js';
import { pingStatement } from './refusing-driver.js';
import { bumpSubscriptionVersion, subscriptionVersion } from './subscription-version.js';
import { WriteGate } from './write-gate.js';

/** The longest of the doubling waits of a read whose end of the log is held back, in ms (1 + 2 + ... + 256: about half a second). */
const maxHeldBackWait = 256;
/** How many times an append that found no partition for its seqs is run, partitions made before each retry. */
const partitionTries = 8;

/** Types read as one index range each; more are read with one filtered scan of the log (SQLite allows 500 parts in a compound select). */
const maxTypeRanges = 64;

/** Rows per INSERT, well under every dialect's bound-parameter limit. */
const insertChunk = 500;

/** How long `init` waits for a lock held elsewhere, in ms: a migration may wait longer than a request. */
const initLockTimeout = 30_000;

/**
 * What the write probe commits, and then deletes: 64 KiB, more than most writes, so that a store that
 * takes it has room for them (a small probe can fit where a failed write had already grown the file).
 */
const probePad = '.'.repeat(64 * 1024);

export interface SqlStoreOptions {
  /** How long a write waits, in ms, for a lock held by another connection (see `WriteGate`). @default 1000 */
  lockTimeout?: number;
  /** Told when the store starts refusing writes, and when it takes them again. @default silentLogger */
  logger?: Logger;
  /**
   * PostgreSQL: seqs per partition of the log (from 1,000 to 100,000,000). Pruning drops a partition once
   * all of it is beyond the retention; see docs/guides/retention.md. Ignored on SQLite. @default 100_000
   */
  logPartitionSize?: number;
}

interface PendingAppend {
  events: readonly NewEvent[];
  /** The events as rows, serialised when appended, so one that cannot be fails alone rather than its whole group. */
  rows: EventRow[];
  resolve(results: PublishResult[]): void;
  reject(error: unknown): void;
  /** When it was asked for (ms): it waits for a lock held elsewhere from then on. */
  since: number;
}

/**
 * The Store on kysely, shared by SQLite and PostgreSQL. Appends that arrive while another commit
 * is being prepared or is in flight are committed together in one transaction (group commit). Every
 * write goes through a {@link WriteGate}: a write the database refuses is a 503 `StoreUnavailableError`,
 * and `ping` fails until the store takes writes again. Extensions (`extend`) add tables of their own.
 */
export class SqlStore implements Store {
  readonly #db: Kysely<HeraldDatabase>;
  readonly #flavor: SqlFlavor;
  readonly #gate: WriteGate;
  readonly #extensions = new Map<SqlStoreExtension<unknown>, Promise<unknown>>();
  #pending: PendingAppend[] = [];
  #flushing?: Promise<void>;
  readonly #insertEvents: EventInsert;
  readonly #logHolds: LogHold[] = [];
  #pruner?: SqlLogPruner;
  readonly #logger: Logger;
  /** PostgreSQL: makes the log's partitions ahead of the appends. */
  readonly #partitions?: LogPartitionMaker;

  constructor(db: Kysely<HeraldDatabase>, flavor: SqlFlavor, options: SqlStoreOptions = {}) {
    this.#db = db;
    this.#flavor = flavor;
    this.#insertEvents = eventInsert();
    this.#logger = options.logger ?? silentLogger;
    this.#gate = new WriteGate(flavor, options.lockTimeout ?? 1000, this.#logger);
    if (flavor.name === 'postgres') this.#partitions = new LogPartitionMaker(db, options.logPartitionSize ?? defaultLogPartitionSize);
  }

  get flavor(): SqlFlavor['name'] {
    return this.#flavor.name;
  }

  async init(): Promise<void> {
    await this.#migrating((db) => migrate(db, this.#flavor));
    await this.#partitions?.ensure();
  }

  /**
   * Runs migrations through the write gate. On SQLite they hold the database's write lock from the first
   * read of their history to their last step (kysely takes no lock there, and runs them outside a
   * transaction), so that processes starting on one file at once migrate it one after the other, and a
   * failed step leaves nothing half done; on PostgreSQL, kysely's own lock does that.
   */
  #migrating(run: (db: Kysely<unknown>) => Promise<void>): Promise<void> {
    const db = this.#db as Kysely<unknown>;
    // Quiet: a store that cannot start says so and why as its start fails.
    return this.#gate.run(() => (this.#flavor.name === 'sqlite' ? withWriteLock(db, run) : run(db)), Date.now(), initLockTimeout, { quiet: true });
  }

  /**
   * The extension on this store, made once: its migrations run (after `init`, with their own history)
   * the first time it is asked for, and every later call gets the same one.
   */
  extend<T>(extension: SqlStoreExtension<T>): Promise<T> {
    let extended = this.#extensions.get(extension) as Promise<T> | undefined;
    if (!extended) {
      const context: SqlStoreContext = {
        db: this.#db,
        flavor: this.#flavor,
        gate: this.#gate,
        rows: { event: toEvent, subscription: toSubscription },
        holdLog: (hold) => void this.#logHolds.push(hold),
      };
      const tables = { table: `herald_${extension.name}_migration`, lockTable: `herald_${extension.name}_migration_lock` };
      extended = this.#migrating((db) => runMigrations(db, extension.migrations(this.#flavor), tables)).then(() => extension.create(context));
      // A failed migration is tried again by the next call.
      extended.catch(() => this.#extensions.delete(extension));
      this.#extensions.set(extension, extended);
    }
    return extended;
  }

  async close(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    await this.#db.destroy();
  }

  /** Fails while the store refuses writes: then it tries a write of its own, whose success ends that. */
  async ping(): Promise<void> {
    await this.#db.executeQuery(pingStatement);
    if (!this.#gate.refused) return;
    await this.#gate.probe(async () => {
      // Committed, so that it is written out (deleted in the same transaction, most of it would never be).
      await this.#db.insertInto('herald_write_probe').values({ pad: probePad }).execute();
      await this.#db.deleteFrom('herald_write_probe').execute();
    });
  }

  append(events: readonly NewEvent[]): Promise<PublishResult[]> {
    if (events.length === 0) return Promise.resolve([]);
    let rows: EventRow[];
    try {
      rows = events.map(fromEvent);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ events, rows, resolve, reject, since: Date.now() });
      if (!this.#flushing) this.#flushing = this.#flushSoon();
    });
  }

  /** Lets the appends of this turn of the event loop gather, then commits them; repeats while more arrived. */
  async #flushSoon(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#pending.length > 0) {
      const group = this.#pending;
      this.#pending = [];
      try {
        await this.#commit(group);
      } catch (error) {
        if (group.length === 1 || error instanceof StoreUnavailableError) {
          for (const pending of group) pending.reject(error);
          continue;
        }
        // Rows of one append that the database refused (input the routes did not catch) fail that append alone.
        for (const pending of group) await this.#commit([pending]).catch((alone: unknown) => pending.reject(alone));
      }
    }
    this.#flushing = undefined;
  }

  /** Appends the group in one commit and resolves its appends; or throws, with nothing of the group stored. */
  async #commit(group: readonly PendingAppend[]): Promise<void> {
    const events = group.flatMap((p) => p.events);
    const rows = group.flatMap((p) => p.rows);
    // PostgreSQL appends up to a chunk of rows in one statement, which needs no transaction around it.
    const oneStatement = this.#flavor.appendRows !== undefined && rows.length <= (this.#flavor.appendChunk ?? 0);
    const write = () =>
      oneStatement
        ? insertEvents(this.#db, events, rows, this.#insertEvents, this.#flavor)
        : this.#db.transaction().execute((trx) => insertEvents(trx, events, rows, this.#insertEvents, this.#flavor));
    const results = await this.#gate.run(() => this.#withPartitions(write, rows.length), (group[0] as PendingAppend).since);
    let at = 0;
    for (const pending of group) {
      pending.resolve(results.slice(at, at + pending.events.length));
      at += pending.events.length;
    }
  }

  /**
   * Runs an append; on PostgreSQL, makes the partitions it found missing and runs it again (up to
   * {@link partitionTries} times in all), and makes more in the background once its seqs come near the end
   * of the last one.
   */
  async #withPartitions(write: () => Promise<PublishResult[]>, rows: number): Promise<PublishResult[]> {
    const partitions = this.#partitions;
    if (!partitions) return write();
    // A group larger than a partition would not fit: its partitions are made first.
    if (rows > partitions.size && partitions.endsNear(rows)) await partitions.ensure(rows);
    let results: PublishResult[] | undefined;
    // Other appends draw seqs while partitions are made, and may pass the new end first: each try makes
    // twice as many seqs' worth past the last drawn as the one before.
    for (let tries = 1; results === undefined; tries++) {
      try {
        results = await write();
      } catch (error) {
        if (!isMissingPartition(error) || tries === partitionTries) throw error;
        await partitions.ensure(Math.max(rows, partitions.size * 2 ** (tries - 1)));
      }
    }
    partitions.appended(results.reduce((max, result) => Math.max(max, result.event.seq), 0));
    if (partitions.endsNear()) {
      partitions.ensure().catch((error: unknown) => this.#logger.warn({ err: error }, "making the log's next partitions failed; trying again at the next append"));
    }
    return results;
  }

  /**
   * On PostgreSQL the end of the log may be held back a moment, while a transaction that drew an older
   * `seq` is in flight: then the read waits for it a little (up to about half a second), so that what an append
   * just committed is read at once, and returns what it may read by then.
   */
  async read(options: ReadOptions): Promise<HeraldEvent[]> {
    let found: HeraldEvent[] = [];
    for (let wait = 1; ; wait *= 2) {
      // Each attempt goes on from what the last one found.
      const after = found.at(-1)?.seq ?? options.after;
      const read = await this.#readDecided({ ...options, after, limit: options.limit - found.length });
      // Not push(...): a page of a few hundred thousand events would overflow the stack as arguments.
      found = found.length === 0 ? read.found : found.concat(read.found);
      if (!read.heldBack || found.length === options.limit || wait > maxHeldBackWait) return found;
      await delay(wait);
    }
  }

  /** Reads up to the first row that may not be read yet (`heldBack`: there was one). */
  async #readDecided({ after, limit, types, visibleTo }: ReadOptions): Promise<{ found: HeraldEvent[]; heldBack: boolean }> {
    // `**` matches every type: no filter at all.
    const filter = types && types.length > 0 && !types.includes('**') ? typeFilter(types) : undefined;
    const exact = filter?.exactOnly ? [...new Set(filter.sql?.exact)] : undefined;
    if (exact && exact.length <= maxTypeRanges && limit > 0) return this.#readTypes(after, limit, exact, visibleTo);
    const found: HeraldEvent[] = [];
    let cursor = after;
    while (found.length < limit) {
      let query = this.#db
        .selectFrom('herald_events')
        .selectAll()
        .$if(this.#flavor.decidedRow !== undefined, (qb) => qb.select((this.#flavor.decidedRow as RawBuilder<boolean>).as('decided')))
        .where('seq', '>', cursor)
        .orderBy('seq')
        .limit(limit);
      if (visibleTo !== undefined) {
        query = query.where((eb) => eb.or([eb('consumer', 'is', null), eb('consumer', '=', visibleTo)]));
      }
      if (filter?.sql) {
        const { exact, prefixes } = filter.sql;
        query = query.where((eb) =>
          eb.or([
            ...(exact.length > 0 ? [eb('type', 'in', exact)] : []),
            ...prefixes.map((prefix) => sql<boolean>`${sql.ref('type')} like ${`${escapeLike(prefix)}%`} escape '\\'`),
          ]),
        );
      }
      const rows = await query.execute();
      for (const row of rows) {
        if (row.decided === false) return { found, heldBack: true };
        cursor = Number(row.seq);
        // Checked on the row, so that only the events kept are parsed.
        if (!filter || filter.exactOnly || types?.some((pattern) => matchesPattern(pattern, row.type))) {
          found.push(toEvent(row));
          if (found.length === limit) break;
        }
      }
      if (rows.length < limit || filter === undefined || filter.exactOnly) break;
    }
    return { found, heldBack: false };
  }

  /**
   * Events of these exact types: one index range (type, seq) per type, each at most `limit` long, merged in
   * `seq` order, up to the first row that may not be read yet (as `#readDecided`). A page costs the same
   * whatever the size of the log or the share of other types in it.
   */
  async #readTypes(after: number, limit: number, names: readonly string[], visibleTo: string | undefined): Promise<{ found: HeraldEvent[]; heldBack: boolean }> {
    // Only seqs from the ranges (the index holds them); the rows of the page alone are read.
    const ranges = names.map(
      (name, at) =>
        sql`select seq from (select seq from herald_events where type = ${name} and seq > ${after}${
          visibleTo !== undefined ? sql` and (consumer is null or consumer = ${visibleTo})` : sql``
        } order by seq limit ${limit}) as ${sql.ref(`r${at}`)}`,
    );
    const page = sql`select seq from (${sql.join(ranges, sql` union all `)}) as ranges order by seq limit ${limit}`;
    const decided = this.#flavor.decidedRow ? sql`, ${this.#flavor.decidedRow} as decided` : sql``;
    const query = sql<Selectable<EventsTable> & { decided?: boolean }>`select *${decided} from herald_events where seq in (${page}) order by seq`;
    const found: HeraldEvent[] = [];
    for (const row of (await query.execute(this.#db)).rows) {
      if (row.decided === false) return { found, heldBack: true };
      found.push(toEvent(row));
    }
    return { found, heldBack: false };
  }

  /**
   * `latest` is the last `seq` that may be read (see `read`), and waits as `read` does. `oldest` is past the
   * log's floor once it was pruned (see `prune`): the events a type keeps below it do not count.
   */
  async bounds(): Promise<LogBounds> {
    for (let wait = 1; ; wait *= 2) {
      const [oldest, latest, floor] = await Promise.all([
        this.#db.selectFrom('herald_events').select((eb) => eb.fn.min('seq').as('seq')).executeTakeFirst(),
        this.#lastSeq(true),
        logFloor(this.#db),
      ]);
      if (wait > maxHeldBackWait || !(await this.#heldBack(latest))) {
        if (floor > 0) return { oldest: floor + 1, latest: Math.max(latest, floor) };
        return { oldest: oldest?.seq == null ? null : Number(oldest.seq), latest };
      }
      await delay(wait);
    }
  }

  /** The last `seq` in the log; `decided`: the last that may be read (see `SqlFlavor.decidedRow`). 0 when there is none. */
  async #lastSeq(decided: boolean): Promise<number> {
    const row = await this.#db
      .selectFrom('herald_events')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .$if(decided && this.#flavor.decidedRow !== undefined, (qb) => qb.where(this.#flavor.decidedRow as RawBuilder<boolean>))
      .executeTakeFirst();
    return row?.seq == null ? 0 : Number(row.seq);
  }

  /** Whether committed rows at the end of the log are held back (PostgreSQL: they wait for an older transaction in flight). */
  async #heldBack(decidedLatest: number): Promise<boolean> {
    return this.#flavor.decidedRow !== undefined && (await this.#lastSeq(false)) > decidedLatest;
  }

  /**
   * Appends events in `transaction`, a transaction of the app's own on this store's database: they are
   * in the log when it commits, and never when it rolls back. No group commit and no write gate: the
   * app's transaction is the app's, and what fails in it is the app's to handle. Results as `append`.
   */
  async appendIn<DB>(transaction: Transaction<DB>, events: readonly NewEvent[]): Promise<PublishResult[]> {
    if (events.length === 0) return [];
    const rows = events.map(fromEvent);
    return insertEvents(transaction as unknown as Kysely<HeraldDatabase>, events, rows, this.#insertEvents, this.#flavor).catch((error: unknown) => {
      throw elsewhereError(error) ?? error;
    });
  }

  /**
   * The store's kysely instance, for an app's own tables and transactions on the same database (see
   * `appendIn`). On SQLite, it is Herald's one connection: a transaction of the app's waits for Herald's
   * writes and Herald's wait for it, so that no write ever finds the file locked.
   */
  get database(): Kysely<Record<never, never>> {
    return this.#db as unknown as Kysely<Record<never, never>>;
  }

  /**
   * Prunes one round of the log by `rules` (at most `batchSize` events looked at per rule, each delete its own
   * short transaction), never an event an extension holds (`SqlStoreContext.holdLog`) nor the newest one.
   * @param now ms since the epoch, for the retentions.
   */
  prune(rules: RetentionRules, now = Date.now(), batchSize = 200): Promise<PruneResult> {
    this.#pruner ??= new SqlLogPruner(this.#db, this.#flavor, this.#gate, this.#logHolds);
    return this.#pruner.prune(rules, now, batchSize);
  }

  /** How many events the log holds, and how many bytes it takes (SQLite: the database file's pages in use). */
  async logSize(): Promise<{ events: number; bytes: number }> {
    const row = await this.#db
      .selectFrom('herald_events')
      .select((eb) => eb.fn.countAll().as('events'))
      .executeTakeFirst();
    return { events: Number(row?.events ?? 0), bytes: await logBytes(this.#db, this.#flavor) };
  }

  readonly eventTypes = {
    list: async (): Promise<StoredEventType[]> => {
      const rows = await this.#db.selectFrom('herald_event_types').selectAll().orderBy('name').execute();
      return rows.map((row) => ({
        name: row.name,
        ...(row.description !== null ? { description: row.description } : {}),
        ...(row.schema !== null ? { schema: JSON.parse(row.schema) as Record<string, unknown> } : {}),
        ...(row.retention !== null ? { retention: row.retention } : {}),
        ...(row.compaction !== null ? { compaction: row.compaction as 'subject' } : {}),
        createdAt: row.created_at,
      }));
    },
    insert: async (eventType: StoredEventType): Promise<boolean> => {
      const inserted = await this.#gate.run(() =>
        this.#db
          .insertInto('herald_event_types')
          .values({
            name: eventType.name,
            description: eventType.description ?? null,
            schema: eventType.schema ? JSON.stringify(eventType.schema) : null,
            retention: eventType.retention ?? null,
            compaction: eventType.compaction ?? null,
            created_at: eventType.createdAt,
          })
          .onConflict((oc) => oc.column('name').doNothing())
          .executeTakeFirst(),
      );
      return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
    },
  };

  readonly subscriptions = {
    create: async (subscription: Omit<Subscription, 'createdAt' | 'updatedAt'>): Promise<Subscription> => {
      const now = new Date().toISOString();
      const created: Subscription = { ...subscription, createdAt: now, updatedAt: now };
      await this.#transaction(async (trx) => {
        await trx.insertInto('herald_subscriptions').values(fromSubscription(created)).execute();
        await bumpSubscriptionVersion(trx);
      });
      return created;
    },
    get: async (id: string): Promise<Subscription | undefined> => {
      const row = await this.#db.selectFrom('herald_subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toSubscription(row);
    },
    list: async (options: SubscriptionListOptions = {}): Promise<Subscription[]> => {
      let query = this.#db.selectFrom('herald_subscriptions').selectAll().orderBy('id');
      if (options.consumer !== undefined) query = query.where('consumer', '=', options.consumer);
      if (options.transport !== undefined) query = query.where('transport', '=', options.transport);
      if (options.status !== undefined) query = query.where('status', '=', options.status);
      if (options.after !== undefined) query = query.where('id', '>', options.after);
      if (options.limit !== undefined) query = query.limit(options.limit);
      return (await query.execute()).map(toSubscription);
    },
    update: async (id: string, changes: SubscriptionChanges): Promise<Subscription | undefined> => {
      return this.#transaction(async (trx) => {
        const row = await trx.selectFrom('herald_subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
        if (!row) return undefined;
        // A change that is present but undefined leaves the field as it is (rather than blanking it in the result).
        const given = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
        const updated = { ...toSubscription(row), ...given, updatedAt: new Date().toISOString() };
        if (changes.status !== undefined && changes.status !== 'disabled' && changes.disabledReason === undefined) {
          delete updated.disabledReason;
        }
        if (changes.filter === null) delete updated.filter;
        const { id: _id, created_at: _created, ...values } = fromSubscription(updated);
        await trx.updateTable('herald_subscriptions').set(values).where('id', '=', id).execute();
        if (affectsMatching(changes)) await bumpSubscriptionVersion(trx);
        return updated;
      });
    },
    advanceCursor: async (id: string, seq: number): Promise<boolean> => {
      const result = await this.#gate.run(() =>
        this.#db
          .updateTable('herald_subscriptions')
          .set({ cursor: seq, updated_at: new Date().toISOString() })
          .where('id', '=', id)
          .where('cursor', '<', seq)
          .executeTakeFirst(),
      );
      return Number(result.numUpdatedRows) > 0;
    },
    delete: async (id: string): Promise<boolean> => {
      return this.#transaction(async (trx) => {
        const result = await trx.deleteFrom('herald_subscriptions').where('id', '=', id).executeTakeFirst();
        const deleted = Number(result.numDeletedRows) > 0;
        if (deleted) await bumpSubscriptionVersion(trx);
        return deleted;
      });
    },
    version: (): Promise<number> => subscriptionVersion(this.#db),
  };

  #transaction<T>(work: (trx: Transaction<HeraldDatabase>) => Promise<T>): Promise<T> {
    return this.#gate.run(() => this.#db.transaction().execute(work));
  }

  readonly keys = {
    put: async (key: ApiKeyRecord): Promise<void> => {
      const row = fromKey(key);
      // A replaced key keeps when it was made, and when it was last used unless `key` says.
      const { id: _id, created_at: _createdAt, last_used_at: lastUsedAt, ...changes } = row;
      await this.#gate.run(() =>
        this.#db
          .insertInto('herald_api_keys')
          .values(row)
          .onConflict((oc) => oc.column('id').doUpdateSet(lastUsedAt === null ? changes : { ...changes, last_used_at: lastUsedAt }))
          .execute(),
      );
    },
    get: async (id: string): Promise<ApiKeyRecord | undefined> => {
      const row = await this.#db.selectFrom('herald_api_keys').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toKey(row);
    },
    list: async (): Promise<ApiKeyRecord[]> => {
      const rows = await this.#db.selectFrom('herald_api_keys').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(toKey);
    },
    deleteExpired: async (before: string): Promise<number> => {
      const result = await this.#gate.run(() => this.#db.deleteFrom('herald_api_keys').where('expires_at', '<', before).executeTakeFirst());
      return Number(result.numDeletedRows);
    },
    revoke: async (id: string): Promise<boolean> => {
      const result = await this.#gate.run(() =>
        this.#db
          .updateTable('herald_api_keys')
          .set({ revoked_at: new Date().toISOString() })
          .where('id', '=', id)
          .where('revoked_at', 'is', null)
          .executeTakeFirst(),
      );
      return Number(result.numUpdatedRows) > 0;
    },
    markUsed: async (id: string, at: string): Promise<void> => {
      await this.#gate.run(() =>
        this.#db
          .updateTable('herald_api_keys')
          .set({ last_used_at: at })
          .where('id', '=', id)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
          .execute(),
      );
    },
  };
}

type EventInsert = ManyRowInsert<EventRow, { id: string; seq: number | string }>;

const eventColumns = ['id', 'type', 'source', 'subject', 'time', 'datacontenttype', 'data', 'consumer', 'traceparent', 'tracestate'] as const;

/** SQLite's insert, whose `seq` is the table's autoincrement and whose `id` is unique in the table itself. */
function eventInsert(): EventInsert {
  return new ManyRowInsert<EventRow, { id: string; seq: number | string }>(eventColumns, (db, rows) =>
    db
      .insertInto('herald_events')
      .values(rows)
      .onConflict((oc) => oc.column('id').doNothing())
      .returning(['id', 'seq']),
  );
}

/** Inserts the new events of a group, and finds the first result of those whose id was already logged. */
async function insertEvents(
  trx: Kysely<HeraldDatabase>,
  events: readonly NewEvent[],
  eventRows: readonly EventRow[],
  insert: EventInsert,
  flavor: SqlFlavor,
): Promise<PublishResult[]> {
  const fresh = new Map<string, NewEvent>();
  const rows: EventRow[] = [];
  events.forEach((event, at) => {
    if (fresh.has(event.id)) return;
    fresh.set(event.id, event);
    rows.push(eventRows[at] as EventRow);
  });
  const seqs = new Map<string, number>();
  const chunk = flavor.appendChunk ?? insertChunk;
  for (let at = 0; at < rows.length; at += chunk) {
    const part = rows.slice(at, at + chunk);
    const inserted = flavor.appendRows ? await flavor.appendRows(trx, part) : await insert.execute(trx, part);
    for (const row of inserted) seqs.set(row.id, Number(row.seq));
  }
  const earlier = new Map<string, HeraldEvent>();
  const missing = [...fresh.keys()].filter((id) => !seqs.has(id));
  for (let at = 0; at < missing.length; at += insertChunk) {
    for (const row of await eventsById(trx, flavor, missing.slice(at, at + insertChunk))) earlier.set(row.id, toEvent(row));
  }
  const claimed = new Set<string>();
  return events.map((event) => {
    const seq = seqs.get(event.id);
    if (seq === undefined) return { event: earlier.get(event.id) as HeraldEvent, created: false };
    const created = !claimed.has(event.id);
    claimed.add(event.id);
    return { event: { ...(fresh.get(event.id) as NewEvent), seq }, created };
  });
}

/** The events of these ids; on PostgreSQL through `herald_event_ids`, since the partitioned log has no index on `id`. */
function eventsById(db: Kysely<HeraldDatabase>, flavor: SqlFlavor, ids: readonly string[]): Promise<Selectable<EventsTable>[]> {
  if (flavor.name !== 'postgres') return db.selectFrom('herald_events').selectAll().where('id', 'in', ids).execute();
  return db
    .selectFrom('herald_event_ids')
    .innerJoin('herald_events', 'herald_events.seq', 'herald_event_ids.seq')
    .selectAll('herald_events')
    .where('herald_event_ids.id', 'in', ids)
    .execute();
}

/** The SQL side of a type filter: exact names and LIKE prefixes; `exactOnly` when no pattern needs a check in code. */
function typeFilter(types: readonly string[]): { sql?: { exact: string[]; prefixes: string[] }; exactOnly: boolean } {
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const pattern of types) {
    const wildcard = pattern.split('.').findIndex((segment) => segment === '*' || segment === '**');
    if (wildcard === -1) exact.push(pattern);
    else if (wildcard === 0) return { exactOnly: false };
    else prefixes.push(`${pattern.split('.').slice(0, wildcard).join('.')}.`);
  }
  return { sql: { exact, prefixes }, exactOnly: prefixes.length === 0 };
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`);
}

/**
 * What a publish in a transaction on another database than the store's meets, Herald's tables and functions
 * missing there (SQLite's "no such table: herald_events", PostgreSQL's 42P01 and 42883), said as such.
 */
function elsewhereError(error: unknown): Error | undefined {
  const message = error instanceof Error ? error.message : String(error);
  const missing = (['42P01', '42883'].includes(errorCode(error)) || message.startsWith('no such table')) && message.includes('herald_');
  if (!missing) return undefined;
  return new Error(
    `The transaction given to publish is not on Herald's database (${message}): publish in a transaction of herald.database, or of a connection to the same database`,
    { cause: error },
  );
}

function fromEvent(event: NewEvent): EventRow {
  return {
    id: event.id,
    type: event.type,
    source: event.source,
    subject: event.subject ?? null,
    time: event.time,
    datacontenttype: event.datacontenttype,
    data: JSON.stringify(event.data ?? null),
    consumer: event.consumer ?? null,
    traceparent: event.traceparent ?? null,
    tracestate: event.tracestate ?? null,
  };
}

/**
 * The event of a `herald_events` row as JSON text: the same text as `JSON.stringify` of the event the
 * store reads from the row (the same fields, in the same order), with the data as it is stored rather than
 * parsed and written again. For an event sent as it is, e.g. a stored delivery's request body.
 */
export function eventRowJson(row: Selectable<EventsTable>): string {
  let json = `{"specversion":"1.0","id":${JSON.stringify(row.id)},"seq":${Number(row.seq)},"type":${JSON.stringify(row.type)},"source":${JSON.stringify(row.source)}`;
  if (row.subject !== null) json += `,"subject":${JSON.stringify(row.subject)}`;
  json += `,"time":${JSON.stringify(row.time)},"datacontenttype":${JSON.stringify(row.datacontenttype)},"data":${row.data}`;
  if (row.consumer !== null) json += `,"consumer":${JSON.stringify(row.consumer)}`;
  if (row.traceparent !== null) json += `,"traceparent":${JSON.stringify(row.traceparent)}`;
  if (row.tracestate !== null) json += `,"tracestate":${JSON.stringify(row.tracestate)}`;
  return `${json}}`;
}

/** The event of a `herald_events` row; {@link eventRowJson} writes the same fields in the same order. */
function toEvent(row: Selectable<EventsTable>): HeraldEvent {
  return {
    specversion: '1.0',
    id: row.id,
    seq: Number(row.seq),
    type: row.type,
    source: row.source,
    ...(row.subject !== null ? { subject: row.subject } : {}),
    time: row.time,
    datacontenttype: row.datacontenttype,
    data: JSON.parse(row.data),
    ...(row.consumer !== null ? { consumer: row.consumer } : {}),
    ...(row.traceparent !== null ? { traceparent: row.traceparent } : {}),
    ...(row.tracestate !== null ? { tracestate: row.tracestate } : {}),
  };
}

function fromSubscription(subscription: Subscription): SubscriptionsTable {
  return {
    id: subscription.id,
    consumer: subscription.consumer,
    transport: subscription.transport,
    types: JSON.stringify(subscription.types),
    status: subscription.status,
    config: JSON.stringify(subscription.config),
    cursor: subscription.cursor,
    disabled_reason: subscription.disabledReason ?? null,
    filter: subscription.filter !== undefined ? JSON.stringify(subscription.filter) : null,
    created_at: subscription.createdAt,
    updated_at: subscription.updatedAt,
  };
}

function toSubscription(row: Selectable<SubscriptionsTable>): Subscription {
  return {
    id: row.id,
    consumer: row.consumer,
    transport: row.transport,
    types: JSON.parse(row.types) as string[],
    status: row.status as SubscriptionStatus,
    config: JSON.parse(row.config) as Record<string, unknown>,
    cursor: Number(row.cursor),
    ...(row.disabled_reason !== null ? { disabledReason: row.disabled_reason } : {}),
    ...(row.filter !== null ? { filter: JSON.parse(row.filter) as EventFilter } : {}),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function fromKey(key: ApiKeyRecord): ApiKeysTable {
  return {
    id: key.id,
    role: key.role,
    consumer: key.consumer ?? null,
    hash: key.hash,
    name: key.name ?? null,
    created_by: key.createdBy ?? null,
    created_at: key.createdAt,
    last_used_at: key.lastUsedAt ?? null,
    revoked_at: key.revokedAt ?? null,
    expires_at: key.expiresAt ?? null,
    parent_id: key.parentId ?? null,
    types: key.types ? JSON.stringify(key.types) : null,
  };
}

function toKey(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    role: row.role as Role,
    ...(row.consumer !== null ? { consumer: row.consumer } : {}),
    hash: row.hash,
    ...(row.name !== null ? { name: row.name } : {}),
    ...(row.created_by !== null ? { createdBy: row.created_by } : {}),
    createdAt: row.created_at,
    ...(row.last_used_at !== null ? { lastUsedAt: row.last_used_at } : {}),
    ...(row.revoked_at !== null ? { revokedAt: row.revoked_at } : {}),
    ...(row.expires_at !== null ? { expiresAt: row.expires_at } : {}),
    ...(row.parent_id !== null ? { parentId: row.parent_id } : {}),
    ...(row.types !== null ? { types: JSON.parse(row.types) as string[] } : {}),
  };
}

/**
 * Runs `work` on one connection in a `begin immediate` transaction: SQLite's write lock, held to the commit.
 * By hand, as kysely's Migrator needs a connection of its own and refuses a transaction.
 */
async function withWriteLock(db: Kysely<unknown>, work: (connection: Kysely<unknown>) => Promise<void>): Promise<void> {
  await db.connection().execute(async (connection) => {
    await sql`begin immediate`.execute(connection);
    try {
      await work(connection);
    } catch (error) {
      // SQLite may have rolled back itself (SQLITE_FULL, SQLITE_IOERR): the error to report is the work's.
      await sql`rollback`.execute(connection).catch(() => {});
      throw error;
    }
    await sql`commit`.execute(connection);
  });
}
