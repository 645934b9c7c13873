import type { Store } from '@herald/core';

/**
 * The seq of the last event up to `until` whose `time` is before `time` (ms since the epoch), 0 when none
 * is: a replay `after` it sends every event of the log from `time` on. A binary search over seqs that reads
 * one event a step (the first after the middle, so gaps left by pruning do not matter). It relies on
 * events' times rising with their seq, which they do within the precision of the appending nodes' clocks:
 * a node whose clock is behind the others' moves the cut by as much.
 */
export async function seqBefore(store: Pick<Store, 'read'>, time: number, until: number): Promise<number> {
  // The answer stays in [low, high]: the first event after `high` (if any up to `until`) is at or after `time`.
  let low = 0;
  let high = until;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const [next] = await store.read({ after: middle, limit: 1 });
    if (next === undefined || next.seq > until || Date.parse(next.time) >= time) high = middle;
    // `next` is before `time`, and is the first event after every seq from `middle` to its own.
    else low = next.seq;
  }
  return low;
}
