import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { Lease, SettledAttempt } from './outbox.js';
import type { OutboxDatabase } from './sql-outbox-schema.js';

/** Rows per statement: few distinct statements, each compiled once and kept prepared. */
const step = 25;

/**
 * Marks stored deliveries delivered with their delivering attempt kept on the row, one UPDATE for many
 * rows (each with its own attempt, from a VALUES list), rather than an attempt row and an update each.
 * Only rows this worker still holds and that keep no attempt yet (one delivered in an earlier round,
 * before a replay or retry moved it out) are written.
 */
export class DeliveredOnRow {
  readonly #sql = new Map<number, string>();

  /** Writes `settled` (delivered attempts of stored deliveries); returns the ids of the rows written. */
  async update(db: Kysely<OutboxDatabase>, lease: Lease, settled: readonly SettledAttempt[]): Promise<string[]> {
    const written: string[] = [];
    for (let at = 0; at < settled.length; at += step) {
      const group = settled.slice(at, at + step);
      const parameters: unknown[] = [lease.now];
      for (const { attempt } of group) {
        parameters.push(attempt.deliveryId, attempt.startedAt, Math.round(attempt.durationMs), attempt.responseStatus ?? null, attempt.responseBody ?? null);
      }
      parameters.push(lease.worker);
      const result = await db.executeQuery<{ id: string }>(CompiledQuery.raw(this.#text(db, group.length), parameters));
      for (const row of result.rows) written.push(row.id);
    }
    return written;
  }

  #text(db: Kysely<OutboxDatabase>, rows: number): string {
    let text = this.#sql.get(rows);
    if (text === undefined) {
      // Typed by casts, so that PostgreSQL does not take the bound values of the VALUES list for text.
      const values = sql.join(
        Array.from(
          { length: rows },
          () => sql`(${null}, cast(${null} as bigint), cast(${null} as integer), cast(${null} as integer), cast(${null} as text))`,
        ),
      );
      text = sql`update herald_deliveries set status = 'delivered', next_attempt_at = null, locked_by = null, locked_until = null,
        updated_at = cast(${null} as bigint), attempt_started_at = v.column2, attempt_duration_ms = v.column3,
        attempt_response_status = v.column4, attempt_response_body = v.column5
        from (values ${values}) as v
        where herald_deliveries.id = v.column1 and herald_deliveries.locked_by = ${null} and herald_deliveries.attempt_started_at is null
        returning herald_deliveries.id`.compile(db).sql;
      this.#sql.set(rows, text);
    }
    return text;
  }
}
