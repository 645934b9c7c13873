import {
  eventRowJson,
  type HeraldEvent,
  ManyRowInsert,
  newId,
  type RowReaders,
  type SqlFlavor,
  type SqlStore,
  type SqlStoreContext,
  type SqlStoreExtension,
  type Store,
  type Subscription,
  type WriteGate,
} from '@herald/core';
import { type Expression, type ExpressionBuilder, type Kysely, type Selectable, type SqlBool, sql, type Transaction } from 'kysely';
import {
  type ClaimedDelivery,
  type ClaimRequest,
  createdDelivery,
  type Delivery,
  type DeliveryAttempt,
  type DeliveryListOptions,
  type DeliveryStatus,
  type FanOut,
  type Hold,
  type Lease,
  type NewDelivery,
  type Outbox,
  type OutboxBatch,
  type OutboxBatchResult,
  type ReplayClaim,
  type ReplayRecords,
  type SettledAttempt,
} from './outbox.js';
import { DeliveredOnRow } from './delivered-on-row.js';
import { outboxMigrations } from './outbox-migrations.js';
import { SqlReplayRecords } from './sql-replay-records.js';
import { refilled, untilToken } from './token-bucket.js';
import type { DeliveriesTable, DeliveryAttemptsTable, OutboxDatabase, OutboxHoldsTable, OutboxTables } from './sql-outbox-schema.js';

/** Inlined rather than bound, so that the planners can use the partial indexes of pending deliveries. */
const pending = sql.lit('pending');

/** Rows per statement, well under every dialect's bound-parameter limit. */
const chunk = 200;

function chunks<T>(items: readonly T[], size = chunk): T[][] {
  const out: T[][] = [];
  for (let at = 0; at < items.length; at += size) out.push(items.slice(at, at + size));
  return out;
}

const deliveryColumns = [
  'id',
  'subscription_id',
  'event_seq',
  'event_id',
  'status',
  'attempts',
  'next_attempt_at',
  'locked_by',
  'locked_until',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof DeliveriesTable)[];

/** A held delivery's row as its first attempt settles it: the attempt is on the row when it delivered. */
const settledColumns = [
  ...deliveryColumns,
  'attempt_started_at',
  'attempt_duration_ms',
  'attempt_response_status',
  'attempt_response_body',
] as const satisfies readonly (keyof DeliveriesTable)[];

const attemptColumns = [
  'delivery_id',
  'subscription_id',
  'attempt',
  'started_at',
  'duration_ms',
  'outcome',
  'response_status',
  'response_body',
  'error',
  'next_attempt_at',
] as const satisfies readonly (keyof DeliveryAttemptsTable)[];

const toNumber = (value: number | string | null): number | null => (value === null ? null : Number(value));

function toDelivery(row: Pick<Selectable<DeliveriesTable>, (typeof deliveryColumns)[number]>): Delivery {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    eventSeq: Number(row.event_seq),
    eventId: row.event_id,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: toNumber(row.next_attempt_at),
    lockedBy: row.locked_by,
    lockedUntil: toNumber(row.locked_until),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** The ids of replay holds begin with it (`rhld_…`), those of a fan-out's holds with `hld_`. */
const replayHoldPrefix = 'rhld';
const isReplayHold = (id: string) => id.startsWith(`${replayHoldPrefix}_`);

/** What a claim reads of a delivery's row. */
const claimedColumns = ['id', 'subscription_id', 'event_seq', 'event_id', 'attempts', 'next_attempt_at', 'locked_until', 'created_at'] as const;

type ClaimedRow = Pick<Selectable<DeliveriesTable>, (typeof claimedColumns)[number]>;

/** Whether a delivery's row is under a lease still running at `now` (an attempt is in flight). */
function leased(row: Pick<Selectable<DeliveriesTable>, 'locked_until'>, now: number): boolean {
  return row.locked_until !== null && Number(row.locked_until) >= now;
}

/** Whether a pending delivery's row is due at `now` and held by no live lease. */
function claimable(row: ClaimedRow, now: number): boolean {
  return row.next_attempt_at !== null && Number(row.next_attempt_at) <= now && !leased(row, now);
}

/**
 * A delivery as the claim of `row` under `lease` left it. Mapped here rather than by `toDelivery` of a copy
 * of the row: a row spread into a copy is a slow object, and this runs for every claimed delivery (a retry
 * storm spent 6 µs a delivery on it).
 */
function claimedDelivery(row: ClaimedRow, lease: Lease): Delivery {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    eventSeq: Number(row.event_seq),
    eventId: row.event_id,
    status: 'pending',
    attempts: Number(row.attempts) + 1,
    nextAttemptAt: toNumber(row.next_attempt_at),
    lockedBy: lease.worker,
    lockedUntil: lease.until,
    createdAt: Number(row.created_at),
    updatedAt: lease.now,
  };
}

function toAttempt(row: Selectable<DeliveryAttemptsTable>): DeliveryAttempt {
  return {
    deliveryId: row.delivery_id,
    subscriptionId: row.subscription_id,
    attempt: Number(row.attempt),
    startedAt: Number(row.started_at),
    durationMs: Number(row.duration_ms),
    outcome: row.outcome as DeliveryAttempt['outcome'],
    ...(row.response_status !== null ? { responseStatus: Number(row.response_status) } : {}),
    ...(row.response_body !== null ? { responseBody: row.response_body } : {}),
    ...(row.error !== null ? { error: row.error } : {}),
    ...(row.next_attempt_at !== null ? { nextAttemptAt: Number(row.next_attempt_at) } : {}),
  };
}

function fromAttempt(attempt: DeliveryAttempt): DeliveryAttemptsTable {
  return {
    delivery_id: attempt.deliveryId,
    subscription_id: attempt.subscriptionId,
    attempt: attempt.attempt,
    started_at: attempt.startedAt,
    duration_ms: Math.round(attempt.durationMs),
    outcome: attempt.outcome,
    response_status: attempt.responseStatus ?? null,
    response_body: attempt.responseBody ?? null,
    error: attempt.error ?? null,
    next_attempt_at: attempt.nextAttemptAt ?? null,
  };
}

