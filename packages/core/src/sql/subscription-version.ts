import type { Kysely } from 'kysely';
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
