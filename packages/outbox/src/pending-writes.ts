import type { NewDelivery, SettledAttempt } from './outbox.js';

/**
 * Settled attempts, held deliveries given back unsent (created pending), and holds whose deliveries
 * all have their rows (dropped): each commit writes them before its fan-out and claims.
 */
export interface Writes {
  settle: SettledAttempt[];
  unhold: NewDelivery[];
  dropHolds: string[];
}

/**
 * What the engine's next commit writes besides its fan-out and claims, and how many deliveries of each
 * of this worker's holds have no row yet: a hold is dropped with the last of them.
 */
export class PendingWrites {
  #writes: Writes = noWrites();
  readonly #holds = new Map<string, number>();

  /** A fan-out held `count` deliveries in `hold` for this worker, or a replay handed them over in its replay hold. */
  held(hold: string, count: number): void {
    this.#holds.set(hold, count);
  }

  /** The hold was recovered (by any worker): the deliveries still counted in it are no longer this worker's. */
  forget(hold: string): void {
    this.#holds.delete(hold);
  }

  /** An attempt to settle; `hold`, when the delivery was held and gets its row with it. */
  settled(attempt: SettledAttempt, hold: string | undefined): void {
    this.#writes.settle.push(attempt);
    this.#recorded(hold);
  }

  /** A held delivery given back unsent, to be created pending. */
  unheld(delivery: NewDelivery, hold: string | undefined): void {
    this.#writes.unhold.push(delivery);
    this.#recorded(hold);
  }

  /** A replay's delivery given back unsent, and written pending already: its replay hold is dropped with the last of them. */
  givenBack(hold: string | undefined): void {
    this.#recorded(hold);
  }

  /** Takes everything, for the next commit. */
  take(): Writes {
    const writes = this.#writes;
    this.#writes = noWrites();
    return writes;
  }

  /** Puts back what a commit failed to write, to be written first next time. */
  restore(writes: Writes): void {
    const since = this.#writes;
    this.#writes = {
      settle: [...writes.settle, ...since.settle],
      unhold: [...writes.unhold, ...since.unhold],
      dropHolds: [...writes.dropHolds, ...since.dropHolds],
    };
  }

  /** A held delivery will have its row after the next commit (a replay's, its new round): its hold is dropped with the last of them. */
  #recorded(hold: string | undefined): void {
    if (hold === undefined) return;
    const left = (this.#holds.get(hold) ?? 1) - 1;
    if (left > 0) {
      this.#holds.set(hold, left);
      return;
    }
    this.#holds.delete(hold);
    this.#writes.dropHolds.push(hold);
  }
}

/** Whether `writes` has anything to write. */
export function hasWrites({ settle, unhold, dropHolds }: Writes): boolean {
  return settle.length + unhold.length + dropHolds.length > 0;
}

function noWrites(): Writes {
  return { settle: [], unhold: [], dropHolds: [] };
}