/** Creates deliveries (these columns of them), leaving those whose (subscription, event) has a row already. */
function deliveryInsert(columns: readonly (keyof DeliveriesTable & string)[]): ManyRowInsert<DeliveriesTable, unknown, OutboxDatabase> {
  return new ManyRowInsert<DeliveriesTable, unknown, OutboxDatabase>(columns, (db, rows) =>
    db
      .insertInto('herald_deliveries')
      .values(rows)
      .onConflict((oc) => oc.columns(['subscription_id', 'event_seq']).doNothing()),
  );
}

/**
 * The outbox on kysely, shared by SQLite and PostgreSQL; `SqlFlavor.lockForClaim` is the one dialect-specific
 * part. An extension of the SQL store ({@link sqlOutboxExtension}): its writes go through the store's
 * {@link WriteGate}, as the store's own do, so a locked or full store refuses them with a 503 too.
 */
export class SqlOutbox implements Outbox {
  readonly #db: Kysely<OutboxDatabase>;
  readonly #flavor: SqlFlavor;
  readonly #rows: RowReaders;
  readonly #gate: WriteGate;
  readonly replays: ReplayRecords;
  readonly #insertDeliveries = deliveryInsert(deliveryColumns);
  readonly #insertSettled = deliveryInsert(settledColumns);
  readonly #deliveredOnRow: DeliveredOnRow;
  readonly #upsertReplayed = replayUpsert();
  readonly #insertAttempts = new ManyRowInsert<DeliveryAttemptsTable, unknown, OutboxDatabase>(attemptColumns, (db, rows) =>
    db.insertInto('herald_delivery_attempts').values(rows),
  );

  constructor({ db, flavor, rows, gate, holdLog }: SqlStoreContext) {
    this.#db = db.withTables<OutboxTables>();
    this.#flavor = flavor;
    this.#rows = rows;
    this.#gate = gate;
    this.replays = new SqlReplayRecords(this.#db, gate, (work) => this.#unsyncedTransaction(work));
    this.#deliveredOnRow = new DeliveredOnRow(flavor.name === 'sqlite');
    holdLog(() => this.neededFrom());
  }

  /**
   * The oldest `seq` the outbox still needs from the log: that of a pending delivery, or the first after a
   * fan-out position or a hold; undefined when it needs none. The store never prunes the log from there on.
   */
  async neededFrom(): Promise<number | undefined> {
    const [delivery, position, hold] = await Promise.all([
      this.#db
        .selectFrom('herald_deliveries')
        .select((eb) => eb.fn.min('event_seq').as('seq'))
        .where('status', '=', pending)
        .executeTakeFirst(),
      this.#db
        .selectFrom('herald_outbox_positions')
        .select((eb) => eb.fn.min('seq').as('seq'))
        .executeTakeFirst(),
      this.#db
        .selectFrom('herald_outbox_holds')
        .select((eb) => eb.fn.min('from_seq').as('seq'))
        .executeTakeFirst(),
    ]);
    const needed = [
      delivery?.seq != null ? Number(delivery.seq) : undefined,
      position?.seq != null ? Number(position.seq) + 1 : undefined,
      hold?.seq != null ? Number(hold.seq) + 1 : undefined,
    ].filter((seq): seq is number => seq !== undefined);
    return needed.length > 0 ? Math.min(...needed) : undefined;
  }

  async position(name: string, initial: number): Promise<number> {
    await this.#gate.run(() =>
      this.#db
        .insertInto('herald_outbox_positions')
        .values({ name, seq: initial })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute(),
    );
    const row = await this.#db.selectFrom('herald_outbox_positions').select('seq').where('name', '=', name).executeTakeFirstOrThrow();
    return Number(row.seq);
  }

  commit(batch: OutboxBatch): Promise<OutboxBatchResult> {
    return this.#unsyncedTransaction(async (trx) => {
      const { lease } = batch;
      if (batch.settle && batch.settle.length > 0) await settle(trx, lease, batch.settle, this.#insertAttempts, this.#insertSettled, this.#deliveredOnRow);
      if (batch.unhold && batch.unhold.length > 0) await createDeliveries(trx, this.#insertDeliveries, batch.unhold, lease.now);
      for (const ids of chunks(batch.dropHolds ?? [])) {
        const replayHolds = ids.filter(isReplayHold);
        const fanOutHolds = ids.filter((id) => !isReplayHold(id));
        if (fanOutHolds.length > 0) await trx.deleteFrom('herald_outbox_holds').where('id', 'in', fanOutHolds).where('worker', '=', lease.worker).execute();
        if (replayHolds.length > 0) await trx.deleteFrom('herald_outbox_replay_holds').where('id', 'in', replayHolds).where('worker', '=', lease.worker).execute();
      }
      let fannedOut = false;
      let held: { ids: string[]; hold?: string } = { ids: [] };
      let position: number | undefined;
      if (batch.fanOut) {
        const result = await fanOut(trx, batch.fanOut, lease, this.#insertDeliveries);
        fannedOut = result !== undefined;
        held = result ?? held;
        position = fannedOut
          ? batch.fanOut.to
          : Number((await trx.selectFrom('herald_outbox_positions').select('seq').where('name', '=', batch.fanOut.name).executeTakeFirst())?.seq ?? 0);
      }
      const { claimed, rateLimited } = batch.claim && batch.claim.length > 0 ? await this.#claim(trx, lease, batch.claim) : { claimed: [] };
      return {
        fannedOut,
        ...(position !== undefined ? { position } : {}),
        claimedInFanOut: held.ids,
        ...(held.hold ? { hold: held.hold } : {}),
        claimed,
        ...(rateLimited ? { rateLimited } : {}),
      };
    });
  }

  /** Losing a commit to a power failure only sends its deliveries again: its events were synced when appended. */
  #unsyncedTransaction<T>(work: (trx: Transaction<OutboxDatabase>) => Promise<T>): Promise<T> {
    const flavor = this.#flavor;
    return this.#gate.run(() => (flavor.unsyncedTransaction ? flavor.unsyncedTransaction(this.#db, work) : this.#db.transaction().execute(work)));
  }

  #transaction<T>(work: (trx: Transaction<OutboxDatabase>) => Promise<T>): Promise<T> {
    return this.#gate.run(() => this.#db.transaction().execute(work));
  }

  async expiredHolds(name: string, now: number): Promise<Hold[]> {
    const rows = await this.#db.selectFrom('herald_outbox_holds').selectAll().where('name', '=', name).where('locked_until', '<', now).execute();
    return rows.map(toHold);
  }

  recoverHold(id: string, deliveries: readonly NewDelivery[], now: number): Promise<boolean> {
    return this.#transaction(async (trx) => {
      const dropped = await trx.deleteFrom('herald_outbox_holds').where('id', '=', id).where('locked_until', '<', now).executeTakeFirst();
      if (Number(dropped.numDeletedRows) !== 1) return false;
      await createDeliveries(trx, this.#insertDeliveries, deliveries, now);
      return true;
    });
  }

  async #claim(
    trx: Transaction<OutboxDatabase>,
    lease: Lease,
    requests: readonly ClaimRequest[],
  ): Promise<Pick<OutboxBatchResult, 'claimed' | 'rateLimited'>> {
    const rows: ClaimedRow[] = [];
    const rateLimitedRows: RateLimitedRows[] = [];
    for (const request of requests) {
      if (request.limit <= 0) continue;
      const pendingOfEndpoint = trx
        .selectFrom('herald_deliveries')
        .select(claimedColumns)
        .where('subscription_id', '=', request.subscriptionId)
        .where('status', '=', pending)
        .orderBy('event_seq');
      const found = await this.#flavor
        .lockForClaim(
          request.ordered
            ? pendingOfEndpoint.limit(1)
            : pendingOfEndpoint
                // Through coalesce, so that SQLite walks the subscription's index in seq order rather than the due index.
                .where((eb) => eb(eb.fn.coalesce('next_attempt_at', eb.val(0)), '<=', lease.now))
                .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', lease.now)]))
                .limit(request.limit),
          request.ordered ? 'wait' : 'skip',
        )
        .execute();
      // The head of an ordered endpoint is claimed only when it is itself due and free.
      const due = found.filter((row) => claimable(row, lease.now));
      if (request.rateLimit !== undefined && due.length > 0) rateLimitedRows.push({ subscriptionId: request.subscriptionId, rate: request.rateLimit, due });
      else rows.push(...due);
    }
    const { taken, rateLimited } = await takeTokens(trx, lease.now, rateLimitedRows);
    rows.push(...taken);
    // Read, then written without RETURNING: SQLite's RETURNING costs more than the update itself.
    for (const ids of chunks(rows.map((row) => row.id))) {
      await trx
        .updateTable('herald_deliveries')
        .set((eb) => ({ locked_by: lease.worker, locked_until: lease.until, attempts: eb('attempts', '+', 1), updated_at: lease.now }))
        .where('id', 'in', ids)
        .execute();
    }
    if (rows.length === 0) return { claimed: [], ...(rateLimited ? { rateLimited } : {}) };
    rows.sort((a, b) => Number(a.event_seq) - Number(b.event_seq));

    const events = new Map<number, { event: HeraldEvent; body: string }>();
    for (const seqs of chunks([...new Set(rows.map((row) => Number(row.event_seq)))])) {
      const found = await trx.selectFrom('herald_events').selectAll().where('seq', 'in', seqs).execute();
      for (const row of found) events.set(Number(row.seq), { event: this.#rows.event(row), body: eventRowJson(row) });
    }
    const subscriptions = new Map<string, Subscription>();
    for (const ids of chunks([...new Set(rows.map((row) => row.subscription_id))])) {
      const found = await trx.selectFrom('herald_subscriptions').selectAll().where('id', 'in', ids).execute();
      for (const row of found) subscriptions.set(row.id, this.#rows.subscription(row));
    }
    const claimed = rows.map((row) => {
      const claimed: ClaimedDelivery = { delivery: claimedDelivery(row, lease) };
      const found = events.get(Number(row.event_seq));
      if (found) {
        claimed.event = found.event;
        claimed.body = found.body;
      }
      const subscription = subscriptions.get(row.subscription_id);
      if (subscription) claimed.subscription = subscription;
      return claimed;
    });
    return { claimed, ...(rateLimited ? { rateLimited } : {}) };
  }

  async release(worker: string, deliveryIds: readonly string[]): Promise<void> {
    for (const ids of chunks(deliveryIds)) {
      await this.#gate.run(() =>
        this.#db
          .updateTable('herald_deliveries')
          .set((eb) => ({ locked_by: null, locked_until: null, attempts: eb('attempts', '-', 1) }))
          .where('id', 'in', ids)
          .where('locked_by', '=', worker)
          .where('status', '=', pending)
          .execute(),
      );
    }
  }

  async due(transport: string, now: number, limit: number): Promise<string[]> {
    // Ordered by when they are due, so that SQLite walks the due index (only what is due) rather than the
    // pending one, which the DISTINCT alone would make it prefer, and which holds every pending delivery.
    const dueDeliveries = this.#db
      .selectFrom('herald_deliveries')
      .select('subscription_id')
      .where('status', '=', pending)
      .where('next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
      .orderBy('next_attempt_at');
    const rows = await this.#db
      .selectFrom(dueDeliveries.as('d'))
      .select('d.subscription_id')
      .distinct()
      // Paused and disabled subscriptions keep their deliveries for later, other transports' are theirs;
      // deleted ones are found, to be purged.
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('herald_subscriptions as s')
              .select('s.id')
              .whereRef('s.id', '=', 'd.subscription_id')
              .where((eb) => eb.or([eb('s.status', '!=', 'active'), eb('s.transport', '!=', transport)])),
          ),
        ),
      )
      .limit(limit)
      .execute();
    return rows.map((row) => row.subscription_id);
  }

  async get(deliveryId: string): Promise<Delivery | undefined> {
    const row = await this.#db.selectFrom('herald_deliveries').selectAll().where('id', '=', deliveryId).executeTakeFirst();
    return row && toDelivery(row);
  }

  async list(subscriptionId: string, options: DeliveryListOptions = {}): Promise<Delivery[]> {
    let query = this.#db
      .selectFrom('herald_deliveries')
      .selectAll()
      .where('subscription_id', '=', subscriptionId)
      .orderBy('event_seq', 'desc')
      .limit(options.limit ?? 50);
    if (options.before !== undefined) query = query.where('event_seq', '<', options.before);
    if (options.status !== undefined) query = query.where('status', '=', options.status);
    return (await query.execute()).map(toDelivery);
  }

  async attempts(deliveryIds: readonly string[]): Promise<DeliveryAttempt[]> {
    const found: DeliveryAttempt[] = [];
    for (const ids of chunks(deliveryIds)) {
      const rows = await this.#db
        .selectFrom('herald_delivery_attempts')
        .selectAll()
        .where('delivery_id', 'in', ids)
        .orderBy('started_at')
        .orderBy('attempt')
        .execute();
      found.push(...rows.map(toAttempt));
      const delivered = await this.#db
        .selectFrom('herald_deliveries')
        .selectAll()
        .where('id', 'in', ids)
        .where('attempt_started_at', 'is not', null)
        .execute();
      found.push(...delivered.map(attemptOnRow));
    }
    return found.sort((a, b) => a.startedAt - b.startedAt || a.attempt - b.attempt);
  }

  retry(deliveryId: string, now: number): Promise<Delivery | undefined> {
    return this.#transaction(async (trx) => {
      await moveRowAttempts(trx, (eb) => eb('id', '=', deliveryId));
      const row = await trx
        .updateTable('herald_deliveries')
        .set({ status: 'pending', attempts: 0, next_attempt_at: now, updated_at: now, ...noRowAttempt })
        .where('id', '=', deliveryId)
        .returningAll()
        .executeTakeFirst();
      return row && toDelivery(row);
    });
  }

  async replay(deliveries: readonly NewDelivery[], now: number): Promise<number> {
    return (await this.#replay(deliveries, now)).replayed;
  }

  replayClaiming(deliveries: readonly NewDelivery[], lease: Lease): Promise<ReplayClaim> {
    return this.#replay(deliveries, lease.now, lease);
  }

  /** Unsynced: a batch lost to a power failure is lost with the replay's progress recorded after it, so it is sent again. */
  #replay(deliveries: readonly NewDelivery[], now: number, lease?: Lease): Promise<ReplayClaim> {
    return this.#unsyncedTransaction(async (trx) => {
      const claim: ReplayClaim = { replayed: 0, claimed: [] };
      const bySubscription = new Map<string, NewDelivery[]>();
      for (const delivery of deliveries) {
        const group = bySubscription.get(delivery.subscriptionId);
        if (group) group.push(delivery);
        else bySubscription.set(delivery.subscriptionId, [delivery]);
      }
      for (const [subscriptionId, ofSubscription] of bySubscription) {
        for (const group of chunks(ofSubscription)) {
          const eventSeqs = group.map((delivery) => delivery.eventSeq);
          // Deliveries that have a row start their new round by an UPDATE without RETURNING, which SQLite's
          // upsert would need; locked meanwhile, so that no other worker claims one between the read and the write.
          const rows = await this.#flavor
            .lockForClaim(
              trx
                .selectFrom('herald_deliveries')
                .select(['id', 'event_seq', 'status', 'locked_until', 'created_at'])
                .where('subscription_id', '=', subscriptionId)
                .where('event_seq', 'in', eventSeqs),
              'wait',
            )
            .execute();
          const existing = new Map(rows.map((row) => [Number(row.event_seq), row]));
          const fresh: NewDelivery[] = [];
          const claimed: string[] = [];
          const unclaimed: string[] = [];
          for (const delivery of group) {
            const row = existing.get(delivery.eventSeq);
            if (!row) {
              fresh.push(delivery);
              continue;
            }
            // A delivery in flight is let go, not claimed: the attempt under way settles nothing, and the replay sends it again.
            const restarted = createdDelivery({ ...delivery, id: row.id, nextAttemptAt: now }, now, leased(row, now) ? undefined : lease);
            const createdAt = Number(row.created_at);
            if (restarted.lockedBy === null) unclaimed.push(row.id);
            // A final row is written once, as the attempt settles: nobody claims a final delivery meanwhile.
            else if (row.status !== 'pending') claim.claimed.push({ delivery: { ...restarted, createdAt }, startsRound: true });
            else {
              claimed.push(row.id);
              claim.claimed.push({ delivery: { ...restarted, createdAt } });
            }
          }
          const startedAgain = [...claimed, ...unclaimed];
          if (startedAgain.length > 0) await moveRowAttempts(trx, (eb) => eb('id', 'in', startedAgain));
          await restartDeliveries(trx, claimed, now, lease);
          await restartDeliveries(trx, unclaimed, now);
          if (fresh.length > 0) {
            const created = await this.#upsertReplayed.execute(
              trx,
              fresh.map((delivery) => fromDelivery(createdDelivery({ ...delivery, nextAttemptAt: now }, now, lease))),
            );
            for (const row of created) if (lease && row.locked_by === lease.worker) claim.claimed.push({ delivery: toDelivery(row) });
          }
          claim.replayed += group.length;
        }
      }
      claim.claimed.sort((a, b) => a.delivery.eventSeq - b.delivery.eventSeq);
      const startingRound = claim.claimed.flatMap(({ delivery, startsRound }) => (startsRound ? [delivery.id] : []));
      if (lease && startingRound.length > 0) {
        claim.hold = newId(replayHoldPrefix);
        await trx
          .insertInto('herald_outbox_replay_holds')
          .values({ id: claim.hold, worker: lease.worker, locked_until: lease.until, started_at: now, delivery_ids: JSON.stringify(startingRound) })
          .execute();
      }
      return claim;
    });
  }

  async recoverReplayHolds(now: number): Promise<{ id: string; worker: string; restarted: number }[]> {
    const expired = await this.#db.selectFrom('herald_outbox_replay_holds').select(['id', 'worker']).where('locked_until', '<', now).execute();
    const recovered: { id: string; worker: string; restarted: number }[] = [];
    for (const { id, worker } of expired) {
      const restarted = await this.#transaction(async (trx) => {
        const hold = await trx.deleteFrom('herald_outbox_replay_holds').where('id', '=', id).where('locked_until', '<', now).returning(['started_at', 'delivery_ids']).executeTakeFirst();
        if (!hold) return undefined;
        const unsent: string[] = [];
        for (const ids of chunks(JSON.parse(hold.delivery_ids) as string[])) {
          // Those whose attempt settled (a new round), were retried by hand (pending) or pruned are left as they are.
          const rows = await this.#flavor
            .lockForClaim(
              trx.selectFrom('herald_deliveries').select('id').where('id', 'in', ids).where('status', '!=', pending).where('updated_at', '<=', Number(hold.started_at)),
              'wait',
            )
            .execute();
          for (const row of rows) unsent.push(row.id);
        }
        for (const ids of chunks(unsent)) await moveRowAttempts(trx, (eb) => eb('id', 'in', ids));
        await restartDeliveries(trx, unsent, now);
        return unsent.length;
      });
      if (restarted !== undefined) recovered.push({ id, worker, restarted });
    }
    return recovered;
  }

  async failingSince(subscriptionId: string): Promise<number | undefined> {
    const success = await this.#db
      .selectFrom('herald_delivery_attempts')
      .select((eb) => eb.fn.max('started_at').as('at'))
      .where('subscription_id', '=', subscriptionId)
      .where('outcome', '=', 'succeeded')
      .executeTakeFirst();
    // Successes kept on held deliveries' rows: the newest event's, found walking the subscription's index from its end.
    const onRow = await this.#db
      .selectFrom('herald_deliveries')
      .select('attempt_started_at as at')
      .where('subscription_id', '=', subscriptionId)
      .where('attempt_started_at', 'is not', null)
      .orderBy('event_seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    // Those kept on stored deliveries' rows (a retry's, a replay's), which the walk above may miss.
    const stored = await this.#db.selectFrom('herald_outbox_successes').select('at').where('subscription_id', '=', subscriptionId).executeTakeFirst();
    const lastSuccess = Math.max(
      Number(success?.at ?? Number.NEGATIVE_INFINITY),
      Number(onRow?.at ?? Number.NEGATIVE_INFINITY),
      Number(stored?.at ?? Number.NEGATIVE_INFINITY),
    );
    let query = this.#db
      .selectFrom('herald_delivery_attempts')
      .select((eb) => eb.fn.min('started_at').as('at'))
      .where('subscription_id', '=', subscriptionId)
      .where('outcome', '=', 'failed');
    if (Number.isFinite(lastSuccess)) query = query.where('started_at', '>', lastSuccess);
    const failure = await query.executeTakeFirst();
    return failure?.at == null ? undefined : Number(failure.at);
  }

  async abandon(subscriptionId: string, now: number): Promise<number> {
    const result = await this.#gate.run(() =>
      this.#db
        .updateTable('herald_deliveries')
        .set({ status: 'failed', next_attempt_at: null, updated_at: now })
        .where('subscription_id', '=', subscriptionId)
        .where('status', '=', pending)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows);
  }

  async purge(subscriptionId: string): Promise<void> {
    await this.#transaction(async (trx) => {
      await trx.deleteFrom('herald_delivery_attempts').where('subscription_id', '=', subscriptionId).execute();
      await trx.deleteFrom('herald_deliveries').where('subscription_id', '=', subscriptionId).execute();
      await trx.deleteFrom('herald_outbox_successes').where('subscription_id', '=', subscriptionId).execute();
      await trx.deleteFrom('herald_outbox_rate_limits').where('subscription_id', '=', subscriptionId).execute();
      await trx.deleteFrom('herald_outbox_replays').where('subscription_id', '=', subscriptionId).execute();
    });
  }

  async backlog(transport: string): Promise<number> {
    const row = await this.#db
      .selectFrom('herald_deliveries as d')
      .select((eb) => eb.fn.countAll().as('count'))
      .where('d.status', '=', pending)
      .where(({ exists, selectFrom }) =>
        exists(selectFrom('herald_subscriptions as s').select('s.id').whereRef('s.id', '=', 'd.subscription_id').where('s.transport', '=', transport)),
      )
      .executeTakeFirst();
    return Number(row?.count ?? 0);
  }

  async prune(transport: string, before: number): Promise<number> {
    return this.#transaction(async (trx) => {
      const old = trx
        .selectFrom('herald_deliveries as d')
        .select('d.id')
        .where('d.status', '!=', pending)
        .where('d.updated_at', '<', before)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('herald_subscriptions as s').select('s.id').whereRef('s.id', '=', 'd.subscription_id').where('s.transport', '!=', transport))),
        );
      await trx.deleteFrom('herald_delivery_attempts').where('delivery_id', 'in', old).execute();
      const result = await trx.deleteFrom('herald_deliveries').where('id', 'in', old).executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }
}

