import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress } from './rate-limiter.js';

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
