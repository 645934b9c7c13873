import { afterEach, describe, expect, it } from 'vitest';
import { type LookupFunction, refusedAddressClass, refusedUrlTarget } from './address-guard.js';
import { HttpSender } from './http-sender.js';
import { startReceiver, type TestReceiver } from './test-receiver.test-support.js';

/** Every address class the guard refuses, with examples (checked as values only: nothing connects to them). */
const refused: [string, string][] = [
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['::1', 'loopback'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['169.254.169.254', 'link-local'],
  ['169.254.0.1', 'link-local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf:ffff::1', 'link-local'],
  ['100.64.0.1', 'shared (CGNAT)'],
  ['100.127.255.255', 'shared (CGNAT)'],
  ['fc00::1', 'unique-local'],
  ['fd12:3456:789a::1', 'unique-local'],
  ['::ffff:127.0.0.1', 'ipv4-mapped'],
  ['::ffff:7f00:1', 'ipv4-mapped'],
  ['::ffff:10.0.0.1', 'ipv4-mapped'],
  ['::ffff:8.8.8.8', 'ipv4-mapped'],
  ['64:ff9b::a00:1', 'ipv4-mapped'],
  ['::127.0.0.1', 'ipv4-mapped'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['::', 'unspecified'],
  ['224.0.0.1', 'multicast'],
  ['ff02::1', 'multicast'],
  ['255.255.255.255', 'reserved'],
  ['198.18.0.1', 'reserved'],
  ['not-an-address', 'reserved'],
];

const allowed = ['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '100.128.0.1', '192.169.0.1', '169.255.0.1', '2606:4700:4700::1111', '2001:4860:4860::8888', 'fbff::1'];

describe('the SSRF guard', () => {
  it.each(refused)('refuses %s as %s', (address, refusedAs) => {
    expect(refusedAddressClass(address)).toBe(refusedAs);
  });

  it.each(allowed)('allows the public address %s', (address) => {
    expect(refusedAddressClass(address)).toBeUndefined();
  });

  it('refuses literal private hosts and localhost names in URLs, however they are spelled', () => {
    for (const url of [
      'https://127.0.0.1/hook',
      'https://2130706433/hook',
      'https://0x7f.1/hook',
      'https://[::1]/hook',
      'https://[::ffff:127.0.0.1]/hook',
      'https://169.254.169.254/latest/meta-data',
      'https://10.1.2.3:8443/hook',
      'https://[fd00::1]/hook',
      'https://0.0.0.0/hook',
      'https://localhost/hook',
      'https://LOCALHOST./hook',
      'https://api.localhost/hook',
    ]) {
      expect(refusedUrlTarget(new URL(url)), url).toBeDefined();
    }
    for (const url of ['https://hooks.example.com/in', 'https://93.184.216.34/hook', 'https://[2606:4700::1]/hook']) {
      expect(refusedUrlTarget(new URL(url)), url).toBeUndefined();
    }
  });
});

describe('the guard at connect time', () => {
  let receiver: TestReceiver;
  const senders: HttpSender[] = [];
  afterEach(async () => {
    await Promise.all(senders.splice(0).map((sender) => sender.close()));
    await receiver?.close();
  });
  const sender = (options: ConstructorParameters<typeof HttpSender>[0]) => {
    const created = new HttpSender(options);
    senders.push(created);
    return created;
  };
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
    expect(refusedResult.error).toMatch(/rebind\.example \(127\.0\.0\.1\) is a loopback address/);
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
      ['127.0.0.1', 'loopback'],
      ['[::ffff:127.0.0.1]', 'ipv4-mapped'],
      ['0.0.0.0', 'unspecified'],
    ] as const) {
      const result = await post(guarded, `http://${host}:${receiver.port}/hook`);
      expect(result.error, host).toContain(`is a ${refusedAs} address`);
    }
    // `localhost` goes through the system resolver, and what it resolves to is refused.
    expect((await post(guarded, `http://localhost:${receiver.port}/hook`)).error).toMatch(/is a loopback address/);
    expect(receiver.requests).toHaveLength(0);
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
});