/** The columns of the delivering attempt kept on a row, cleared as a new round begins. */
const noRowAttempt = {
  attempt_started_at: sql<null>`null`,
  attempt_duration_ms: sql<null>`null`,
  attempt_response_status: sql<null>`null`,
  attempt_response_body: sql<null>`null`,
};

/**
 * Moves the delivering attempts kept on the rows `where` picks into herald_delivery_attempts, before a new
 * round (a retry, a replay) starts them again: the row keeps the delivering attempt of its last round only.
 */
async function moveRowAttempts(
  trx: Transaction<OutboxDatabase>,
  where: (eb: ExpressionBuilder<OutboxDatabase, 'herald_deliveries'>) => Expression<SqlBool>,
): Promise<void> {
  await trx
    .insertInto('herald_delivery_attempts')
    .columns([...attemptColumns])
    .expression(
      trx
          .selectFrom('herald_deliveries')
          .select([
            'id',
            'subscription_id',
            'attempts',
            'attempt_started_at',
            'attempt_duration_ms',
            sql.lit('succeeded').as('outcome'),
            'attempt_response_status',
            'attempt_response_body',
            // Cast, so that PostgreSQL does not take the nulls for text.
            sql<null>`cast(null as text)`.as('error'),
            sql<null>`cast(null as bigint)`.as('next_attempt_at'),
          ])
          .where('attempt_started_at', 'is not', null)
          .where(where),
    )
    .execute();
}

