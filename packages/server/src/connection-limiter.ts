import { type ConnectionLimiter, NodeAtCapacityError, type Principal } from '@herald/core';

/**
 * Open long-lived connections per credential, shared by every transport of one server, and in all when
 * `maxTotal` is given.
 */
export class PerKeyConnectionLimiter implements ConnectionLimiter {
  readonly #open = new Map<string, number>();
  readonly #max: number;
  readonly #maxTotal: number | undefined;
  #total = 0;

  constructor(max: number, maxTotal?: number) {
    this.#max = max;
    this.#maxTotal = maxTotal;
  }

  acquire(principal: Principal): (() => void) | undefined {
    const key = principal.keyId;
    const open = this.#open.get(key) ?? 0;
    if (this.#maxTotal !== undefined && this.#total >= this.#maxTotal) throw new NodeAtCapacityError(this.#maxTotal);
    if (open >= this.#max) return undefined;
    this.#open.set(key, open + 1);
    this.#total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total -= 1;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left === 0) this.#open.delete(key);
      else this.#open.set(key, left);
    };
  }
}
