import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from './address-guard.js';

type LookupCallback = Parameters<LookupFunction>[2];

/** The callbacks waiting for each lookup in flight: by lookup function, then by name and options. */
const inFlight = new WeakMap<LookupFunction, Map<string, LookupCallback[]>>();

/**
 * `lookup`, with concurrent lookups of one name with the same options coalesced into one call: a caller that asks
 * while one is in flight waits for it and gets its answer or error, each through its own callback (and its own copy
 * of the addresses). Every wrapper of the same `lookup` shares the lookups in flight, so that one name holds at most
 * one of libuv's threads at a time, however many connections ask for it. Nothing is kept once a lookup ends: the
 * next caller asks again (coalescing, not caching).
 *
 * @param lookup The lookup to share: `dns.lookup` unless given.
 */
export function sharedLookup(lookup: LookupFunction = dnsLookup as unknown as LookupFunction): LookupFunction {
  let byQuestion = inFlight.get(lookup);
  if (!byQuestion) inFlight.set(lookup, (byQuestion = new Map()));
  const waiting = byQuestion;
  return (hostname, options, callback) => {
    const question = JSON.stringify([hostname, Object.entries(options).sort(([a], [b]) => (a < b ? -1 : 1))]);
    const joined = waiting.get(question);
    if (joined) {
      joined.push(callback);
      return;
    }
    const callbacks = [callback];
    waiting.set(question, callbacks);
    const ended = () => {
      if (waiting.get(question) === callbacks) waiting.delete(question);
    };
    try {
      lookup(hostname, options, (error, address, family) => {
        ended();
        // A callback that throws does not keep the answer from the others; its error is thrown once they have it.
        let thrown: { error: unknown } | undefined;
        for (const each of callbacks) {
          try {
            each(error, Array.isArray(address) ? address.map((entry) => ({ ...entry })) : address, family);
          } catch (error) {
            thrown ??= { error };
          }
        }
        if (thrown) throw thrown.error;
      });
    } catch (error) {
      ended();
      throw error;
    }
  };
}