/**
 * Creates a replay's deliveries that had no row, claimed or not as the new row says; should another node's
 * fan-out have made one meanwhile, starts its new round instead (its `updated_at` is the replay's time), letting
 * go of it if it is in flight. Returns the rows as they are now.
 */
function replayUpsert(): ManyRowInsert<DeliveriesTable, Selectable<DeliveriesTable>, OutboxDatabase> {
  const inFlight = sql<boolean>`herald_deliveries.locked_until is not null and herald_deliveries.locked_until >= excluded.updated_at`;
  return new ManyRowInsert<DeliveriesTable, Selectable<DeliveriesTable>, OutboxDatabase>(deliveryColumns, (db, rows) =>
    db
      .insertInto('herald_deliveries')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['subscription_id', 'event_seq']).doUpdateSet({
          status: pending,
          attempts: sql<number>`case when ${inFlight} then 0 else excluded.attempts end`,
          next_attempt_at: sql<number>`excluded.next_attempt_at`,
          locked_by: sql<string | null>`case when ${inFlight} then null else excluded.locked_by end`,
          locked_until: sql<number | null>`case when ${inFlight} then null else excluded.locked_until end`,
          updated_at: sql<number>`excluded.updated_at`,
          ...noRowAttempt,
        }),
      )
      .returningAll(),
  );
}

