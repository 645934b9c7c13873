import { type DeleteQueryBuilder, type DeleteResult, type Kysely, sql, type Transaction } from 'kysely';
import type { RetentionRules } from '../log-retention.js';
import type { HeraldDatabase } from './schema.js';
import type { SqlFlavor } from './sql-flavor.js';
import type { WriteGate } from './write-gate.js';

/** What one round of pruning did. */
export interface PruneResult {
  /** Events deleted. */
  pruned: number;
  /** Every event up to here was pruned, but those their type keeps (its own retention, compaction). */
  floor: number;
  /** More is ready to prune: run again (after letting other work through). */
  more: boolean;
}

/** Answers the lowest `seq` something still needs from the log (a pending push delivery), or undefined for none. */
export type LogHold = () => Promise<number | undefined>;

interface Row {
  seq: number;
  type: string;
  subject: string | null;
  time: string;
}

/**
 * Prunes the log in small batches, each its own short transaction, so that appends are never held up for
 * long. The rules, for each event, in `seq` order:
 * - an event is expired once it is older than its type's retention (else the log's), or more than
 *   `maxEvents` behind the newest;
 * - an expired event of a type compacted by `subject` is kept while it is the newest of its subject;
 * - nothing from the lowest `seq` a {@link LogHold} answers on is touched, nor the newest event (the head
 *   of the log stays where it is).
 * The log's floor moves past the events pruned by the log's own rules; types with a retention of their own
 * are gone through apart, by their (type, seq) index, from where the last round stopped.
 */
export class SqlLogPruner {
  readonly #db: Kysely<HeraldDatabase>;
  readonly #flavor: SqlFlavor;
  readonly #gate: WriteGate;
  readonly #holds: readonly LogHold[];
  /** For each type with a retention of its own: its events up to here were gone through. */
  readonly #typeMarks = new Map<string, number>();

  constructor(db: Kysely<HeraldDatabase>, flavor: SqlFlavor, gate: WriteGate, holds: readonly LogHold[]) {
    this.#db = db;
    this.#flavor = flavor;
    this.#gate = gate;
    this.#holds = holds;
  }

