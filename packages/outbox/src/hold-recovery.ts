import { newId, passesFilter, takesEvent, type TransportContext } from '@herald/core';
import type { Hold, NewDelivery, Outbox } from './outbox.js';

/**
 * Recovers a hold whose worker did not drop it in time (it died, most likely): the deliveries it held
 * that have no row yet are created pending, due at `now`. They are matched against the subscriptions as
 * they are now. False when another worker recovered it first.
 */
export async function recoverHold(context: Pick<TransportContext, 'store' | 'subscriptions' | 'logger'>, outbox: Outbox, hold: Hold, now: number): Promise<boolean> {
  const events = (await context.store.read({ after: hold.from, limit: hold.to - hold.from })).filter((event) => event.seq <= hold.to);
  const deliveries: NewDelivery[] = [];
  for (const id of hold.subscriptionIds) {
    const subscription = await context.subscriptions.get(id);
    if (!subscription) continue;
    for (const event of events) {
      if (takesEvent(event, subscription.types, subscription.consumer) && passesFilter(subscription.filter, event)) {
        deliveries.push({ id: newId('dlv'), subscriptionId: id, eventSeq: event.seq, eventId: event.id, nextAttemptAt: now });
      }
    }
  }
  const recovered = await outbox.recoverHold(hold.id, deliveries, now);
  if (recovered) context.logger.warn({ hold: hold.id, worker: hold.worker, deliveries: deliveries.length }, 'recovered the deliveries of an expired hold');
  return recovered;
}
