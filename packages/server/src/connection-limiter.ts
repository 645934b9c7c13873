import type { ConnectionLimiter, Principal } from '@herald/core';

/** Open long-lived connections per credential, shared by every transport of one server. */
export class PerKeyConnectionLimiter implements ConnectionLimiter {
  readonly #open = new Map<string, number>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  acquire(principal: Principal): (() => void) | undefined {
    const key = principal.keyId;
    const open = this.#open.get(key) ?? 0;
    if (open >= this.#max) return undefined;
    this.#open.set(key, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left === 0) this.#open.delete(key);
      else this.#open.set(key, left);
    };
  }
}
