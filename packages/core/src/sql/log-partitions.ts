import { type Kysely, type Migration, sql } from 'kysely';
import { appendLockKey } from './append-tickets.js';
import type { HeraldDatabase } from './schema.js';
import { errorCode } from './sql-flavor.js';

/**
 * PostgreSQL keeps the log in partitions by range of `seq`, so that pruning drops a whole partition
 * rather than deleting its rows one by one. Partition `k` holds the seqs `k × size + 1` to `(k + 1) × size`;
 * a partition table is named after its first seq, `herald_events_from_<first>`. A partitioned table
 * cannot keep `id` unique across its partitions, so the ids live in `herald_event_ids (id, seq)`, written
 * by the same statement as the events (see `postgres-append.ts`) and deleted with them.
 * See docs/guides/retention.md, "PostgreSQL: partitions".
 */

/** Seqs per partition. @default 100_000 */
export const defaultLogPartitionSize = 100_000;

/**
 * The transaction lock taken while partitions are made or dropped: the append lock's key ("herald") plus two.
 * It was plus one before, the key of the appends' own marker (`appendingLockKey`): a maker then waited for
 * every append in flight, an app's open transaction too, and every new append waited for the maker.
 */
const partitionsLockKey = appendLockKey + 2;

/** How many times partitions are made when another maker made the same ones meanwhile. */
const makeTries = 3;

/** A partition of the log: the seqs from `from` up to, not including, `to`. */
export interface LogPartition {
  name: string;
  from: number;
  to: number;
}

/** Checks a `logPartitionSize` (named `name` in the error): a whole number from 1,000 to 100,000,000. */
export function checkLogPartitionSize(size: number, name = 'logPartitionSize'): number {
  if (!Number.isInteger(size) || size < 1_000 || size > 100_000_000) {
    throw new Error(`${name} must be a whole number from 1,000 to 100,000,000 (got ${size})`);
  }
  return size;
}

/**
 * Turns PostgreSQL's `herald_events` into a table partitioned by range of `seq`, keeping every row,
 * every `seq` and the sequence that draws them: the table as it was becomes the first partition
 * (`herald_events_from_0`, up to the last seq drawn), and its ids fill `herald_event_ids`. SQLite: nothing.
 */
export function logPartitionsMigration(dialect: 'sqlite' | 'postgres'): Migration {
  return {
    async up(db: Kysely<unknown>) {
      if (dialect !== 'postgres') return;
      await sql`create table herald_event_ids (id text primary key, seq bigint not null)`.execute(db);
      await sql`insert into herald_event_ids (id, seq) select id, seq from herald_events`.execute(db);
      // A partition's ids go by range with it.
      await sql`create index herald_event_ids_seq on herald_event_ids (seq)`.execute(db);
      const { rows } = await sql<{ last: string | null }>`select greatest(
          (select max(seq) from herald_events),
          (select case when is_called then last_value end from herald_events_seq_seq)
        ) as last`.execute(db);
      const last = rows[0]?.last == null ? 0 : Number(rows[0].last);

      await sql`alter table herald_events rename to herald_events_from_0`.execute(db);
      await sql`alter table herald_events_from_0 drop constraint if exists herald_events_id_key`.execute(db);
      await sql`alter table herald_events_from_0 alter column seq drop default`.execute(db);
      for (const index of ['pkey', 'type_seq', 'subject']) {
        await sql.raw(`alter index herald_events_${index} rename to herald_events_from_0_${index}`).execute(db);
      }
      await sql`create table herald_events (
          seq bigint not null default nextval('herald_events_seq_seq'),
          id text not null,
          type text not null,
          source text not null,
          subject text,
          time text not null,
          datacontenttype text not null,
          data text not null,
          consumer text,
          ticket bigint,
          traceparent text,
          tracestate text,
          primary key (seq)
        ) partition by range (seq)`.execute(db);
      await sql`alter sequence herald_events_seq_seq owned by herald_events.seq`.execute(db);
      await sql`create index herald_events_type_seq on herald_events (type, seq)`.execute(db);
      await sql`create index herald_events_subject on herald_events (type, subject, seq) where subject is not null`.execute(db);
      if (last === 0) {
        await sql`drop table herald_events_from_0`.execute(db);
        return;
      }
      // Its indexes match the partitioned ones, so it is attached with them as they are.
      await sql.raw(`alter table herald_events attach partition herald_events_from_0 for values from (0) to (${last + 1})`).execute(db);
    },
  };
}

/** The partitions of the log, lowest first; one that another node is dropping this moment (its bound already gone) is left out. */
export async function logPartitions(db: Kysely<HeraldDatabase>): Promise<LogPartition[]> {
  const { rows } = await sql<{ name: string; bound: string | null }>`
    select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'herald_events'::regclass`.execute(db);
  return rows
    .filter((row): row is { name: string; bound: string } => row.bound !== null)
    .map(({ name, bound }) => {
      const match = /FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)/.exec(bound);
      if (!match) throw new Error(`the log's partition ${name} has bounds Herald did not make: ${bound}`);
      return { name, from: Number(match[1]), to: Number(match[2]) };
    })
    .sort((a, b) => a.from - b.from);
}

