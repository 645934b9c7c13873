import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Principal, RateLimitedError, UnauthorizedError } from '@herald/core';
import { describe, expect, it } from 'vitest';
import { clientAddress, RequestLimiter } from './rate-limiter.js';

describe('RequestLimiter, each node counting on its own', () => {
  it('counts each limit apart: a flood of failed authentications from many addresses leaves a key’s count as it was', async () => {
    const limiter = new RequestLimiter({ key: { requests: 2, window: 60 }, admin: false, authFailures: { requests: 1, window: 60 } });
    const consumer: Principal = { keyId: 'key_a', role: 'consumer', consumer: 'acme' };
    const from = (remoteAddress: string) => ({ socket: { remoteAddress } }) as unknown as IncomingMessage;
    const response = { setHeader() {} } as unknown as ServerResponse;
    const request = () => limiter.authenticate(from('192.0.2.1'), response, async () => consumer);
    await request();
    await request();
    await expect(request()).rejects.toBeInstanceOf(RateLimitedError);
    // More addresses than a limit keeps windows of (100,000), each failing once.
    for (let n = 0; n < 100_001; n++) {
      const address = `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`;
      await expect(limiter.credential(address, async () => Promise.reject(new UnauthorizedError()))).rejects.toBeInstanceOf(UnauthorizedError);
    }
    await expect(request()).rejects.toBeInstanceOf(RateLimitedError);
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
