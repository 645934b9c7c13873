import type { LookupFunction } from '@herald/outbox';
import { linger, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { resolverLookup, startTestDnsServer } from '../../outbox/src/dns-server.test-support.js';
import { slowLink, startTcpRelay } from '../../testkit/src/tcp-relay.test-support.js';
import { HttpSender, type HttpSenderOptions } from './http-sender.js';
import { startReceiver, type TestReceiver } from './test-receiver.test-support.js';

/** A sender, closed when the test finishes. */
function sender(options: HttpSenderOptions): HttpSender {
  const created = new HttpSender(options);
  onTestFinished(() => created.close());
  return created;
}

describe('the guard at connect time', () => {
  let receiver: TestReceiver;
  /** A DNS rebinding attacker's name: it looks public at create time, then resolves to loopback. */
  const rebinding: LookupFunction = (hostname, options, callback) => {
    if (hostname !== 'rebind.example') return callback(Object.assign(new Error('unknown'), { code: 'ENOTFOUND' }), options.all ? [] : '', 0);
    return options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
  };
  const post = (target: HttpSender, url: string) => target.post(new URL(url), { 'content-type': 'application/json' }, '{}', 5_000);

  it('refuses a name that resolves to 127.0.0.1 (DNS rebinding), and connects when private targets are allowed', async () => {
    receiver = await startReceiver();
    const refusedResult = await post(sender({ lookup: rebinding }), `http://rebind.example:${receiver.port}/hook`);
    expect(refusedResult.status).toBeUndefined();
    expect(refusedResult.error).toMatch(/^rebind\.example resolves to a loopback address/);
    // What the name resolves to is the provider's to know: the consumer reads this error.
    expect(refusedResult.error).not.toContain('127.0.0.1');
    expect(receiver.requests).toHaveLength(0);

    // The same lookup with the guard off reaches the receiver: the refusal above was the guard's.
    const allowedResult = await post(sender({ lookup: rebinding, allowPrivate: true }), `http://rebind.example:${receiver.port}/hook`);
    expect(allowedResult.status).toBe(204);
    expect(receiver.requests).toHaveLength(1);
  });

  it('refuses literal loopback, mapped and unspecified addresses before connecting', async () => {
    receiver = await startReceiver();
    const guarded = sender({});
    for (const [host, refusedAs] of [
      ['127.0.0.1', 'a loopback'],
      ['[::ffff:127.0.0.1]', 'a loopback'],
      ['0.0.0.0', 'an unspecified'],
    ] as const) {
      const result = await post(guarded, `http://${host}:${receiver.port}/hook`);
      expect(result.error, host).toContain(`is ${refusedAs} address`);
    }
    // `localhost` goes through the system resolver, and what it resolves to is refused.
    expect((await post(guarded, `http://localhost:${receiver.port}/hook`)).error).toMatch(/^localhost resolves to a loopback address/);
    expect(receiver.requests).toHaveLength(0);
  });

  it('over HTTPS, fails an attempt to an endpoint whose certificate it does not trust with the reason, before sending', async () => {
    // Signed by the test CA, which this process does not trust (serve-command.test.ts runs a server that does).
    receiver = await startReceiver(undefined, 0, { tls: true });
    const result = await post(sender({ allowPrivate: true }), receiver.url);
    expect(result).toMatchObject({ error: 'unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)' });
    expect(result.status).toBeUndefined();
    expect(receiver.requests).toHaveLength(0);
    // The guard looks at the address before TLS does.
    expect((await post(sender({}), receiver.url)).error).toMatch(/^localhost resolves to a loopback address/);
  });

  it('does not follow redirects, and keeps only the start of the response body', async () => {
    receiver = await startReceiver((request) =>
      request.n === 1 ? { status: 302, headers: { location: 'http://127.0.0.1:1/elsewhere' } } : { status: 200, body: 'x'.repeat(100_000) },
    );
    const open = sender({ allowPrivate: true, keepBytes: 4096 });
    expect(await post(open, receiver.url)).toMatchObject({ status: 302 });
    const big = await post(open, receiver.url);
    expect(big.status).toBe(200);
    expect(big.body).toHaveLength(4096);
    expect(receiver.requests).toHaveLength(2);
  });

  it('times out an endpoint that does not answer, and reports a refused connection', async () => {
    receiver = await startReceiver(() => ({ hang: true }));
    const open = sender({ allowPrivate: true });
    const started = Date.now();
    const result = await open.post(new URL(receiver.url), {}, '{}', 300);
    expect(result.error).toMatch(/timed out after 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
    const port = receiver.port;
    await receiver.close();
    expect((await post(open, `http://127.0.0.1:${port}/hook`)).error).toMatch(/ECONNREFUSED/);
  });

  it('times each request out after its own timeout, never before it, whatever else is in flight', async () => {
    receiver = await startReceiver(() => ({ hang: true }));
    const open = sender({ allowPrivate: true });
    const url = new URL(receiver.url);
    const slow = open.post(url, {}, '{}', 1_500);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const quick = await open.post(url, {}, '{}', 200);
    expect(quick.error).toBe('timed out after 200 ms');
    expect(quick.durationMs).toBeGreaterThanOrEqual(200);
    expect(quick.durationMs).toBeLessThan(1_000);
    const late = await slow;
    expect(late.error).toBe('timed out after 1500 ms');
    expect(late.durationMs).toBeGreaterThanOrEqual(1_500);
  });
});

describe('a name that does not resolve in time', () => {
  it('fails the attempt within its timeout saying so, with the guard on or off, and connects nowhere when the answer comes late', async () => {
    const receiver = await startReceiver();
    const relay = await startTcpRelay(`127.0.0.1:${receiver.port}`);
    onTestFinished(() => relay.close());
    // A real resolver asks a DNS server of the test's own, which answers the first query only after the attempt's timeout.
    const dns = await startTestDnsServer({ address: '127.0.0.1', delay: 2_000 });
    onTestFinished(() => dns.close());
    const resolver = resolverLookup(dns.server);
    onTestFinished(() => resolver.cancel());
    const url = new URL(`http://hooks.herald.test:${relay.address.split(':')[1]}/hook`);
    const notResolved = 'the name hooks.herald.test was not resolved within 1000 ms (ETIMEOUT)';
    const open = sender({ allowPrivate: true, lookup: resolver.lookup });

    const late = await open.post(url, {}, '{}', 1_000);
    expect(late.error).toBe(notResolved);
    // Its 1000 ms, not the 2000 of the answer (some to spare for a busy machine).
    expect(late.durationMs).toBeLessThan(1_800);
    await waitFor(() => dns.answered() === 1, 'the late answer');
    await linger(200);
    expect(relay.connections()).toBe(0);

    // Behind the address guard too (it would refuse 127.0.0.1, were the name resolved): a DNS server that never answers.
    dns.answer('never');
    expect((await sender({ lookup: resolver.lookup }).post(url, {}, '{}', 1_000)).error).toBe(notResolved);

    dns.answer({ address: '127.0.0.1' });
    expect((await open.post(url, {}, '{}', 1_000)).status).toBe(204);
    expect(relay.connections()).toBe(1);
    expect(receiver.requests).toHaveLength(1);
  });

  it("gives connecting the whole timeout, also past undici's default connect timeout (10 s)", async () => {
    const receiver = await startReceiver(undefined, 0, { tls: true });
    // What the endpoint sends reaches the sender 11 s later: the TLS handshake ends then.
    const relay = await startTcpRelay(`127.0.0.1:${receiver.port}`, { onConnection: slowLink(11_000) });
    onTestFinished(() => relay.close());
    const result = await sender({ allowPrivate: true }).post(new URL(`https://${relay.address}/hook`), {}, '{}', 13_000);
    // The handshake ran to its end, and failed for the certificate, whose authority this process does not trust.
    expect(result.error).toBe('unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)');
    expect(result.durationMs).toBeGreaterThanOrEqual(11_000);
  }, 20_000);
});