/** Whether `error` is PostgreSQL's for a row whose `seq` no partition of the log takes. */
export function isMissingPartition(error: unknown): boolean {
  return errorCode(error) === '23514' && String((error as { message?: unknown }).message).includes('no partition of relation');
}

/**
 * Whether `error` is PostgreSQL's for a partition another transaction made first: its table's name taken
 * (`42P07`, or `23505` on the catalog when both made it at once), or its range (`42P17`).
 */
function isMadeMeanwhile(error: unknown): boolean {
  return ['42P07', '23505', '42P17'].includes(errorCode(error));
}

/**
 * Makes the log's partitions ahead of its appends, `size` seqs each. Appends never make one in their own
 * transaction (it would lock the log for every other append until they commit): the store makes them
 * at start, in the background once the seqs drawn reach the last partition, and when an append found none.
 */
export class LogPartitionMaker {
  readonly size: number;
  readonly #db: Kysely<HeraldDatabase>;
  /** Where the partitions made so far end, as this store knows it (other nodes may have made more). */
  #end = 0;
  #making?: Promise<void>;

  constructor(db: Kysely<HeraldDatabase>, size: number) {
    this.#db = db;
    this.size = checkLogPartitionSize(size);
  }

  /** The last seq this store appended: where the partitions must go on from. */
  #last = 0;

  /** Notes that `seq` was appended. */
  appended(seq: number): void {
    this.#last = Math.max(this.#last, seq);
  }

  /** Whether the partitions end less than one partition past `rows` more seqs than the last appended (as this store knows them). */
  endsNear(rows = 0): boolean {
    return this.#last + rows + this.size >= this.#end;
  }

  /**
   * Makes partitions up to at least one whole partition past the last seq drawn, one run at a time; `room`:
   * at least that many seqs past it, for an append of that many rows that found no partition.
   */
  async ensure(room = 0): Promise<void> {
    if (room > this.size) {
      await this.#making;
      return this.#make(room);
    }
    this.#making ??= this.#make(room).finally(() => {
      this.#making = undefined;
    });
    return this.#making;
  }

  async #make(room: number): Promise<void> {
    // A maker that does not take this lock (a node of an earlier version, during a rolling upgrade) may make
    // the same partition meanwhile: the next try sees it made, and goes on from it.
    for (let tries = 1; ; tries++) {
      try {
        this.#end = await this.#makeOnce(room);
        return;
      } catch (error) {
        if (!isMadeMeanwhile(error) || tries === makeTries) throw error;
      }
    }
  }

  #makeOnce(room: number): Promise<number> {
    return this.#db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${partitionsLockKey})`.execute(trx);
      const partitions = await logPartitions(trx);
      const { rows } = await sql<{ next: string }>`select case when is_called then last_value + 1 else last_value end as next from herald_events_seq_seq`.execute(trx);
      const next = Number(rows[0]?.next ?? 1);
      this.#last = Math.max(this.#last, next - 1);
      let from = partitions.at(-1)?.to ?? next;
      while (from <= next + Math.max(room, this.size)) {
        const to = (Math.floor((from - 1) / this.size) + 1) * this.size + 1;
        const name = `herald_events_from_${from}`;
        // Made apart and then attached: attaching locks the log against schema changes only, not against appends or reads.
        await sql.raw(`create table ${name} (like herald_events)`).execute(trx);
        await sql.raw(`alter table herald_events attach partition ${name} for values from (${from}) to (${to})`).execute(trx);
        from = to;
      }
      return from;
    });
  }
}

/**
 * Drops `partition` with its ids, in one transaction: the ids first (which locks nothing but them), then
 * the table, which locks the log for a moment. Waits at most `lockTimeout` ms for that lock; false when
 * the lock was not had (a long read), so that the pruner tries again at its next round.
 * @returns the events it held, or false.
 */
export async function dropLogPartition(db: Kysely<HeraldDatabase>, partition: LogPartition, floor: number, lockTimeout = 500): Promise<number | false> {
  try {
    return await db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${partitionsLockKey})`.execute(trx);
      await sql.raw(`set local lock_timeout = ${Math.max(1, Math.round(lockTimeout))}`).execute(trx);
      const table = sql.table(partition.name);
      const { numAffectedRows } = await sql`delete from herald_event_ids where seq >= ${partition.from} and seq < ${partition.to}`.execute(trx);
      // Another node may have dropped it since it was listed: then nothing is left to do but the floor.
      await sql`drop table if exists ${table}`.execute(trx);
      await trx.updateTable('herald_counters').set({ value: floor }).where('name', '=', 'log_floor').where('value', '<', floor).execute();
      return Number(numAffectedRows ?? 0);
    });
  } catch (error) {
    if (errorCode(error) === '55P03') return false;
    throw error;
  }
}
