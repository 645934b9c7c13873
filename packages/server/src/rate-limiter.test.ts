import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress, WindowCounter } from './rate-limiter.js';

describe('WindowCounter', () => {
  it('refuses past the quota until the window ends', () => {
    let now = 1_000_000;
    const counter = new WindowCounter('key', { requests: 2, window: 10 }, () => now);
    expect(counter.take('a')).toMatchObject({ allowed: true, quota: { remaining: 1, reset: 10 } });
    now += 4_500;
    expect(counter.take('a')).toMatchObject({ allowed: true, quota: { remaining: 0, reset: 6 } });
    expect(counter.take('a')).toMatchObject({ allowed: false, quota: { remaining: 0, reset: 6 } });
    expect(counter.take('b').allowed).toBe(true);
    now += 5_500;
    expect(counter.take('a')).toMatchObject({ allowed: true, quota: { remaining: 1, reset: 10 } });
  });

  it('forgets the windows of idle clients, and never keeps more than its most', () => {
    let now = 0;
    const counter = new WindowCounter('auth-failures', { requests: 5, window: 60 }, () => now, 1_000);
    for (let n = 0; n < 800; n++) counter.take(`10.0.${n >> 8}.${n & 255}`);
    expect(counter.size).toBe(800);
    now += 60_000;
    counter.take('192.0.2.1');
    expect(counter.size).toBe(1);
    for (let n = 0; n < 5_000; n++) counter.take(`client-${n}`);
    expect(counter.size).toBe(1_000);
  });
});

describe('clientAddress', () => {
  const of = (remoteAddress: string, ip?: string) => clientAddress({ socket: { remoteAddress }, ...(ip ? { ip } : {}) } as unknown as IncomingMessage);

  it('counts an IPv6 /64 as one address, and IPv4-mapped addresses as IPv4', () => {
    expect(of('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(of('2001:db8:1:2::ffff')).toBe('2001:db8:1:2::/64');
    expect(of('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(of('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(of('::1')).toBe('0:0:0:0::/64');
    expect(of('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(of('198.51.100.7')).toBe('198.51.100.7');
  });

  it('takes the address express worked out behind a trusted proxy', () => {
    expect(of('10.0.0.1', '203.0.113.9')).toBe('203.0.113.9');
  });
});
