/** A DNS server of a test's own, and a `lookup` that asks it through a real resolver. */
import { createSocket } from 'node:dgram';
import { type LookupAddress, Resolver } from 'node:dns';
import type { LookupFunction } from './address-guard.js';

/**
 * How a {@link TestDnsServer} answers: with `address`, or refusing (`REFUSED`), after `delay` ms (at once unless
 * given); or never.
 */
export type DnsAnswer = { address: string; delay?: number } | { refused: true; delay?: number } | 'never';

/** A DNS server on a UDP port of 127.0.0.1 that answers every A query with one address or a refusal, late, or not at all. */
export interface TestDnsServer {
  /** `127.0.0.1:<port>`, for `Resolver.setServers`. */
  server: string;
  /** How the queries that come from now on are answered. */
  answer(how: DnsAnswer): void;
  /** How many queries it got. */
  queries(): number;
  /** How many answers it sent. */
  answered(): number;
  close(): Promise<void>;
}

export async function startTestDnsServer(how: DnsAnswer = 'never'): Promise<TestDnsServer> {
  const socket = createSocket('udp4');
  const timers = new Set<NodeJS.Timeout>();
  let queries = 0;
  let answered = 0;
  socket.on('message', (query, peer) => {
    queries++;
    if (how === 'never') return;
    const response = answerTo(query, how);
    const send = () => socket.send(response, peer.port, peer.address, () => answered++);
    if (!how.delay) return send();
    const timer = setTimeout(() => {
      timers.delete(timer);
      send();
    }, how.delay);
    timers.add(timer);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    server: `127.0.0.1:${socket.address().port}`,
    answer: (next) => {
      how = next;
    },
    queries: () => queries,
    answered: () => answered,
    close: () => {
      for (const timer of timers) clearTimeout(timer);
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
}

/** The answer to `query`: REFUSED, or `address` for an A question and no record for any other. */
function answerTo(query: Buffer, how: Exclude<DnsAnswer, 'never'>): Buffer {
  let end = 12;
  while ((query[end] as number) !== 0) end += (query[end] as number) + 1;
  const question = query.subarray(12, end + 5);
  const isA = question.readUInt16BE(question.length - 4) === 1;
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  // A response, recursion desired and available; no error, or REFUSED (5).
  header.writeUInt16BE('refused' in how ? 0x8185 : 0x8180, 2);
  header.writeUInt16BE(1, 4);
  if (!isA || 'refused' in how) return Buffer.concat([header, question]);
  header.writeUInt16BE(1, 6);
  // The name is the question's (a pointer to offset 12), class IN, a TTL of 60 s, and the 4 bytes of the address.
  const record = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...how.address.split('.').map(Number)]);
  return Buffer.concat([header, question, record]);
}

/**
 * A `lookup` of IPv4 addresses through a real resolver that asks `server` (`host:port`) only, and once, as a
 * user's own resolver would be plugged in; it gives up on an answer after several seconds (c-ares caps the wait),
 * longer than the tests' attempts. `cancel` ends the queries still waiting.
 */
export function resolverLookup(server: string): { lookup: LookupFunction; cancel(): void } {
  const resolver = new Resolver({ timeout: 30_000, tries: 1 });
  resolver.setServers([server]);
  const lookup: LookupFunction = (hostname, options, callback) => {
    resolver.resolve4(hostname, (error, addresses) => {
      if (error) return callback(error, options.all ? [] : '', 0);
      const list: LookupAddress[] = addresses.map((address) => ({ address, family: 4 }));
      if (options.all) return callback(null, list);
      return callback(null, list[0]?.address ?? '', 4);
    });
  };
  return { lookup, cancel: () => resolver.cancel() };
}
