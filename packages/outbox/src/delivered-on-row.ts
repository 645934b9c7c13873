import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { Lease, SettledAttempt } from './outbox.js';
import type { OutboxDatabase } from './sql-outbox-schema.js';

/** Rows per statement: few distinct statements, each compiled once and kept prepared. */
const step = 25;

/**
 * Marks stored deliveries delivered with their delivering attempt kept on the row, one UPDATE for many
 * rows (each with its own attempt, from a VALUES list), rather than an attempt row and an update each.
 * Only rows this worker still holds and that keep no attempt yet (one delivered in an earlier round,
 * before a replay or retry moved it out) are written; or, for attempts that start a new round
 * (`SettledAttempt.startsRound`), rows still final, whose earlier delivering attempt was moved out just before.
 */
export class DeliveredOnRow {
  readonly #sql = new Map<string, string>();
  readonly #returningCostly: boolean;

  /**
   * `returningCostly` (SQLite, whose RETURNING costs 1 to 3 µs a row): each group is written without it, in a
   * savepoint, and written again with it only when some of its rows were not written, which is rare.
   */
  constructor(returningCostly: boolean) {
    this.#returningCostly = returningCostly;
  }

  /**
   * Writes `settled` (delivered attempts of stored deliveries, all of them starting a new round or none);
   * returns the ids of the rows written.
   */
  async update(db: Kysely<OutboxDatabase>, lease: Lease, settled: readonly SettledAttempt[], startsRound: boolean): Promise<string[]> {
    const written: string[] = [];
    for (let at = 0; at < settled.length; at += step) {
      const group = settled.slice(at, at + step);
      const parameters: unknown[] = [lease.now];
      for (const { attempt } of group) {
        parameters.push(attempt.deliveryId, attempt.startedAt, Math.round(attempt.durationMs), attempt.responseStatus ?? null, attempt.responseBody ?? null);
      }
      if (!startsRound) parameters.push(lease.worker);
      if (this.#returningCostly) {
        await db.executeQuery(savepoint);
        const result = await db.executeQuery(CompiledQuery.raw(this.#text(db, group.length, false, startsRound), parameters));
        if (Number(result.numAffectedRows) === group.length) {
          await db.executeQuery(releaseSavepoint);
          for (const { attempt } of group) written.push(attempt.deliveryId);
          continue;
        }
        await db.executeQuery(rollbackToSavepoint);
        await db.executeQuery(releaseSavepoint);
      }
      const result = await db.executeQuery<{ id: string }>(CompiledQuery.raw(this.#text(db, group.length, true, startsRound), parameters));
      for (const row of result.rows) written.push(row.id);
    }
    return written;
  }

  #text(db: Kysely<OutboxDatabase>, rows: number, returning: boolean, startsRound: boolean): string {
    const key = `${rows} ${returning} ${startsRound}`;
    let text = this.#sql.get(key);
    if (text === undefined) {
      // Typed by casts, so that PostgreSQL does not take the bound values of the VALUES list for text.
      const values = sql.join(
        Array.from(
          { length: rows },
          () => sql`(${null}, cast(${null} as bigint), cast(${null} as integer), cast(${null} as integer), cast(${null} as text))`,
        ),
      );
      const rowsToWrite = startsRound
        ? sql`herald_deliveries.status <> 'pending'`
        : sql`herald_deliveries.locked_by = ${null} and herald_deliveries.attempt_started_at is null`;
      text = sql`update herald_deliveries set status = 'delivered', next_attempt_at = null, locked_by = null, locked_until = null,
        updated_at = cast(${null} as bigint), attempt_started_at = v.column2, attempt_duration_ms = v.column3,
        attempt_response_status = v.column4, attempt_response_body = v.column5${startsRound ? sql`, attempts = 1` : sql``}
        from (values ${values}) as v
        where herald_deliveries.id = v.column1 and ${rowsToWrite}
        ${returning ? sql`returning herald_deliveries.id` : sql``}`.compile(db).sql;
      this.#sql.set(key, text);
    }
    return text;
  }
}

const savepoint = CompiledQuery.raw('savepoint herald_delivered_on_row');
const rollbackToSavepoint = CompiledQuery.raw('rollback to savepoint herald_delivered_on_row');
const releaseSavepoint = CompiledQuery.raw('release savepoint herald_delivered_on_row');
