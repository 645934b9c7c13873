import { type Logger, StoreUnavailableError } from '@herald/core';
import type { NewDelivery, SettledAttempt } from './outbox.js';
import type { Writes } from './pending-writes.js';

/** Commits `writes` (and nothing else) under the engine's lease. */
export type CommitWrites = (writes: Partial<Writes>) => Promise<unknown>;

/**
 * Writes what a commit the store refused held, one write at a time, so that a write the store never
 * takes (a value it refuses) holds up none of the others. An attempt refused is kept without what came
 * with it from outside (the destination's answer, the error's message) or, when that is refused too, not
 * at all: a delivery a fan-out held is created pending instead, to be sent again; a stored one is claimed
 * again once its lease ends. The holds are dropped only when nothing was left out, so that a recovery
 * creates what is missing. Returns what is left to write when the store became unavailable meanwhile:
 * the engine writes it with its next commit.
 */
export async function writeApart(commit: CommitWrites, writes: Writes, logger: Logger): Promise<Writes | undefined> {
  const { settle, unhold, dropHolds } = writes;
  let settled = 0;
  let unheld = 0;
  let leftOut = false;
  try {
    for (; settled < settle.length; settled++) {
      const attempt = settle[settled] as SettledAttempt;
      if (await taken(commit, { settle: [attempt] })) continue;
      if (await taken(commit, { settle: [withoutOutsideText(attempt)] })) {
        logger.warn({ delivery: attempt.attempt.deliveryId }, "the store refused an attempt's record; kept without what the destination returned");
        continue;
      }
      const recreated = attempt.held !== undefined && (await taken(commit, { unhold: [attempt.held] }));
      if (!recreated) leftOut = true;
      logger.error({ delivery: attempt.attempt.deliveryId }, `the store refused an attempt's record; not kept, the delivery is sent again ${recreated ? 'now' : 'once its lease ends'}`);
    }
    for (; unheld < unhold.length; unheld++) {
      const delivery = unhold[unheld] as NewDelivery;
      if (await taken(commit, { unhold: [delivery] })) continue;
      leftOut = true;
      logger.error({ delivery: delivery.id }, 'the store refused a delivery given back unsent; its hold creates it once its lease ends');
    }
    if (!leftOut && dropHolds.length > 0 && !(await taken(commit, { dropHolds }))) {
      logger.error({ holds: dropHolds }, 'the store refused to drop holds; they are recovered once their lease ends');
    }
    return undefined;
  } catch {
    return { settle: settle.slice(settled), unhold: unhold.slice(unheld), dropHolds: leftOut ? [] : dropHolds };
  }
}

/** Whether the store took `batch`; false when it refused it for what it holds, thrown when the store is unavailable. */
async function taken(commit: CommitWrites, batch: Partial<Writes>): Promise<boolean> {
  try {
    await commit(batch);
    return true;
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error;
    return false;
  }
}

/** `settled` without the words that came with it from outside; its outcome and the delivery's next state stay. */
function withoutOutsideText(settled: SettledAttempt): SettledAttempt {
  const { responseBody: _body, error, ...attempt } = settled.attempt;
  return { ...settled, attempt: error === undefined ? attempt : { ...attempt, error: 'the store refused to keep what this attempt returned' } };
}
