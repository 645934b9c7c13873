import type { WriteGate } from '@herald/core';
import type { Kysely, Transaction } from 'kysely';
import type { Lease, ReplayRecords } from './outbox.js';
import type { ReplayView } from './replay-view.js';
import type { OutboxDatabase } from './sql-outbox-schema.js';

const running = 'running';

/** Runs `work` in a transaction whose commit is not waited to reach the disk (the outbox's own). */
type UnsyncedTransaction = <T>(work: (trx: Transaction<OutboxDatabase>) => Promise<T>) => Promise<T>;

/**
 * The replays of every node on the SQL store, in `herald_outbox_replays`: a row per subscription, its running
 * replay or else its last one. A unique index on the running ones keeps two nodes from starting two.
 */
export class SqlReplayRecords implements ReplayRecords {
  readonly #db: Kysely<OutboxDatabase>;
  readonly #gate: WriteGate;
  readonly #unsynced: UnsyncedTransaction;

  constructor(db: Kysely<OutboxDatabase>, gate: WriteGate, unsynced: UnsyncedTransaction) {
    this.#db = db;
    this.#gate = gate;
    this.#unsynced = unsynced;
  }

  async begin(replay: ReplayView, lease: Lease): Promise<ReplayView | undefined> {
    for (;;) {
      const other = await this.#transaction(async (trx) => {
        // The subscription's last replay, finished, makes way; a running one stays, and the insert does nothing.
        await trx.deleteFrom('herald_outbox_replays').where('subscription_id', '=', replay.subscriptionId).where('status', '<>', running).execute();
        const inserted = await trx
          .insertInto('herald_outbox_replays')
          .values({ id: replay.id, subscription_id: replay.subscriptionId, status: running, worker: lease.worker, locked_until: lease.until, view: JSON.stringify(replay) })
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        return Number(inserted.numInsertedOrUpdatedRows) === 1 ? undefined : runningOf(trx, replay.subscriptionId);
      });
      // Null: nothing inserted and nothing running, as the other replay finished in between; this one can begin now.
      if (other !== null) return other;
    }
  }

  progress(replay: ReplayView, lease: Lease): Promise<boolean> {
    return this.#write(replay, lease.worker, { status: running, locked_until: lease.until });
  }

  async finish(replay: ReplayView, worker: string): Promise<void> {
    await this.#write(replay, worker, { status: replay.status, locked_until: 0 });
  }

  async latest(subscriptionId: string): Promise<ReplayView | undefined> {
    const row = await this.#db.selectFrom('herald_outbox_replays').select('view').where('subscription_id', '=', subscriptionId).executeTakeFirst();
    return row && (JSON.parse(row.view) as ReplayView);
  }

  cancel(subscriptionId: string, error: string, now: number): Promise<ReplayView | undefined> {
    return this.#transaction(async (trx) => {
      const found = await runningOf(trx, subscriptionId);
      if (!found) return undefined;
      const cancelled: ReplayView = { ...found, status: 'cancelled', finishedAt: new Date(now).toISOString(), error };
      const { numUpdatedRows } = await trx
        .updateTable('herald_outbox_replays')
        .set({ status: cancelled.status, locked_until: 0, view: JSON.stringify(cancelled) })
        .where('id', '=', found.id)
        .where('status', '=', running)
        .executeTakeFirst();
      return Number(numUpdatedRows) === 1 ? cancelled : undefined;
    });
  }

  async takeOver(transport: string, lease: Lease): Promise<ReplayView[]> {
    const expired = await this.#db
      .selectFrom('herald_outbox_replays')
      .select(['id', 'view'])
      .where('status', '=', running)
      .where('locked_until', '<', lease.now)
      .where('subscription_id', 'in', (eb) => eb.selectFrom('herald_subscriptions').select('id').where('transport', '=', transport))
      .execute();
    const taken: ReplayView[] = [];
    for (const { id, view } of expired) {
      // Taken by one worker only: the others' updates find its lease renewed.
      const { numUpdatedRows } = await this.#gate.run(() =>
        this.#db
          .updateTable('herald_outbox_replays')
          .set({ worker: lease.worker, locked_until: lease.until })
          .where('id', '=', id)
          .where('status', '=', running)
          .where('locked_until', '<', lease.now)
          .executeTakeFirst(),
      );
      if (Number(numUpdatedRows) === 1) taken.push(JSON.parse(view) as ReplayView);
    }
    return taken;
  }

  /**
   * Writes `replay` with `columns`, if it still runs under `worker`; whether it did. Unsynced, as the replay's
   * batches are: a power failure loses the end of the log's WAL, never a batch without the progress after it,
   * so a replay taken over after one sends at most its last batches again.
   */
  async #write(replay: ReplayView, worker: string, columns: { status: string; locked_until: number }): Promise<boolean> {
    const { numUpdatedRows } = await this.#unsynced((trx) =>
      trx
        .updateTable('herald_outbox_replays')
        .set({ ...columns, view: JSON.stringify(replay) })
        .where('id', '=', replay.id)
        .where('worker', '=', worker)
        .where('status', '=', running)
        .executeTakeFirst(),
    );
    return Number(numUpdatedRows) === 1;
  }

  #transaction<T>(work: (trx: Transaction<OutboxDatabase>) => Promise<T>): Promise<T> {
    return this.#gate.run(() => this.#db.transaction().execute(work));
  }
}

/** The subscription's running replay; null when none runs. */
async function runningOf(trx: Transaction<OutboxDatabase>, subscriptionId: string): Promise<ReplayView | null> {
  const row = await trx.selectFrom('herald_outbox_replays').select('view').where('subscription_id', '=', subscriptionId).where('status', '=', running).executeTakeFirst();
  return row ? (JSON.parse(row.view) as ReplayView) : null;
}
