import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { sharedLookup } from './shared-lookup.js';

/** Why an address is not a push transport's target (a webhook endpoint, a broker). */
export type RefusedAddressClass =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'site-local'
  | 'shared (CGNAT)'
  | 'unique-local'
  | 'ipv4-compatible'
  | 'local-use NAT64'
  | 'Teredo'
  | '6to4 relay anycast'
  | 'IETF protocol assignment'
  | 'documentation'
  | 'benchmarking'
  | 'discard-only'
  | 'dummy'
  | 'ORCHID'
  | 'segment routing (SRv6)'
  | 'multicast'
  | 'broadcast'
  | 'reserved';

/** The IPv4 address an IPv6 range carries, at this byte, says whether it is refused. */
interface CarriesIPv4 {
  ipv4At: number;
}

interface Range<Refused> {
  /** The network, as 4 or 16 bytes. */
  bytes: number[];
  bits: number;
  /** Why its addresses are refused; undefined: they are not, though a wider range's are. */
  refused: Refused | undefined;
}

/** A range the IANA registries mark globally reachable inside a wider one they do not. */
const globallyReachable = undefined;

const v4 = (cidr: string, refused: RefusedAddressClass | undefined): Range<RefusedAddressClass> => {
  const [address, bits] = cidr.split('/') as [string, string];
  return { bytes: parseIPv4(address) as number[], bits: Number(bits), refused };
};
const v6 = (cidr: string, refused: RefusedAddressClass | CarriesIPv4 | undefined): Range<RefusedAddressClass | CarriesIPv4> => {
  const [address, bits] = cidr.split('/') as [string, string];
  return { bytes: parseIPv6(address) as number[], bits: Number(bits), refused };
};

// The IANA IPv4 and IPv6 special-purpose address registries: every range not globally reachable, and the
// deprecated ones; and multicast.
const ipv4Ranges = [
  v4('0.0.0.0/8', 'unspecified'),
  v4('10.0.0.0/8', 'private'),
  v4('100.64.0.0/10', 'shared (CGNAT)'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link-local'),
  v4('172.16.0.0/12', 'private'),
  v4('192.0.0.0/24', 'IETF protocol assignment'),
  v4('192.0.0.8/32', 'dummy'),
  // Port Control Protocol and TURN anycast.
  v4('192.0.0.9/32', globallyReachable),
  v4('192.0.0.10/32', globallyReachable),
  // The documentation ranges (TEST-NET-1 to 3) reach no one on the internet; some networks use them inside.
  v4('192.0.2.0/24', 'documentation'),
  v4('192.88.99.0/24', '6to4 relay anycast'),
  v4('192.168.0.0/16', 'private'),
  v4('198.18.0.0/15', 'benchmarking'),
  v4('198.51.100.0/24', 'documentation'),
  v4('203.0.113.0/24', 'documentation'),
  v4('224.0.0.0/4', 'multicast'),
  v4('240.0.0.0/4', 'reserved'),
  v4('255.255.255.255/32', 'broadcast'),
];

const ipv6Ranges = [
  v6('::/128', 'unspecified'),
  v6('::1/128', 'loopback'),
  // IPv4-mapped (RFC 4291), NAT64 (RFC 6052) and 6to4 (RFC 3056) addresses lead to the IPv4 address they
  // carry, which a connection to them reaches: they are refused as it is, and a public one is allowed.
  v6('::ffff:0:0/96', { ipv4At: 12 }),
  v6('64:ff9b::/96', { ipv4At: 12 }),
  v6('2002::/16', { ipv4At: 2 }),
  // Deprecated (RFC 4291): refused whatever IPv4 address they carry.
  v6('::/96', 'ipv4-compatible'),
  // Where these lead depends on the network's own translator (RFC 8215) or on a Teredo relay (RFC 4380).
  v6('64:ff9b:1::/48', 'local-use NAT64'),
  v6('2001::/32', 'Teredo'),
  v6('100::/64', 'discard-only'),
  v6('100:0:0:1::/64', 'dummy'),
  v6('2001::/23', 'IETF protocol assignment'),
  // Port Control Protocol, TURN and DNS-SD registration anycast; AMT; AS112; ORCHIDv2; drone entity tags.
  v6('2001:1::1/128', globallyReachable),
  v6('2001:1::2/128', globallyReachable),
  v6('2001:1::3/128', globallyReachable),
  v6('2001:3::/32', globallyReachable),
  v6('2001:4:112::/48', globallyReachable),
  v6('2001:20::/28', globallyReachable),
  v6('2001:30::/28', globallyReachable),
  v6('2001:2::/48', 'benchmarking'),
  v6('2001:10::/28', 'ORCHID'),
  v6('2001:db8::/32', 'documentation'),
  v6('3fff::/20', 'documentation'),
  v6('5f00::/16', 'segment routing (SRv6)'),
  v6('fc00::/7', 'unique-local'),
  v6('fe80::/10', 'link-local'),
  v6('fec0::/10', 'site-local'),
  v6('ff00::/8', 'multicast'),
];

function parseIPv4(address: string): number[] | undefined {
  const parts = address.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((part) => (/^\d{1,3}$/.test(part) ? Number(part) : Number.NaN));
  return bytes.every((byte) => byte >= 0 && byte <= 255) ? bytes : undefined;
}

function parseIPv6(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const embedded = parseIPv4(text.slice(lastColon + 1));
    if (!embedded) return undefined;
    tail = embedded;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0] as string);
  const rest = halves.length === 2 ? groups(halves[1] as string) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const group of all) {
    if (!/^[0-9a-f]{1,4}$/.test(group)) return undefined;
    const value = Number.parseInt(group, 16);
    bytes.push(value >> 8, value & 0xff);
  }
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function inRange(bytes: number[], range: Range<unknown>): boolean {
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] as number) & mask) !== ((range.bytes[i] as number) & mask)) return false;
  }
  return true;
}

