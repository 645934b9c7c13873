import { connect, createServer } from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  guardedLookup,
  type LookupFunction,
  privateTargetsAllowed,
  RefusedSchemeError,
  RefusedTargetError,
  refusedAddressClass,
  refusedHost,
  refusedScheme,
  refusedUrlTarget,
} from './address-guard.js';

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
  // IPv4-mapped, NAT64 and 6to4 addresses, as the IPv4 address they carry.
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:10.0.0.1', 'private'],
  ['::ffff:a9fe:a9fe', 'link-local'],
  ['::ffff:0.0.0.0', 'unspecified'],
  ['::ffff:192.88.99.1', '6to4 relay anycast'],
  ['64:ff9b::a00:1', 'private'],
  ['64:ff9b::127.0.0.1', 'loopback'],
  ['64:ff9b::a9fe:a9fe', 'link-local'],
  ['2002:7f00:1::', 'loopback'],
  ['2002:a00:1:5::1', 'private'],
  ['2002:a9fe:a9fe::1', 'link-local'],
  ['2002:6440:1::', 'shared (CGNAT)'],
  ['2002::1', 'unspecified'],
  ['2002:e000:1::', 'multicast'],
  ['2002:c000:201::', 'documentation'],
  ['2002:c612:1::', 'benchmarking'],
  ['::127.0.0.1', 'ipv4-compatible'],
  ['::8.8.8.8', 'ipv4-compatible'],
  ['64:ff9b:1::a00:1', 'local-use NAT64'],
  ['64:ff9b:1:ffff::808:808', 'local-use NAT64'],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'Teredo'],
  ['2001::1', 'Teredo'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['::', 'unspecified'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.255', 'multicast'],
  ['ff02::1', 'multicast'],
  ['255.255.255.255', 'broadcast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.254', 'reserved'],
  ['192.0.0.1', 'IETF protocol assignment'],
  ['192.0.0.170', 'IETF protocol assignment'],
  ['192.0.0.255', 'IETF protocol assignment'],
  ['2001:5::1', 'IETF protocol assignment'],
  ['2001:1::4', 'IETF protocol assignment'],
  ['2001:1ff:ffff::1', 'IETF protocol assignment'],
  ['192.0.0.8', 'dummy'],
  ['100:0:0:1::1', 'dummy'],
  ['100::1', 'discard-only'],
  ['100::ffff:ffff:ffff:ffff', 'discard-only'],
  ['192.88.99.1', '6to4 relay anycast'],
  ['192.88.99.2', '6to4 relay anycast'],
  ['192.88.99.255', '6to4 relay anycast'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['2001:2::1', 'benchmarking'],
  ['2001:2:0:ffff::1', 'benchmarking'],
  ['192.0.2.2', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.255', 'documentation'],
  ['2001:db8::1', 'documentation'],
  ['3fff:fff::1', 'documentation'],
  ['2001:10::1', 'ORCHID'],
  ['2001:1f:ffff::1', 'ORCHID'],
  ['5f00::1', 'segment routing (SRv6)'],
  ['5f00:ffff::1', 'segment routing (SRv6)'],
  ['fec0::1', 'site-local'],
  ['not-an-address', 'reserved'],
];

const allowed = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '172.32.0.1',
  '100.128.0.1',
  '192.169.0.1',
  '169.255.0.1',
  '192.0.3.1',
  '203.0.114.1',
  '2606:4700:4700::1111',
  '2001:4860:4860::8888',
  '2001:db9::1',
  '4000::1',
  'fbff::1',
  '192.0.1.1',
  '192.88.98.255',
  '192.88.100.1',
  '198.17.255.255',
  '198.20.0.1',
  '2001:200::1',
  '2001:db7:ffff::1',
  '3fff:1000::1',
  '5eff::1',
  '5f01::1',
  // What the registries mark globally reachable inside ranges they do not: Port Control Protocol and TURN
  // anycast, DNS-SD registration anycast, AMT, AS112, ORCHIDv2, drone entity tags.
  '192.0.0.9',
  '192.0.0.10',
  '2001:1::1',
  '2001:1::2',
  '2001:1::3',
  '2001:3::1',
  '2001:4:112::1',
  '2001:20::1',
  '2001:2f:ffff::1',
  '2001:30::1',
  // IPv4-mapped, NAT64 and 6to4 addresses of public IPv4 addresses.
  '::ffff:8.8.8.8',
  '::ffff:808:808',
  '::ffff:192.0.0.9',
  '64:ff9b::808:808',
  '64:ff9b::93.184.216.34',
  '2002:808:808::1',
  '2003::1',
];

describe('the address guard', () => {
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
      'https://[::ffff:169.254.169.254]/latest/meta-data',
      'https://192.88.99.1/hook',
      'https://[2001:2::1]/hook',
      'https://[5f00::1]/hook',
      'https://[2002:7f00:1::]/',
      'https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/',
      'https://[64:ff9b::127.0.0.1]/hook',
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
    for (const url of ['https://hooks.example.com/in', 'https://93.184.216.34/hook', 'https://[2606:4700::1]/hook', 'https://[2002:808:808::1]/hook', 'https://[::ffff:8.8.8.8]/hook']) {
      expect(refusedUrlTarget(new URL(url)), url).toBeUndefined();
    }
  });
});

