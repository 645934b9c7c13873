import { type HeraldEvent, sqliteStore } from '@herald/core';
import { newEvent } from '../../testkit/src/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { seqBefore } from './seq-before.js';

const base = Date.parse('2025-03-01T12:00:00.000Z');
const stores: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

/** What a scan of every event says: the seq of the last event up to `until` before `time`, else 0. */
function expected(events: readonly HeraldEvent[], time: number, until: number): number {
  return events.filter((event) => event.seq <= until && Date.parse(event.time) < time).reduce((last, event) => Math.max(last, event.seq), 0);
}

describe('seqBefore', () => {
  it('finds the seq before the first event at or after a time, through runs of equal times and gaps left by pruning', async () => {
    const store = sqliteStore({ path: ':memory:' });
    stores.push(store);
    await store.init();
    // 60 events, three to a second (equal times), every other one of a type that is then pruned.
    await store.append(
      Array.from({ length: 60 }, (_, i) =>
        newEvent(i % 2 === 0 ? 'order.created' : 'invoice.paid', { time: new Date(base + Math.floor(i / 3) * 1_000).toISOString() }),
      ),
    );
    const century = 100 * 365 * 86_400_000;
    const { pruned } = await store.prune({ maxAge: century, types: new Map([['invoice.paid', { maxAge: 1 }]]) });
    // The log keeps its newest event whatever its type: every invoice.paid but the last is gone.
    expect(pruned).toBe(29);
    const events = await store.read({ after: 0, limit: 100 });
    expect(events.filter((event) => event.type === 'invoice.paid').map((event) => event.seq)).toEqual([60]);

    const latest = 60;
    let checked = 0;
    for (let time = base - 2_000; time <= base + 22_000; time += 250) {
      for (const until of [latest, 41, 1, 0]) {
        expect(await seqBefore(store, time, until), `${new Date(time).toISOString()} up to ${until}`).toBe(expected(events, time, until));
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(300);
  });

  it('reads a handful of events, not the log', async () => {
    const store = sqliteStore({ path: ':memory:' });
    stores.push(store);
    await store.init();
    await store.append(Array.from({ length: 5_000 }, (_, i) => newEvent('order.created', { time: new Date(base + i).toISOString() })));
    let reads = 0;
    const counting = {
      read: (options: Parameters<typeof store.read>[0]) => {
        reads += 1;
        return store.read(options);
      },
    };
    expect(await seqBefore(counting, base + 1_234, 5_000)).toBe(1_234);
    expect(reads).toBeLessThanOrEqual(14);
  });
});
