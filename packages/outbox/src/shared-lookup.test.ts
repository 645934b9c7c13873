import type { LookupAddress } from 'node:dns';
import { describe, expect, it, onTestFinished } from 'vitest';
import { guardedLookup, type LookupFunction, RefusedTargetError } from './address-guard.js';
import { type DnsAnswer, resolverLookup, startTestDnsServer } from './dns-server.test-support.js';
import { sharedLookup } from './shared-lookup.js';

interface Answer {
  error: NodeJS.ErrnoException | null;
  address: string | LookupAddress[];
  family?: number;
}

/** What `lookup` answers `hostname`. */
const ask = (lookup: LookupFunction, hostname: string, options: Parameters<LookupFunction>[1] = { all: true }) =>
  new Promise<Answer>((resolve) => lookup(hostname, options, (error, address, family) => resolve({ error, address, family })));

/** 20 lookups of `hostname` at once, each through a guard of its own (as a transport makes one per connection). */
const twentyAtOnce = (lookup: LookupFunction, hostname: string) => Promise.all(Array.from({ length: 20 }, () => ask(guardedLookup(lookup), hostname)));

/** A DNS server of the test's own, answering `how`, and a real resolver that asks it (once per lookup: no retries). */
async function dnsServer(how: DnsAnswer) {
  const dns = await startTestDnsServer(how);
  onTestFinished(() => dns.close());
  const resolver = resolverLookup(dns.server);
  onTestFinished(() => resolver.cancel());
  return { dns, lookup: resolver.lookup };
}

const public4 = (address: string): LookupAddress[] => [{ address, family: 4 }];

describe('the lookups behind the address guard', () => {
  it('ask a DNS server that answers late once for 20 connections to one name at once, give each the answer, and ask again after it', async () => {
    const { dns, lookup } = await dnsServer({ address: '8.8.8.8', delay: 300 });
    const answers = await twentyAtOnce(lookup, 'hooks.herald.test');
    expect(answers).toEqual(Array(20).fill({ error: null, address: public4('8.8.8.8'), family: undefined }));
    // Each caller has an array of its own.
    expect(new Set(answers.map(({ address }) => address)).size).toBe(20);
    expect(dns.queries()).toBe(1);

    // Nothing is kept: the next connection asks again.
    dns.answer({ address: '8.8.4.4' });
    expect(await ask(guardedLookup(lookup), 'hooks.herald.test')).toEqual({ error: null, address: public4('8.8.4.4'), family: undefined });
    expect(dns.queries()).toBe(2);
  });

  it('hand the failure of the one query to every connection that waited for it, and ask again after it', async () => {
    const { dns, lookup } = await dnsServer({ refused: true, delay: 300 });
    const answers = await twentyAtOnce(lookup, 'hooks.herald.test');
    for (const { error, address } of answers) {
      expect(error).toMatchObject({ code: 'EREFUSED', hostname: 'hooks.herald.test' });
      expect(address).toEqual([]);
    }
    expect(dns.queries()).toBe(1);

    dns.answer({ address: '8.8.8.8' });
    expect(await ask(guardedLookup(lookup), 'hooks.herald.test')).toMatchObject({ error: null, address: public4('8.8.8.8') });
    expect(dns.queries()).toBe(2);
  });

  it('check the shared answer for each connection: each is refused with an error of its own', async () => {
    const { dns, lookup } = await dnsServer({ address: '10.0.0.7', delay: 300 });
    const answers = await twentyAtOnce(lookup, 'hooks.herald.test');
    for (const { error } of answers) {
      expect(error).toBeInstanceOf(RefusedTargetError);
      expect(error).toMatchObject({ target: 'hooks.herald.test', refused: 'private', address: '10.0.0.7' });
    }
    expect(new Set(answers.map(({ error }) => error)).size).toBe(20);
    expect(dns.queries()).toBe(1);
  });

  it('call a lookup of the user’s own once per name and options in flight, and again once it has answered', async () => {
    const calls: string[] = [];
    // As a user's own lookup would: it answers later, on a timer.
    const lookup: LookupFunction = (hostname, options, callback) => {
      calls.push(`${hostname} family ${options.family ?? 'any'}`);
      setTimeout(() => (options.all ? callback(null, public4('8.8.8.8')) : callback(null, '8.8.8.8', 4)), 100);
    };
    const answers = await Promise.all([
      twentyAtOnce(lookup, 'a.herald.test'),
      Promise.all(Array.from({ length: 20 }, () => ask(guardedLookup(lookup), 'a.herald.test', { all: true, family: 4 }))),
      twentyAtOnce(lookup, 'b.herald.test'),
    ]);
    expect(answers.flat()).toEqual(Array(60).fill({ error: null, address: public4('8.8.8.8'), family: undefined }));
    expect(calls).toEqual(['a.herald.test family any', 'a.herald.test family 4', 'b.herald.test family any']);

    await twentyAtOnce(lookup, 'a.herald.test');
    expect(calls).toHaveLength(4);

    // Unguarded, as a transport whose private targets are allowed would use it: the answer as `lookup` gave it.
    const shared = await Promise.all(Array.from({ length: 20 }, () => ask(sharedLookup(lookup), 'a.herald.test', {})));
    expect(shared).toEqual(Array(20).fill({ error: null, address: '8.8.8.8', family: 4 }));
    expect(calls).toHaveLength(5);
  });

  it('give the answer to every caller though one of their callbacks throws, and throw its error after', () => {
    let calls = 0;
    let answer = () => {};
    // A lookup of the user's own that answers when told.
    const lookup: LookupFunction = (_hostname, _options, callback) => {
      calls++;
      answer = () => callback(null, public4('8.8.8.8'));
    };
    const got: Answer['address'][] = [];
    sharedLookup(lookup)('a.herald.test', { all: true }, () => {
      throw new Error('this caller broke');
    });
    for (let i = 0; i < 3; i++) sharedLookup(lookup)('a.herald.test', { all: true }, (_error, address) => got.push(address));
    expect(calls).toBe(1);
    expect(answer).toThrow('this caller broke');
    expect(got).toEqual(Array(3).fill(public4('8.8.8.8')));
  });
});