/** A rate-limited endpoint's due deliveries that a claim found, oldest first, before it takes their tokens. */
interface RateLimitedRows {
  subscriptionId: string;
  rate: number;
  due: ClaimedRow[];
}

/**
 * Takes from each endpoint's shared token bucket what its due deliveries need: the rows it had tokens for,
 * and, for the endpoints that had more due than tokens, when each has a token again. The buckets are locked
 * after every delivery row the transaction locks, and in subscription order, so that two workers' claims
 * cannot wait for each other.
 */
async function takeTokens(
  trx: Transaction<OutboxDatabase>,
  now: number,
  limited: readonly RateLimitedRows[],
): Promise<{ taken: ClaimedRow[]; rateLimited?: Map<string, number> }> {
  const rows: ClaimedRow[] = [];
  let waits: Map<string, number> | undefined;
  for (const { subscriptionId, rate, due } of [...limited].sort((a, b) => (a.subscriptionId < b.subscriptionId ? -1 : 1))) {
    // Read and locked in one statement by a do-nothing update; a new bucket was emptied long ago, so is full.
    const bucket = await trx
      .insertInto('herald_outbox_rate_limits')
      .values({ subscription_id: subscriptionId, tokens: 0, at: 0 })
      .onConflict((oc) => oc.column('subscription_id').doUpdateSet({ subscription_id: subscriptionId }))
      .returning(['tokens', 'at'])
      .executeTakeFirstOrThrow();
    const at = Number(bucket.at);
    const tokens = refilled(Number(bucket.tokens), now - at, rate);
    const taken = Math.min(due.length, Math.floor(tokens));
    rows.push(...due.slice(0, taken));
    await trx
      .updateTable('herald_outbox_rate_limits')
      .set({ tokens: tokens - taken, at: Math.max(now, at) })
      .where('subscription_id', '=', subscriptionId)
      .execute();
    if (taken < due.length) (waits ??= new Map()).set(subscriptionId, now + untilToken(tokens - taken, rate));
  }
  return { taken: rows, ...(waits ? { rateLimited: waits } : {}) };
}