/**
 * Why an IP address may not be a push transport's target, or undefined when it may be: the ranges the IANA
 * special-purpose address registries do not mark globally reachable (loopback, private, link-local, CGNAT,
 * unique-local, documentation, benchmarking...), the deprecated ones (IPv4-compatible, site-local, 6to4 relay
 * anycast, ORCHID, Teredo), and multicast. An IPv4-mapped (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`) or 6to4
 * (`2002::/16`) address is refused as the IPv4 address it carries is. Text that is not an IP address is
 * refused as `reserved`.
 */
export function refusedAddressClass(address: string): RefusedAddressClass | undefined {
  const family = isIP(address);
  const bytes = family === 4 ? parseIPv4(address) : family === 6 ? parseIPv6(address) : undefined;
  if (!bytes) return 'reserved';
  if (family === 4) return mostSpecific(bytes, ipv4Ranges);
  const refused = mostSpecific(bytes, ipv6Ranges);
  return typeof refused === 'object' ? mostSpecific(bytes.slice(refused.ipv4At, refused.ipv4At + 4), ipv4Ranges) : refused;
}

/** What the most specific range the address is in says: ::1 is loopback, not IPv4-compatible. */
function mostSpecific<Refused>(bytes: number[], ranges: Range<Refused>[]): Refused | undefined {
  let best: Range<Refused> | undefined;
  for (const range of ranges) {
    if (inRange(bytes, range) && (!best || range.bits > best.bits)) best = range;
  }
  return best?.refused;
}

/**
 * A connection or URL refused by the address (SSRF) guard. Its message may reach the consumer (in a 422, as
 * an attempt's error), so it names the class, but neither the address a name resolved to (`address`) nor how
 * the provider allows it (`hint`): those are for the provider's logs.
 */
export class RefusedTargetError extends Error {
  override readonly name = 'RefusedTargetError';
  readonly code = 'ERR_HERALD_REFUSED_TARGET';
  /** For the provider's operator, not the consumer: how push transports may reach the target. */
  readonly hint = allowPrivateHint('it');
  /**
   * @param target The host as given: an address, or a name.
   * @param refused Why it is refused.
   * @param address The refused address the name resolved to, for the provider's logs.
   */
  constructor(
    readonly target: string,
    readonly refused: RefusedAddressClass | 'local name',
    readonly address?: string,
  ) {
    const what = refused === 'local name' ? 'is a local name' : `${address === undefined ? 'is' : 'resolves to'} ${article(refused)} ${refused} address`;
    super(`${target} ${what}; push transports may not reach it`);
  }
}

/**
 * A destination URL without TLS (`http:`, `amqp:`) where the guard requires it. As with
 * {@link RefusedTargetError}, its message is for the consumer (`must be https`), its `hint` for the provider's logs.
 */
