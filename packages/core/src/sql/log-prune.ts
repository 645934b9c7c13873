import { type DeleteQueryBuilder, type DeleteResult, type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { RetentionRules } from '../log-retention.js';
import { dropLogPartition, type LogPartition, logPartitions } from './log-partitions.js';
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
 * are gone through apart, by their (type, seq) index, from where the last round stopped. On PostgreSQL the
 * log's own rules go a partition at a time (dropped whole, or swept of all but what is kept: see
 * `#dropPartitions`), and nothing is pruned from the first `seq` an append still in flight may hold.
 */
export class SqlLogPruner {
  readonly #db: Kysely<HeraldDatabase>;
  readonly #flavor: SqlFlavor;
  readonly #gate: WriteGate;
  readonly #holds: readonly LogHold[];
  /** For each type with a retention of its own: its events up to here were gone through. */
  readonly #typeMarks = new Map<string, number>();
  /** PostgreSQL: every event up to here is expired by the log's own rules (those of a type with a retention of its own aside). */
  #expiredTo = 0;
  /** PostgreSQL: which swept partition is swept again next. */
  #sweptTurn = 0;

  constructor(db: Kysely<HeraldDatabase>, flavor: SqlFlavor, gate: WriteGate, holds: readonly LogHold[]) {
    this.#db = db;
    this.#flavor = flavor;
    this.#gate = gate;
    this.#holds = holds;
  }

  /**
   * One round: at most `batchSize` events looked at by the log's rules, and as many per type with its own
   * retention. On PostgreSQL the log's rules drop whole partitions instead (see `#dropPartitions`).
   */
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
    const doomed: number[] = [];
    const compacted: Row[] = [];
    let newFloor = floor;