/** Starts a new round of the deliveries `ids` (their rows' attempts moved out already): due at `now`, claimed under `lease` when given. */
async function restartDeliveries(trx: Transaction<OutboxDatabase>, ids: readonly string[], now: number, lease?: Lease): Promise<void> {
  for (const group of chunks(ids)) {
    await trx
      .updateTable('herald_deliveries')
      .set(newRound('pending', lease ? 1 : 0, now, now, lease))
      .where('id', 'in', group)
      .execute();
  }
}

/** A row as a new round leaves it at `now`: its last round's delivering attempt moved out already, held under `lease` when given. */
function newRound(status: DeliveryStatus, attempts: number, nextAttemptAt: number | null, now: number, lease?: Lease) {
  return {
    status,
    attempts,
    next_attempt_at: nextAttemptAt,
    locked_by: lease?.worker ?? null,
    locked_until: lease?.until ?? null,
    updated_at: now,
    ...noRowAttempt,
  };
}

/** Creates these deliveries at `now`, unclaimed, due by then at the latest, leaving those that have a row. */
async function createDeliveries(
  trx: Transaction<OutboxDatabase>,
  insertDeliveries: ManyRowInsert<DeliveriesTable, unknown, OutboxDatabase>,
  deliveries: readonly NewDelivery[],
  now: number,
): Promise<void> {
  for (const group of chunks(deliveries)) {
    await insertDeliveries.insert(trx, group.map((delivery) => fromNewDelivery({ ...delivery, nextAttemptAt: Math.min(delivery.nextAttemptAt, now) }, now)));
  }
}

/** A new delivery's row, unclaimed (see `createdDelivery`). */
function fromNewDelivery(delivery: NewDelivery, now: number): DeliveriesTable {
  return fromDelivery(createdDelivery(delivery, now));
}