  /** One round: at most `batchSize` events looked at by the log's rules, and as many per type with its own retention. */
  async prune(rules: RetentionRules, now: number, batchSize: number): Promise<PruneResult> {
    const [floor, latest] = await Promise.all([logFloor(this.#db), this.#latest()]);
    let limit = latest - 1;
    for (const hold of this.#holds) {
      const needed = await hold();
      if (needed !== undefined) limit = Math.min(limit, needed - 1);
    }
    const countBound = rules.maxEvents !== undefined ? latest - rules.maxEvents : Number.NEGATIVE_INFINITY;
    const cutoff = (maxAge: number) => new Date(now - maxAge).toISOString();
    const expired = (row: Row, maxAge: number) => row.seq <= countBound || row.time < cutoff(maxAge);
    let pruned = 0;
    let more = false;

    // The log's own rules, from the floor up; the walk stops at the first event they keep.
    const rows = await this.#rows(floor, limit, batchSize);
    const doomed: number[] = [];
    const compacted: Row[] = [];
    let newFloor = floor;
    for (const row of rows) {
      if (!expired(row, rules.maxAge)) break;
      newFloor = row.seq;
      const own = rules.types.get(row.type);
      if (own?.maxAge !== undefined) continue;
      if (own?.compaction === 'subject' && row.subject !== null) compacted.push(row);
      else doomed.push(row.seq);
    }
    more ||= rows.length === batchSize && newFloor === rows.at(-1)?.seq;

    // Each type with its own retention, from where its last round stopped.
    for (const [type, own] of rules.types) {
      if (own.maxAge === undefined) continue;
      const maxAge = own.maxAge;
      const mark = this.#typeMarks.get(type) ?? 0;
      const typeRows = await this.#rows(mark, limit, batchSize, type);
      let reached = mark;
      for (const row of typeRows) {
        if (!expired(row, maxAge)) break;
        reached = row.seq;
        if (own.compaction === 'subject' && row.subject !== null) compacted.push(row);
        else doomed.push(row.seq);
      }
      this.#typeMarks.set(type, reached);
      more ||= typeRows.length === batchSize && reached === typeRows.at(-1)?.seq;
    }

    if (doomed.length > 0 || compacted.length > 0 || newFloor > floor) {
      // One transaction, not waited to disk: a power loss may undo it, which only leaves events to prune again.
      const unsynced = this.#flavor.unsyncedTransaction?.bind(this.#flavor) ?? ((db, work) => db.transaction().execute(work));
      pruned = await this.#gate.run(() =>
        unsynced(this.#db, async (trx: Transaction<HeraldDatabase>) => {
          const deleted = (await deleteSeqs(trx, this.#flavor, doomed)) + (await compact(trx, this.#flavor, compacted));
          if (newFloor > floor) {
            await trx.updateTable('herald_counters').set({ value: newFloor }).where('name', '=', 'log_floor').where('value', '<', newFloor).execute();
          }
          return deleted;
        }),
      );
    }
    return { pruned, floor: newFloor, more };
  }

  async #latest(): Promise<number> {
    const row = await this.#db
      .selectFrom('herald_events')
      .select((eb) => eb.fn.max('seq').as('latest'))
      .executeTakeFirst();
    return Number(row?.latest ?? 0);
  }

  async #rows(after: number, upTo: number, limit: number, type?: string): Promise<Row[]> {
    if (upTo <= after) return [];
    let query = this.#db
      .selectFrom('herald_events')
      .select(['seq', 'type', 'subject', 'time'])
      .where('seq', '>', after)
      .where('seq', '<=', upTo)
      .orderBy('seq')
      .limit(limit);
    if (type !== undefined) query = query.where('type', '=', type);
    return (await query.execute()).map((row) => ({ ...row, seq: Number(row.seq) }));
  }
}

/** Rows per DELETE, well under every dialect's bound-parameter limit. */
const deleteChunk = 500;

type EventDelete = DeleteQueryBuilder<HeraldDatabase, 'herald_events', DeleteResult>;

/** Deletes the events `where` picks; on PostgreSQL their ids too, so that an id published again after it is a new event, as on SQLite. */
async function deleteEvents(trx: Transaction<HeraldDatabase>, flavor: SqlFlavor, where: (query: EventDelete) => EventDelete): Promise<number> {
  if (flavor.name !== 'postgres') return Number((await where(trx.deleteFrom('herald_events')).executeTakeFirst()).numDeletedRows);
  const result = await trx
    .with('gone', (db) => where(db.deleteFrom('herald_events')).returning('id'))
    .deleteFrom('herald_event_ids')
    .where('id', 'in', (eb) => eb.selectFrom('gone').select('gone.id'))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Deletes these events. */
async function deleteSeqs(trx: Transaction<HeraldDatabase>, flavor: SqlFlavor, seqs: readonly number[]): Promise<number> {
  let deleted = 0;
  for (let at = 0; at < seqs.length; at += deleteChunk) {
    deleted += await deleteEvents(trx, flavor, (query) => query.where('seq', 'in', seqs.slice(at, at + deleteChunk)));
  }
  return deleted;
}

/** Expired events of compacted types: each goes unless it is the newest of its subject; older ones of that subject go with it. */
async function compact(trx: Transaction<HeraldDatabase>, flavor: SqlFlavor, rows: readonly Row[]): Promise<number> {
  const byType = new Map<string, { subjects: Set<string>; upTo: number }>();
  for (const row of rows) {
    const entry = byType.get(row.type) ?? { subjects: new Set<string>(), upTo: 0 };
    entry.subjects.add(row.subject as string);
    entry.upTo = Math.max(entry.upTo, row.seq);
    byType.set(row.type, entry);
  }
  let deleted = 0;
  for (const [type, { subjects, upTo }] of byType) {
    const list = [...subjects];
    for (let at = 0; at < list.length; at += deleteChunk) {
      deleted += await deleteEvents(trx, flavor, (query) =>
        query
          .where('type', '=', type)
          .where('subject', 'in', list.slice(at, at + deleteChunk))
          .where('seq', '<=', upTo)
          .where(
            'seq',
            '<',
            sql<number>`(select max(newer.seq) from herald_events as newer where newer.type = herald_events.type and newer.subject = herald_events.subject)`,
          ),
      );
    }
  }
  return deleted;
}

/** The log's floor: every event up to it was pruned, but those their type keeps. */
export async function logFloor(db: Kysely<HeraldDatabase>): Promise<number> {
  const row = await db.selectFrom('herald_counters').select('value').where('name', '=', 'log_floor').executeTakeFirst();
  return Number(row?.value ?? 0);
}