    if (this.#flavor.name === 'postgres') {
      const dropped = await this.#dropPartitions(rules, floor, limit, countBound, cutoff(rules.maxAge));
      pruned = dropped.pruned;
      more = dropped.more;
    } else {
      // The log's own rules, from the floor up; the walk stops at the first event they keep.
      const rows = await this.#rows(floor, limit, batchSize);
      for (const row of rows) {
        if (!expired(row, rules.maxAge)) break;
        newFloor = row.seq;
        const own = rules.types.get(row.type);
        if (own?.maxAge !== undefined) continue;
        if (own?.compaction === 'subject' && row.subject !== null) compacted.push(row);
        else doomed.push(row.seq);
      }
      more ||= rows.length === batchSize && newFloor === rows.at(-1)?.seq;
    }

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
      pruned += await this.#gate.run(() =>
        this.#unsynced(async (trx) => {
          const deleted = (await deleteSeqs(trx, this.#flavor, doomed)) + (await compact(trx, this.#flavor, compacted));
          if (newFloor > floor) await raiseFloor(trx, newFloor);
          return deleted;
        }),
      );
    }
    return { pruned, floor: Math.max(newFloor, await logFloor(this.#db)), more };
  }

  #unsynced<T>(work: (trx: Transaction<HeraldDatabase>) => Promise<T>): Promise<T> {
    return this.#flavor.unsyncedTransaction ? this.#flavor.unsyncedTransaction(this.#db, work) : this.#db.transaction().execute(work);
  }

  /**
   * PostgreSQL: the log's own rules, a partition at a time, lowest first. A partition goes once every event
   * in it is expired by the log's rules (older than the log's retention or more than `maxEvents` behind the
   * newest; a type with a retention of its own does not count) and below every hold:
   * - none of its events kept by their type: the partition is dropped whole;
   * - else it is swept: one statement deletes its events but those kept (of a type with a retention of its
   *   own, which the per-type rounds prune; the newest of a subject, of a type compacted by subject) and the
   *   older events of the subjects it keeps. Swept partitions are swept again, one a round in turn (for a
   *   subject's newer event, a rule removed), and dropped once they hold no event.
   * The floor moves to the end of each partition that goes. At most {@link partitionsPerRound} per round.
   */
  async #dropPartitions(rules: RetentionRules, floor: number, limit: number, countBound: number, cutoff: string): Promise<{ pruned: number; more: boolean }> {
    const ownAge = [...rules.types].filter(([, own]) => own.maxAge !== undefined).map(([type]) => type);
    const compacted = [...rules.types].filter(([, own]) => own.maxAge === undefined && own.compaction === 'subject').map(([type]) => type);
    // Expiry moves up the log only: each round looks on from where the last one found the first event the rules keep.
    const from = Math.max(floor, this.#expiredTo);
    if (limit > from) {
      const row = await this.#db
        .selectFrom('herald_events')
        .select((eb) => eb.fn.min('seq').as('seq'))
        .where('seq', '>', Math.max(from, countBound))
        .where('seq', '<=', limit)
        .where('time', '>=', cutoff)
        .$if(ownAge.length > 0, (qb) => qb.where('type', 'not in', ownAge))
        .executeTakeFirst();
      this.#expiredTo = row?.seq == null ? limit : Number(row.seq) - 1;
    }
    const upTo = Math.min(this.#expiredTo, limit);
    const due = (await logPartitions(this.#db)).filter((partition) => partition.to - 1 <= upTo);
    const fresh = due.filter((partition) => partition.to - 1 > floor);
    // Swept partitions, below the floor, hold only kept events: one a round is swept again, in turn.
    const swept = due.filter((partition) => partition.to - 1 <= floor);
    const again = swept[this.#sweptTurn++ % Math.max(swept.length, 1)];
    let pruned = 0;
    for (const partition of [...(again ? [again] : []), ...fresh.slice(0, partitionsPerRound)]) {
      const keeps = (ownAge.length > 0 || compacted.length > 0) && (await this.#keepsAny(partition, ownAge, compacted));
      if (keeps) {
        pruned += await this.#gate.run(() => this.#unsynced((trx) => sweepPartition(trx, partition, ownAge, compacted)));
      } else {
        const dropped = await dropLogPartition(this.#db, partition, Math.max(floor, partition.to - 1));
        if (dropped === false) return { pruned, more: false };
        pruned += dropped;
      }
      floor = Math.max(floor, partition.to - 1);
    }
    return { pruned, more: fresh.length > partitionsPerRound };
  }

  /** Whether `partition` holds an event its type keeps beyond the log's rules. */
  async #keepsAny(partition: LogPartition, ownAge: readonly string[], compacted: readonly string[]): Promise<boolean> {
    const { rows } = await sql`select 1 from ${sql.table(partition.name)} as herald_events where ${kept(ownAge, compacted)} limit 1`.execute(this.#db);
    return rows.length > 0;
  }

  /** The last `seq` that may be read (PostgreSQL: whose every smaller `seq` is decided), so that nothing in flight is pruned. */
  async #latest(): Promise<number> {
    const row = await this.#db
      .selectFrom('herald_events')
      .select((eb) => eb.fn.max('seq').as('latest'))
      .$if(this.#flavor.decidedRow !== undefined, (qb) => qb.where(this.#flavor.decidedRow as RawBuilder<boolean>))
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

/** PostgreSQL: partitions dropped or swept per round at most. */
const partitionsPerRound = 4;

async function raiseFloor(trx: Transaction<HeraldDatabase>, floor: number): Promise<void> {
  await trx.updateTable('herald_counters').set({ value: floor }).where('name', '=', 'log_floor').where('value', '<', floor).execute();
}

/**
 * Whether an event (a row of `herald_events`) is kept beyond the log's rules: it is of a type with a
 * retention of its own, or the newest of its subject, of a type compacted by subject.
 */
function kept(ownAge: readonly string[], compacted: readonly string[]): RawBuilder<boolean> {
  const newest = sql`herald_events.seq = (select max(newer.seq) from herald_events as newer where newer.type = herald_events.type and newer.subject = herald_events.subject)`;
  const parts = [
    ...(ownAge.length > 0 ? [sql`herald_events.type in (${sql.join(ownAge)})`] : []),
    ...(compacted.length > 0 ? [sql`(herald_events.type in (${sql.join(compacted)}) and herald_events.subject is not null and ${newest})`] : []),
  ];
  return sql<boolean>`(${sql.join(parts, sql` or `)})`;
}

/**
 * Deletes the events of `partition` but those kept (see {@link kept}), and the older events of the subjects
 * it keeps; moves the floor to its end.
 * @returns the events deleted.
 */
async function sweepPartition(trx: Transaction<HeraldDatabase>, partition: LogPartition, ownAge: readonly string[], compacted: readonly string[]): Promise<number> {
  const inPartition = (query: EventDelete) => query.where('seq', '>=', partition.from).where('seq', '<', partition.to);
  let deleted = await deleteEvents(trx, 'postgres', (query) => inPartition(query).where(sql<boolean>`not ${kept(ownAge, compacted)}`));
  if (compacted.length > 0) {
    deleted += await deleteEvents(trx, 'postgres', (query) =>
      query
        .where('seq', '<', partition.from)
        .where(
          sql<boolean>`(type, subject) in (select type, subject from herald_events as kept where kept.seq >= ${partition.from} and kept.seq < ${partition.to} and kept.type in (${sql.join(compacted)}) and kept.subject is not null)`,
        ),
    );
  }
  await raiseFloor(trx, partition.to - 1);
  return deleted;
}

/** Rows per DELETE, well under every dialect's bound-parameter limit. */
const deleteChunk = 500;

type EventDelete = DeleteQueryBuilder<HeraldDatabase, 'herald_events', DeleteResult>;

/** Deletes the events `where` picks; on PostgreSQL their ids too, so that an id published again after it is a new event, as on SQLite. */
async function deleteEvents(trx: Transaction<HeraldDatabase>, dialect: SqlFlavor['name'], where: (query: EventDelete) => EventDelete): Promise<number> {
  if (dialect !== 'postgres') return Number((await where(trx.deleteFrom('herald_events')).executeTakeFirst()).numDeletedRows);
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
    deleted += await deleteEvents(trx, flavor.name, (query) => query.where('seq', 'in', seqs.slice(at, at + deleteChunk)));
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
      deleted += await deleteEvents(trx, flavor.name, (query) =>
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
