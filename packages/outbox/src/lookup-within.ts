import type { LookupFunction } from './address-guard.js';

/** A name that a lookup did not resolve in the time it was given. */
export class LookupTimeoutError extends Error {
  override readonly name = 'LookupTimeoutError';
  /** As `dns` says of a DNS server that did not answer in time. */
  readonly code = 'ETIMEOUT';
  constructor(
    readonly hostname: string,
    readonly ms: number,
  ) {
    super(`the name ${hostname} was not resolved within ${ms} ms`);
  }

  /** The message with its code, as an attempt's error says it: `the name X was not resolved within N ms (ETIMEOUT)`. */
  get reason(): string {
    return `${this.message} (${this.code})`;
  }
}

/**
 * `lookup`, failing with a {@link LookupTimeoutError} when it has not answered within `ms`, and ignoring its answer
 * when it comes later: a DNS server that does not answer holds `dns.lookup` for seconds per try and search domain.
 * The lookup itself goes on (`dns.lookup` cannot be cancelled, and keeps one of libuv's threads until it ends).
 */
export function lookupWithin(lookup: LookupFunction, ms: number): LookupFunction {
  return (hostname, options, callback) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      callback(new LookupTimeoutError(hostname, ms), options.all ? [] : '', 0);
    }, ms);
    try {
      lookup(hostname, options, (error, address, family) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        callback(error, address, family);
      });
    } catch (error) {
      clearTimeout(timer);
      throw error;
    }
  };
}

/** A lookup that says which names it is looking up now: see {@link trackedLookup}. */
export interface TrackedLookup {
  lookup: LookupFunction;
  /** Whether a lookup of `hostname` is under way. */
  resolving(hostname: string): boolean;
}

/**
 * `lookup`, counting the lookups under way by name: an attempt that ran out while its connection waited for its name
 * says the name was not resolved in time (its own timer may fire before the lookup's bound, set just after it).
 */
export function trackedLookup(lookup: LookupFunction): TrackedLookup {
  const underWay = new Map<string, number>();
  return {
    lookup: (hostname, options, callback) => {
      underWay.set(hostname, (underWay.get(hostname) ?? 0) + 1);
      lookup(hostname, options, (error, address, family) => {
        const left = (underWay.get(hostname) ?? 1) - 1;
        if (left === 0) underWay.delete(hostname);
        else underWay.set(hostname, left);
        callback(error, address, family);
      });
    },
    resolving: (hostname) => underWay.has(hostname),
  };
}