describe('allowing private targets', () => {
  it('follows HERALD_ALLOW_PRIVATE=1 and its alias HERALD_WEBHOOK_ALLOW_PRIVATE=1; the option wins over both', () => {
    expect(privateTargetsAllowed(undefined, {})).toBe(false);
    expect(privateTargetsAllowed(undefined, { HERALD_ALLOW_PRIVATE: '1' })).toBe(true);
    expect(privateTargetsAllowed(undefined, { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' })).toBe(true);
    expect(privateTargetsAllowed(undefined, { HERALD_ALLOW_PRIVATE: '0', HERALD_WEBHOOK_ALLOW_PRIVATE: 'yes' })).toBe(false);
    expect(privateTargetsAllowed(true, {})).toBe(true);
    expect(privateTargetsAllowed(false, { HERALD_ALLOW_PRIVATE: '1', HERALD_WEBHOOK_ALLOW_PRIVATE: '1' })).toBe(false);
  });

  it('checks bare hosts as a host:port pair names them', () => {
    expect(refusedHost('[::1]')?.refused).toBe('loopback');
    expect(refusedHost('10.0.0.1')?.message).toBe('10.0.0.1 is a private address; push transports may not reach it');
    expect(refusedHost('Localhost')?.refused).toBe('local name');
    expect(refusedHost('nats.example.com')).toBeUndefined();
  });
});

/** How every refusal's message ends. */
const allows = '; push transports may not reach it';

/** A TCP server on 127.0.0.1 that counts the connections made to it (and closes them), closed after the test. */
async function loopbackServer(): Promise<{ port: number; readonly connections: number }> {
  const server = createServer((socket) => socket.destroy());
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return connections;
    },
  };
}

describe("the guard's messages", () => {
  it('name the class of a literal address, with the right article', () => {
    expect(refusedHost('::')?.message).toBe(`:: is an unspecified address${allows}`);
    expect(refusedHost('0.0.0.0')?.message).toBe(`0.0.0.0 is an unspecified address${allows}`);
    expect(refusedHost('[::ffff:127.0.0.1]')?.message).toBe(`::ffff:127.0.0.1 is a loopback address${allows}`);
    expect(refusedHost('::127.0.0.1')?.message).toBe(`::127.0.0.1 is an ipv4-compatible address${allows}`);
    expect(refusedHost('fd00::1')?.message).toBe(`fd00::1 is a unique-local address${allows}`);
    expect(refusedHost('2001::1')?.message).toBe(`2001::1 is a Teredo address${allows}`);
    expect(refusedUrlTarget(new URL('https://[2002:7f00:1::]/'))?.message).toBe(`2002:7f00:1:: is a loopback address${allows}`);
    expect(refusedHost('192.0.0.1')?.message).toBe(`192.0.0.1 is an IETF protocol assignment address${allows}`);
    expect(refusedHost('2001:10::1')?.message).toBe(`2001:10::1 is an ORCHID address${allows}`);
    expect(refusedHost('192.88.99.1')?.message).toBe(`192.88.99.1 is a 6to4 relay anycast address${allows}`);
    expect(refusedHost('2001:2::1')?.message).toBe(`2001:2::1 is a benchmarking address${allows}`);
    expect(refusedHost('5f00::1')?.message).toBe(`5f00::1 is a segment routing (SRv6) address${allows}`);
    expect(refusedHost('203.0.113.1')?.message).toBe(`203.0.113.1 is a documentation address${allows}`);
  });

  it("keep how the provider allows the target out of the message, which the consumer reads, in `hint`", () => {
    const refused = refusedHost('10.0.0.1') as RefusedTargetError;
    expect(refused.message).not.toContain('HERALD_ALLOW_PRIVATE');
    expect(refused.hint).toBe('HERALD_ALLOW_PRIVATE=1 allows it for development');
    expect(refusedHost('localhost')?.hint).toBe(refused.hint);
  });

  it('refuse a scheme without TLS, saying what it must be, and keep how the provider allows it in `hint`', () => {
    expect(refusedScheme(new URL('https://hooks.example.com/in'), 'https')).toBeUndefined();
    const refused = refusedScheme(new URL('amqp://rabbit.example.com'), 'amqps') as RefusedSchemeError;
    expect(refused).toBeInstanceOf(RefusedSchemeError);
    expect(refused).toMatchObject({ message: 'must be amqps', scheme: 'amqp', required: 'amqps', code: 'ERR_HERALD_REFUSED_SCHEME' });
    expect(refused.hint).toBe('HERALD_ALLOW_PRIVATE=1 allows amqp for development');
  });

  it('call localhost a local name', () => {
    expect(refusedHost('api.localhost')?.message).toBe(`api.localhost is a local name${allows}`);
  });
});

describe('the guard at connect time', () => {
  const refusal = (lookup: LookupFunction, hostname: string) =>
    new Promise<unknown>((resolve) => lookup(hostname, {}, (error, address) => resolve(error ?? address)));

  it('refuses a name that resolves to loopback, and keeps the address out of the message, in `address`', async () => {
    const error = await refusal(guardedLookup(), 'localhost');
    expect(error).toBeInstanceOf(RefusedTargetError);
    const refused = error as RefusedTargetError;
    expect(refused.message).toBe(`localhost resolves to a loopback address${allows}`);
    expect(refused).toMatchObject({ target: 'localhost', refused: 'loopback', code: 'ERR_HERALD_REFUSED_TARGET', hint: 'HERALD_ALLOW_PRIVATE=1 allows it for development' });
    expect(['127.0.0.1', '::1']).toContain(refused.address);
  });

  it('fails a real connection to a name that resolves to loopback, before it is made', async () => {
    const server = await loopbackServer();
    const { port } = server;
    const error = await new Promise<Error>((resolve, reject) => {
      const socket = connect({ host: 'localhost', port, family: 4, lookup: guardedLookup() });
      socket.on('connect', () => reject(new Error('connected')));
      socket.on('error', resolve);
    });
    expect(error).toMatchObject({ refused: 'loopback', address: '127.0.0.1' });
    expect(error.message).not.toContain('127.0.0.1');
    expect(server.connections).toBe(0);
  });

  it('checks what a name resolves to as a literal address: IPv4-mapped, 6to4 and NAT64 by the IPv4 address they carry, Teredo not at all', async () => {
    const answers: Record<string, string> = {
      'six.example': '2002:7f00:1::',
      'nat.example': '64:ff9b::a00:1',
      'mapped.example': '::ffff:169.254.169.254',
      'teredo.example': '2001:0:4136:e378:8000:63bf:80ff:fffe',
      'public.example': '2002:808:808::1',
      'mapped-public.example': '::ffff:8.8.8.8',
    };
    const resolver: LookupFunction = (hostname, options, callback) => {
      const address = answers[hostname] as string;
      return options.all ? callback(null, [{ address, family: 6 }]) : callback(null, address, 6);
    };
    const lookup = guardedLookup(resolver);
    expect(await refusal(lookup, 'six.example')).toMatchObject({ refused: 'loopback', address: '2002:7f00:1::', message: `six.example resolves to a loopback address${allows}` });
    expect(await refusal(lookup, 'nat.example')).toMatchObject({ refused: 'private', address: '64:ff9b::a00:1' });
    expect(await refusal(lookup, 'mapped.example')).toMatchObject({ refused: 'link-local', address: '::ffff:169.254.169.254' });
    expect(await refusal(lookup, 'teredo.example')).toMatchObject({ refused: 'Teredo' });
    expect(await refusal(lookup, 'public.example')).toBe('2002:808:808::1');
    expect(await refusal(lookup, 'mapped-public.example')).toBe('::ffff:8.8.8.8');
  });

  it('judges an IPv4-mapped answer by the IPv4 address a connection to it reaches, and dials the answer it judged', async () => {
    const server = await loopbackServer();
    const { port } = server;
    // A name that rebinds: public the first time it is asked, loopback after; answered later, as DNS answers.
    let asked = 0;
    const rebinding: LookupFunction = (_hostname, options, callback) => {
      const address = asked++ === 0 ? '::ffff:8.8.8.8' : '::ffff:127.0.0.1';
      setImmediate(() => (options.all ? callback(null, [{ address, family: 6 }]) : callback(null, address, 6)));
    };
    const lookup = guardedLookup(rebinding);
    /** Connects to `rebind.example`; what the socket is about to dial is given up before it dials (no packet leaves). */
    const attempt = (through: LookupFunction, giveUp: boolean) =>
      new Promise<{ dialled?: string; error?: Error; connected?: string }>((resolve) => {
        const socket = connect({ host: 'rebind.example', port, lookup: through });
        socket.on('lookup', (error, address) => {
          if (error || !giveUp) return;
          socket.destroy();
          resolve({ dialled: address });
        });
        socket.on('connect', () => {
          resolve({ connected: socket.remoteAddress as string });
          socket.destroy();
        });
        socket.on('error', (error) => resolve({ error }));
      });

    // The public answer is allowed, and it is what the socket dials.
    expect(await attempt(lookup, true)).toEqual({ dialled: '::ffff:8.8.8.8' });
    // The loopback answer, asked for again by the next connection, is refused as loopback, before it is made.
    const refused = await attempt(lookup, false);
    expect(refused.error).toMatchObject({ refused: 'loopback', address: '::ffff:127.0.0.1', message: `rebind.example resolves to a loopback address${allows}` });
    expect(server.connections).toBe(0);
    // Unguarded, that answer reaches the IPv4 loopback server: why it is judged by the address it carries.
    expect(await attempt(rebinding, false)).toEqual({ connected: '::ffff:127.0.0.1' });
    await vi.waitFor(() => expect(server.connections).toBe(1));
  });
});