/** A delivery's row, with `delivering`, the attempt that delivered it, when that is kept on the row (see `settledRow`). */
function fromDelivery(delivery: Delivery, delivering?: DeliveryAttempt): DeliveriesTable {
  return {
    id: delivery.id,
    subscription_id: delivery.subscriptionId,
    event_seq: delivery.eventSeq,
    event_id: delivery.eventId,
    status: delivery.status,
    attempts: delivery.attempts,
    next_attempt_at: delivery.nextAttemptAt,
    locked_by: delivery.lockedBy,
    locked_until: delivery.lockedUntil,
    created_at: delivery.createdAt,
    updated_at: delivery.updatedAt,
    attempt_started_at: delivering ? delivering.startedAt : null,
    attempt_duration_ms: delivering ? Math.round(delivering.durationMs) : null,
    attempt_response_status: delivering?.responseStatus ?? null,
    attempt_response_body: delivering?.responseBody ?? null,
  };
}

/** Records the attempts, and settles or reschedules the deliveries this worker still holds. */
async function settle(
  trx: Transaction<OutboxDatabase>,
  lease: Lease,
  settled: readonly SettledAttempt[],
  insertAttempts: ManyRowInsert<DeliveryAttemptsTable, unknown, OutboxDatabase>,
  insertSettled: ManyRowInsert<DeliveriesTable, unknown, OutboxDatabase>,
  deliveredOnRow: DeliveredOnRow,
): Promise<void> {
  // A held delivery gets its row now, as its attempt left it, unless a recovery of its hold made one
  // meanwhile: that row stays as it is, with its own attempts, and this attempt is not recorded.
  const notCreated = new Set<string>();
  for (const group of chunks(settled.filter((s) => s.held !== undefined))) {
    const rows = group.map((s) => settledRow(s, lease.now));
    if ((await insertSettled.insert(trx, rows)) === rows.length) continue;
    const ids = rows.map((row) => row.id);
    const created = new Set((await trx.selectFrom('herald_deliveries').select('id').where('id', 'in', ids).execute()).map((row) => row.id));
    for (const id of ids) if (!created.has(id)) notCreated.add(id);
  }
  // A held delivery's delivering attempt is on its row (see `settledRow`).
  const stored = settled.filter((s) => s.held === undefined && !s.startsRound);
  // A stored delivery's delivering attempt goes on its row too, in one write, unless the row has one already.
  const onRow = new Set<string>();
  for (const group of chunks(stored.filter((s) => s.status === 'delivered'))) {
    for (const id of await deliveredOnRow.update(trx, lease, group, false)) onRow.add(id);
  }
  const rounds = await startRounds(trx, lease, settled.filter((s) => s.startsRound), deliveredOnRow);
  for (const id of rounds.onRow) onRow.add(id);
  await noteSuccesses(trx, settled.filter((s) => onRow.has(s.attempt.deliveryId)));
  const recorded = settled.filter((s) =>
    s.held === undefined
      ? !onRow.has(s.attempt.deliveryId) && !rounds.gone.has(s.attempt.deliveryId)
      : s.status !== 'delivered' && !notCreated.has(s.attempt.deliveryId),
  );
  for (const rows of chunks(recorded.map((s) => fromAttempt(s.attempt)))) await insertAttempts.execute(trx, rows);
  const delivered = stored.filter((s) => s.status === 'delivered' && !onRow.has(s.attempt.deliveryId)).map((s) => s.attempt.deliveryId);
  for (const ids of chunks(delivered)) {
    await trx
      .updateTable('herald_deliveries')
      .set({ status: 'delivered', next_attempt_at: null, locked_by: null, locked_until: null, updated_at: lease.now })
      .where('id', 'in', ids)
      .where('locked_by', '=', lease.worker)
      .execute();
  }
  for (const { attempt, status } of stored) {
    if (status === 'delivered') continue;
    await trx
      .updateTable('herald_deliveries')
      .set({
        status,
        next_attempt_at: status === 'pending' ? (attempt.nextAttemptAt ?? lease.now) : null,
        locked_by: null,
        locked_until: null,
        updated_at: lease.now,
      })
      .where('id', '=', attempt.deliveryId)
      .where('locked_by', '=', lease.worker)
      .execute();
  }
}

/**
 * Starts the new rounds of deliveries a replay handed over final (see `SettledAttempt.startsRound`), on the rows
 * still final: the delivering attempt of the last round moves out first, as a replay's restart would have
 * moved it, then the row takes the attempt's outcome (a delivering attempt kept on it). Returns the ids of the
 * rows that keep their attempt, and those of rows gone meanwhile (pruned, purged), whose attempts are not recorded.
 */
async function startRounds(
  trx: Transaction<OutboxDatabase>,
  lease: Lease,
  rounds: readonly SettledAttempt[],
  deliveredOnRow: DeliveredOnRow,
): Promise<{ onRow: string[]; gone: Set<string> }> {
  const onRow: string[] = [];
  if (rounds.length === 0) return { onRow, gone: new Set() };
  for (const ids of chunks(rounds.map((s) => s.attempt.deliveryId))) {
    await moveRowAttempts(trx, (eb) => eb.and([eb('id', 'in', ids), eb('status', '!=', pending)]));
  }
  for (const group of chunks(rounds.filter((s) => s.status === 'delivered'))) onRow.push(...(await deliveredOnRow.update(trx, lease, group, true)));
  const notWritten = new Set(rounds.map((s) => s.attempt.deliveryId));
  for (const id of onRow) notWritten.delete(id);
  for (const { attempt, status } of rounds) {
    if (status === 'delivered') continue;
    const written = await trx
      .updateTable('herald_deliveries')
      .set(newRound(status, attempt.attempt, status === 'pending' ? (attempt.nextAttemptAt ?? lease.now) : null, lease.now))
      .where('id', '=', attempt.deliveryId)
      .where('status', '!=', pending)
      .executeTakeFirst();
    if (Number(written.numUpdatedRows) === 1) notWritten.delete(attempt.deliveryId);
  }
  // A row pending again (retried meanwhile) keeps its own round, and the attempt is recorded beside it.
  const gone = new Set(notWritten);
  for (const ids of chunks([...notWritten])) {
    for (const row of await trx.selectFrom('herald_deliveries').select('id').where('id', 'in', ids).execute()) gone.delete(row.id);
  }
  return { onRow, gone };
}

