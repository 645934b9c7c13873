import { type Kysely, type Migration, type RawBuilder, sql } from 'kysely';

/**
 * PostgreSQL appends without a lock held to the commit: each append transaction draws its `seq`s,
 * together with a ticket, in a critical section of microseconds inside one function call (a session
 * advisory lock taken and released in it), then inserts and commits in parallel with the others. The
 * ticket is the newest transaction id that any append had when it drew, its own included: every
 * transaction that drew a smaller `seq` has a transaction id no newer than the ticket. A reader keeps
 * to the rows whose ticket is older than the oldest append still in flight (appends hold a marking
 * lock from their draw to their end; see `herald_read_horizon`): whatever drew a smaller `seq` has
 * then committed (its rows are seen) or rolled back (its `seq`s stay gaps forever). So every read is a
 * complete prefix of the log, as under SQLite's single writer. See docs/architecture.md, "Appends and their readers".
 */

/** The session advisory lock of the draw: "herald" in ASCII. Held for the draw only, never to a commit. */
export const appendLockKey = 0x6865_7261_6c64;

/** Adds `herald_events.ticket` (both dialects, so that the schema is one), and PostgreSQL's draw. */
export function appendTicketsMigration(dialect: 'sqlite' | 'postgres'): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('herald_events').addColumn('ticket', 'bigint').execute();
      if (dialect !== 'postgres') return;
      // Sequences are not transactional: the newest ticket stays drawn when its transaction rolls back, which only makes later tickets more careful.
      await sql`create sequence herald_append_ticket minvalue 0 start 0`.execute(db);
      await sql.raw(claimSeqs({ marked: false })).execute(db);
    },
  };
}

/**
 * Held shared by every append transaction from its draw to its end ("herale"), so that readers can tell
 * appends in flight from every other transaction of the cluster (`herald_read_horizon`).
 */
export const appendingLockKey = appendLockKey + 1;

/** The draw takes {@link appendingLockKey} for the rest of its transaction; `herald_read_horizon()` finds appends by it. */
export function appendHorizonMigration(dialect: 'sqlite' | 'postgres'): Migration {
  return {
    async up(db: Kysely<unknown>) {
      if (dialect !== 'postgres') return;
      await sql.raw(claimSeqs({ marked: true })).execute(db);
      await sql.raw(readHorizon()).execute(db);
    },
  };
}

/**
 * `herald_read_horizon()` made again. Before, an append that was ending could look like a transaction that
 * never appended (its marker released, its id lock still in `pg_locks`), and a reader could read past its
 * rows (seen: a dozen seqs skipped about once every 8 s of appends from 24 connections). See {@link readHorizon}.
 */
export function readHorizonOneLookMigration(dialect: 'sqlite' | 'postgres'): Migration {
  return {
    async up(db: Kysely<unknown>) {
      if (dialect === 'postgres') await sql.raw(readHorizon()).execute(db);
    },
  };
}

/**
 * The oldest append in flight as a reader's snapshot sees it: the smallest transaction id in the snapshot
 * that holds the marker, or that has ended by the time the lock table is read, since an append that ended
 * after the snapshot wrote rows the snapshot does not show; the snapshot's xmax when there is none. The lock
 * table is read once (the id locks and the markers at one instant), and a transaction holding no marker is
 * asked whether it has ended (`pg_xact_status`) only after that read: an ending transaction leaves the
 * snapshots before it lets go of any lock, but lets go of its marker before its id lock leaves `pg_locks`.
 */
function readHorizon(): string {
  const high = Math.floor(appendingLockKey / 2 ** 32);
  const low = appendingLockKey % 2 ** 32;
  return `
    create or replace function herald_read_horizon() returns bigint language sql stable as $$
      with snapshot as (select pg_current_snapshot() as s),
      locks as materialized (
        select locktype, transactionid, virtualtransaction, database from pg_locks
        where granted and (
          (locktype = 'transactionid' and mode = 'ExclusiveLock')
          or (locktype = 'advisory' and classid = ${high} and objid = ${low} and objsubid = 1)
        )
      ),
      running as (select transactionid::text::bigint as xid, virtualtransaction from locks where locktype = 'transactionid'),
      appending as (
        select running.xid from locks marker join running using (virtualtransaction)
        where marker.locktype = 'advisory' and marker.database = (select oid from pg_database where datname = current_database())
      )
      select least(
        pg_snapshot_xmax(s)::text::bigint,
        (select min(x::text::bigint) from pg_snapshot_xip(s) as x
          where case
            when x::text::bigint % 4294967296 in (select xid from appending) then true
            -- Asked after the locks were read: one whose marker was gone then had ended, though its id lock may still show.
            else x::text::bigint % 4294967296 not in (select xid from running) or pg_xact_status(x) <> 'in progress'
          end)
      ) from snapshot
    $$`;
}

/** `herald_claim_seqs(n)`; `marked`: it takes {@link appendingLockKey} for the rest of the transaction first. */
function claimSeqs({ marked }: { marked: boolean }): string {
  return `
    create or replace function herald_claim_seqs(n integer) returns table (seq bigint, ticket bigint) language plpgsql as $$
    declare
      events_seq text := pg_get_serial_sequence('herald_events', 'seq');
      newest bigint;
    begin
      ${marked ? `perform pg_advisory_xact_lock_shared(${appendingLockKey});` : ''}
      perform pg_advisory_lock(${appendLockKey});
      begin
        newest := greatest(pg_current_xact_id()::text::bigint, (select last_value from herald_append_ticket));
        perform setval('herald_append_ticket', newest);
        return query select nextval(events_seq), newest from generate_series(1, n);
      exception when others or query_canceled then
        perform pg_advisory_unlock(${appendLockKey});
        raise;
      end;
      perform pg_advisory_unlock(${appendLockKey});
    end
    $$`;
}

/**
 * Whether a row of `herald_events` may be read: whether every smaller `seq` is decided, because its
 * ticket is older than the oldest transaction in flight, or (looked up only for rows that are not)
 * older than the oldest *append* in flight in this database (rows from before the tickets have none).
 * Tickets never decrease along `seq`, so the rows that may be read are a prefix of the log.
 */
export const decidedRow: RawBuilder<boolean> = sql<boolean>`(ticket is null or ticket < (select pg_snapshot_xmin(pg_current_snapshot())::text::bigint) or ticket < (select herald_read_horizon()))`;
