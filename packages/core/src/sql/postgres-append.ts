import { CompiledQuery, type Kysely } from 'kysely';
import type { EventRow, HeraldDatabase } from './schema.js';

const columns = ['id', 'type', 'source', 'subject', 'time', 'datacontenttype', 'data', 'consumer', 'traceparent', 'tracestate'] as const;

/** Rows per statement at most: 5,000 bound parameters, well under PostgreSQL's 65,535. */
export const postgresAppendChunk = 500;

/** The statement for each row count, made once. */
const statements = new Map<number, string>();

/**
 * The statement that appends `count` rows on PostgreSQL, in one round trip: it draws their seqs and their
 * ticket (`herald_claim_seqs`, see `append-tickets.ts`), records each id in `herald_event_ids` unless it
 * is there already (idempotent publish: the partitioned log cannot keep ids unique itself), and inserts the
 * events whose ids were new. The seq drawn for an id already logged stays a gap. Alone, it is its own
 * transaction.
 */
function appendStatement(count: number): string {
  let text = statements.get(count);
  if (text === undefined) {
    const values = Array.from({ length: count }, (_, row) => `(${row + 1}, ${columns.map((_, column) => `$${row * columns.length + column + 1}`).join(', ')})`);
    const list = columns.join(', ');
    text = `with claim as (select seq, ticket, row_number() over (order by seq) as n from herald_claim_seqs(${count})),
      rows (n, ${list}) as (values ${values.join(', ')}),
      fresh as (
        insert into herald_event_ids (id, seq) select rows.id, claim.seq from rows join claim using (n) order by claim.seq
        on conflict (id) do nothing returning id, seq
      )
      insert into herald_events (seq, ticket, ${list})
      select fresh.seq, claim.ticket, ${columns.map((column) => `rows.${column}`).join(', ')}
      from fresh join rows using (id) join claim on claim.seq = fresh.seq order by fresh.seq
      returning id, seq`;
    statements.set(count, text);
  }
  return text;
}

/**
 * Appends `rows` (distinct ids, at most {@link postgresAppendChunk}) and returns the id and seq of each
 * one inserted; the others' ids were logged already.
 */
export async function appendPostgresRows(db: Kysely<HeraldDatabase>, rows: readonly EventRow[]): Promise<{ id: string; seq: number | string }[]> {
  const parameters: unknown[] = [];
  for (const row of rows) for (const column of columns) parameters.push(row[column]);
  const result = await db.executeQuery<{ id: string; seq: string }>(CompiledQuery.raw(appendStatement(rows.length), parameters));
  return result.rows;
}