/** Keeps when each subscription's newest delivering attempt on a stored row started (see `OutboxSuccessesTable`). */
async function noteSuccesses(trx: Transaction<OutboxDatabase>, settled: readonly SettledAttempt[]): Promise<void> {
  const newest = new Map<string, number>();
  for (const { attempt } of settled) newest.set(attempt.subscriptionId, Math.max(attempt.startedAt, newest.get(attempt.subscriptionId) ?? 0));
  if (newest.size === 0) return;
  await trx
    .insertInto('herald_outbox_successes')
    .values([...newest].map(([subscription_id, at]) => ({ subscription_id, at })))
    .onConflict((oc) =>
      oc.column('subscription_id').doUpdateSet({
        at: sql<number>`case when excluded.at > herald_outbox_successes.at then excluded.at else herald_outbox_successes.at end`,
      }),
    )
    .execute();
}

/** The row of a held delivery whose first attempt settled at `now`: with the attempt on it, when it delivered. */
function settledRow({ attempt, status, held }: SettledAttempt, now: number): DeliveriesTable {
  const delivery = held as NewDelivery;
  return fromDelivery(
    {
      id: delivery.id,
      subscriptionId: delivery.subscriptionId,
      eventSeq: delivery.eventSeq,
      eventId: delivery.eventId,
      status,
      attempts: attempt.attempt,
      nextAttemptAt: status === 'pending' ? (attempt.nextAttemptAt ?? now) : null,
      lockedBy: null,
      lockedUntil: null,
      createdAt: delivery.nextAttemptAt,
      updatedAt: now,
    },
    status === 'delivered' ? attempt : undefined,
  );
}

/** The attempt kept on a delivery's row, read as an attempt row is. */
function attemptOnRow(row: Selectable<DeliveriesTable>): DeliveryAttempt {
  return toAttempt({
    delivery_id: row.id,
    subscription_id: row.subscription_id,
    attempt: Number(row.attempts),
    started_at: row.attempt_started_at as number | string,
    duration_ms: row.attempt_duration_ms as number,
    outcome: 'succeeded',
    response_status: row.attempt_response_status,
    response_body: row.attempt_response_body,
    error: null,
    next_attempt_at: null,
  });
}

function toHold(row: Selectable<OutboxHoldsTable>): Hold {
  return {
    id: row.id,
    name: row.name,
    worker: row.worker,
    lockedUntil: Number(row.locked_until),
    from: Number(row.from_seq),
    to: Number(row.to_seq),
    subscriptionIds: JSON.parse(row.subscription_ids) as string[],
  };
}

/**
 * Moves the position if it is still at `from` and the subscriptions did not change, creates the
 * deliveries not marked claimed, and holds the claimed ones that have no row yet (a replay may have
 * made one): undefined when it did not move, else the ids held and their hold.
 */
async function fanOut(
  trx: Transaction<OutboxDatabase>,
  input: FanOut,
  lease: Lease,
  insertDeliveries: ManyRowInsert<DeliveriesTable, unknown, OutboxDatabase>,
): Promise<{ ids: string[]; hold?: string } | undefined> {
  let move = trx.updateTable('herald_outbox_positions').set({ seq: input.to }).where('name', '=', input.name).where('seq', '=', input.from);
  const version = input.subscriptionVersion;
  if (version !== undefined) move = move.where((eb) => eb(subscriptionVersionQuery(eb), '=', version));
  const moved = await move.executeTakeFirst();
  if (Number(moved.numUpdatedRows) !== 1) return undefined;
  let held = input.deliveries.filter((delivery) => delivery.claimed);
  const subscriptionIds = [...new Set(held.map((delivery) => delivery.subscriptionId))];
  const existing = new Set<string>();
  for (const ids of chunks(subscriptionIds)) {
    const rows = await trx
      .selectFrom('herald_deliveries')
      .select(['subscription_id', 'event_seq'])
      .where('subscription_id', 'in', ids)
      .where('event_seq', '>', input.from)
      .where('event_seq', '<=', input.to)
      .execute();
    for (const row of rows) existing.add(`${row.subscription_id} ${Number(row.event_seq)}`);
  }
  if (existing.size > 0) held = held.filter((delivery) => !existing.has(`${delivery.subscriptionId} ${delivery.eventSeq}`));
  await createDeliveries(trx, insertDeliveries, input.deliveries.filter((delivery) => !delivery.claimed), lease.now);
  if (held.length === 0) return { ids: [] };
  const hold = newId('hld');
  await trx
    .insertInto('herald_outbox_holds')
    .values({
      id: hold,
      name: input.name,
      worker: lease.worker,
      locked_until: lease.until,
      from_seq: input.from,
      to_seq: input.to,
      subscription_ids: JSON.stringify([...new Set(held.map((delivery) => delivery.subscriptionId))]),
    })
    .execute();
  return { ids: held.map((delivery) => delivery.id), hold };
}

/** The version of the subscriptions (`Store['subscriptions']['version']`), as a subquery of a position update. */
function subscriptionVersionQuery(eb: ExpressionBuilder<OutboxDatabase, 'herald_outbox_positions'>) {
  return eb.selectFrom('herald_counters').select('value').where('name', '=', 'subscriptions');
}

/** The outbox as an extension of the SQL store: its tables, their migrations, and the {@link SqlOutbox} on them. */
export const sqlOutboxExtension: SqlStoreExtension<SqlOutbox> = {
  name: 'outbox',
  migrations: outboxMigrations,
  create: (context) => new SqlOutbox(context),
};

/**
 * The outbox on `store`: for the SQL store, its {@link sqlOutboxExtension}, made once per store (its
 * migrations run the first time). Any other store needs an outbox of its own: give it to the push
 * transports (`outbox` option).
 */
export function sqlOutbox(store: Store): Promise<Outbox> {
  if (!isSqlStore(store)) {
    return Promise.reject(new Error('This store has no outbox: push transports need the SQL store, or an `outbox` of their own'));
  }
  return store.extend(sqlOutboxExtension);
}

function isSqlStore(store: Store): store is SqlStore {
  return typeof (store as Partial<SqlStore>).extend === 'function';
}
