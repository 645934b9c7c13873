import { type Kysely, sql } from 'kysely';
import type { HeraldDatabase } from './schema.js';
import type { SqlFlavor } from './sql-flavor.js';

/**
 * The bytes the log takes. SQLite: the pages of the database file in use (its free pages, which new events
 * reuse, do not count); PostgreSQL: the partitions of the events table and the table of their ids, with their
 * indexes and TOAST.
 */
export async function logBytes(db: Kysely<HeraldDatabase>, flavor: SqlFlavor): Promise<number> {
  if (flavor.name === 'postgres') {
    const { rows } = await sql<{ bytes: string }>`select pg_total_relation_size('herald_event_ids') + coalesce(
        (select sum(pg_total_relation_size(inhrelid)) from pg_inherits where inhparent = 'herald_events'::regclass), 0) as bytes`.execute(db);
    return Number(rows[0]?.bytes ?? 0);
  }
  const pragma = async (name: string) => {
    const { rows } = await sql<Record<string, number>>`select * from ${sql.raw(`pragma_${name}()`)}`.execute(db);
    return Number(Object.values(rows[0] ?? {})[0] ?? 0);
  };
  return ((await pragma('page_count')) - (await pragma('freelist_count'))) * (await pragma('page_size'));
}
