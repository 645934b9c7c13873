import { describe, expect, it } from 'vitest';
import { privateTargetsAllowed, refusedAddressClass, refusedHost, refusedUrlTarget } from './address-guard.js';

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
  ['192.0.2.2', 'reserved'],
  ['198.51.100.7', 'reserved'],
  ['203.0.113.255', 'reserved'],
  ['2001:db8::1', 'reserved'],
  ['3fff:fff::1', 'reserved'],
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
    expect(refusedHost('10.0.0.1')?.message).toMatch(/10\.0\.0\.1 is a private address; push transports may not reach it \(HERALD_ALLOW_PRIVATE=1/);
    expect(refusedHost('Localhost')?.refused).toBe('local name');
    expect(refusedHost('nats.example.com')).toBeUndefined();
  });
});
