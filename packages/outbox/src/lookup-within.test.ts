import type { LookupAddress } from 'node:dns';
import { describe, expect, it, onTestFinished } from 'vitest';
import { linger, waitFor } from '../../testkit/src/index.js';
import { guardedLookup, type LookupFunction } from './address-guard.js';
import { resolverLookup, startTestDnsServer } from './dns-server.test-support.js';
import { LookupTimeoutError, lookupWithin } from './lookup-within.js';

/** One call of a lookup's callback, `after` ms. */
interface Answer {
  error: NodeJS.ErrnoException | null;
  addresses: string | LookupAddress[];
  after: number;
}

/** The answers a lookup of `hostname` called back with, as they come. */
function answersOf(lookup: LookupFunction, hostname: string): Answer[] {
  const started = Date.now();
  const answers: Answer[] = [];
  lookup(hostname, { all: true }, (error, addresses) => answers.push({ error, addresses, after: Date.now() - started }));
  return answers;
}

describe('lookupWithin', () => {
  it('fails a lookup that a DNS server answers too late once its time is up, and ignores the answer when it comes; one in time is handed on as it is', async () => {
    const dns = await startTestDnsServer({ address: '203.0.113.7', delay: 800 });
    onTestFinished(() => dns.close());
    const resolver = resolverLookup(dns.server);
    onTestFinished(() => resolver.cancel());
    const lookup = lookupWithin(resolver.lookup, 300);
    const answers = answersOf(lookup, 'slow.herald.test');
    await waitFor(() => answers.length > 0, 'the timeout');
    await waitFor(() => dns.answered() === 1, 'the late answer');
    await linger(100);
    expect(answers).toHaveLength(1);
    const [{ error, addresses, after }] = answers as [Answer];
    expect(error).toBeInstanceOf(LookupTimeoutError);
    expect(error).toMatchObject({ code: 'ETIMEOUT', hostname: 'slow.herald.test', ms: 300, message: 'the name slow.herald.test was not resolved within 300 ms' });
    expect(addresses).toEqual([]);
    expect(after).toBeGreaterThanOrEqual(299);
    expect(after).toBeLessThan(600);

    dns.answer({ address: '203.0.113.7' });
    const inTime = answersOf(lookup, 'quick.herald.test');
    await waitFor(() => inTime.length > 0, 'the answer');
    await linger(400);
    expect(inTime).toEqual([{ error: null, addresses: [{ address: '203.0.113.7', family: 4 }], after: expect.any(Number) }]);
  });

  it('fails a lookup that a DNS server never answers, behind the address guard too', async () => {
    const dns = await startTestDnsServer('never');
    onTestFinished(() => dns.close());
    const resolver = resolverLookup(dns.server);
    onTestFinished(() => resolver.cancel());
    const answers = answersOf(lookupWithin(guardedLookup(resolver.lookup), 200), 'silent.herald.test');
    await waitFor(() => answers.length > 0, 'the timeout');
    expect(dns.queries()).toBe(1);
    expect(answers[0]?.error?.message).toBe('the name silent.herald.test was not resolved within 200 ms');
  });
});

describe('LookupTimeoutError', () => {
  it('gives its message with its code as its reason', () => {
    expect(new LookupTimeoutError('slow.herald.test', 250).reason).toBe('the name slow.herald.test was not resolved within 250 ms (ETIMEOUT)');
  });
});