export class RefusedSchemeError extends Error {
  override readonly name = 'RefusedSchemeError';
  readonly code = 'ERR_HERALD_REFUSED_SCHEME';
  /** For the provider's operator, not the consumer: how push transports may use the scheme. */
  readonly hint: string;
  /**
   * @param scheme The URL's scheme, without the colon: `http`.
   * @param required The scheme the guard requires: `https`.
   */
  constructor(
    readonly scheme: string,
    readonly required: string,
  ) {
    super(`must be ${required}`);
    this.hint = allowPrivateHint(scheme);
  }
}

/** How the provider allows `what` the guard refuses, for its logs: the consumer can do nothing with it. */
export function allowPrivateHint(what: string): string {
  return `HERALD_ALLOW_PRIVATE=1 allows ${what} for development`;
}

/** The article a class is said with: an unspecified, an ORCHID, but a unique-local address. */
function article(refused: RefusedAddressClass): 'a' | 'an' {
  return /^(?:[aeio]|un(?!i))/i.test(refused) ? 'an' : 'a';
}

/** The hostname of a URL without IPv6 brackets. */
export function bareHostname(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/**
 * The check made when a subscription is created or changed: a literal IP address in the URL must be
 * public, and `localhost` names are refused. Names are checked again at connect time, when they resolve.
 */
export function refusedUrlTarget(url: URL): RefusedTargetError | undefined {
  return refusedHost(url.hostname);
}

/** The check of a URL's scheme made with {@link refusedUrlTarget}: it must be `required` (`https`, `amqps`), with TLS. */
export function refusedScheme(url: URL, required: string): RefusedSchemeError | undefined {
  return url.protocol === `${required}:` ? undefined : new RefusedSchemeError(url.protocol.slice(0, -1), required);
}

/** {@link refusedUrlTarget} for a bare host name or address (`[::1]` or `::1`), as in a `host:port` pair. */
export function refusedHost(hostname: string): RefusedTargetError | undefined {
  const host = bareHostname(hostname).toLowerCase();
  if (isIP(host) !== 0) {
    const refused = refusedAddressClass(host);
    return refused ? new RefusedTargetError(host, refused) : undefined;
  }
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name === 'localhost' || name.endsWith('.localhost')) return new RefusedTargetError(host, 'local name');
  return undefined;
}

/** `dns.lookup`'s shape, as `net.connect` calls it. */
export type LookupFunction = (
  hostname: string,
  options: { family?: number | string; all?: boolean; hints?: number },
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

/**
 * Wraps a lookup so that a name resolving to any refused address fails to connect. The connection goes to
 * the addresses it checked: it hands on `lookup`'s answer as it was, and checks it for each connection. The
 * connections that ask for one name at once share one call of `lookup` ({@link sharedLookup}).
 */
export function guardedLookup(lookup: LookupFunction = dnsLookup as unknown as LookupFunction): LookupFunction {
  const shared = sharedLookup(lookup);
  return (hostname, options, callback) => {
    shared(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, options.all ? [] : '', 0);
      const list = (Array.isArray(addresses) ? addresses : [{ address: addresses, family: isIP(addresses) }]) as LookupAddress[];
      for (const { address } of list) {
        const refused = refusedAddressClass(address);
        if (refused) return callback(new RefusedTargetError(hostname, refused, address), options.all ? [] : '', 0);
      }
      if (list.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), options.all ? [] : '', 0);
      if (options.all) return callback(null, list);
      const first = list[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}

/** Where a push transport's destination names are looked up, and whether the address guard checks them. */
export interface DestinationLookupOptions {
  /** Let names resolve to loopback, private and link-local addresses too: no guard. @default false */
  allowPrivate?: boolean;
  /** Resolves names. @default dns.lookup */
  lookup?: LookupFunction;
}

/** The `lookup` of a push transport's connections: {@link guardedLookup}, or, with private targets allowed, `lookup` as it is. */
export function destinationLookup({ allowPrivate = false, lookup }: DestinationLookupOptions): LookupFunction {
  return allowPrivate ? (lookup ?? (dnsLookup as unknown as LookupFunction)) : guardedLookup(lookup);
}

/**
 * Whether push transports may reach loopback, private and link-local addresses: `allowPrivate` when
 * given, else `HERALD_ALLOW_PRIVATE=1` or its alias `HERALD_WEBHOOK_ALLOW_PRIVATE=1`.
 */
export function privateTargetsAllowed(allowPrivate: boolean | undefined, env: Readonly<Record<string, string | undefined>>): boolean {
  return allowPrivate ?? (env.HERALD_ALLOW_PRIVATE === '1' || env.HERALD_WEBHOOK_ALLOW_PRIVATE === '1');
}
