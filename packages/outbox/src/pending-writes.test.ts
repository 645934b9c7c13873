import { describe, expect, it } from 'vitest';
import type { NewDelivery, SettledAttempt } from './outbox.js';
import { hasWrites, PendingWrites } from './pending-writes.js';

const held = (n: number): NewDelivery => ({ id: `dlv_${n}`, subscriptionId: 'sub_1', eventSeq: n, eventId: `evt_${n}`, nextAttemptAt: 0, claimed: true });
const settled = (n: number): SettledAttempt => ({
  attempt: { deliveryId: `dlv_${n}`, subscriptionId: 'sub_1', attempt: 1, startedAt: 0, durationMs: 1, outcome: 'succeeded' },
  status: 'delivered',
  held: held(n),
});

describe('PendingWrites', () => {
  it('drops a hold with the last of its deliveries to get a row, settled or given back', () => {
    const writes = new PendingWrites();
    writes.held('hld_1', 3);
    writes.settled(settled(1), 'hld_1');
    writes.unheld(held(2), 'hld_1');
    expect(writes.take().dropHolds).toEqual([]);
    writes.settled(settled(3), 'hld_1');
    expect(writes.take()).toEqual({ settle: [settled(3)], unhold: [], dropHolds: ['hld_1'] });
    expect(hasWrites(writes.take())).toBe(false);
  });

  it('puts back a failed commit before what came since', () => {
    const writes = new PendingWrites();
    writes.settled(settled(1), undefined);
    const failed = writes.take();
    writes.settled(settled(2), undefined);
    writes.restore(failed);
    expect(writes.take().settle.map((s) => s.attempt.deliveryId)).toEqual(['dlv_1', 'dlv_2']);
  });

  it('drops a hold it no longer counts at once (it was recovered)', () => {
    const writes = new PendingWrites();
    writes.held('hld_1', 5);
    writes.forget('hld_1');
    writes.settled(settled(1), 'hld_1');
    expect(writes.take().dropHolds).toEqual(['hld_1']);
  });
});
