import type { ExpressionBuilder, Kysely, SelectQueryBuilder } from 'kysely';
import type { HeraldDatabase } from './schema.js';

// The version of `Store['subscriptions']`: a counter row, moved in the transaction of each change.

export async function bumpSubscriptionVersion(trx: Kysely<HeraldDatabase>): Promise<void> {
  await trx
    .updateTable('herald_counters')
    .set((eb) => ({ value: eb('value', '+', 1) }))
    .where('name', '=', 'subscriptions')
    .execute();
}

export async function subscriptionVersion(db: Kysely<HeraldDatabase>): Promise<number> {
  const row = await db.selectFrom('herald_counters').select('value').where('name', '=', 'subscriptions').executeTakeFirst();
  return Number(row?.value ?? 0);
}

type PositionsAndCounters = 'herald_outbox_positions' | 'herald_counters';

/** The version as a subquery of a position update, which must only move a position while the subscriptions are at a version. */
export function subscriptionVersionQuery(
  eb: ExpressionBuilder<HeraldDatabase, 'herald_outbox_positions'>,
): SelectQueryBuilder<HeraldDatabase, PositionsAndCounters, { value: number | string }> {
  return eb.selectFrom('herald_counters').select('value').where('name', '=', 'subscriptions');
}
