import type { HeraldEvent } from '@herald/core';
import { type Child, serveRequests } from './child-process.js';
import { percentile } from './stats.js';

/** A monotonic clock shared by every process on the machine (CLOCK_MONOTONIC), in ms. */
export const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Pads `data` so that the envelope is about 250 bytes of JSON. */
export const pad = 'x'.repeat(48);

/** The envelope Herald sends for the `n`th event, for the baselines to send the same bytes; `data.t` is when it was made. */
export function benchEnvelope(seq: number, n: number): HeraldEvent<{ n: number; t: number; pad: string }> {
  return {
    specversion: '1.0',
    id: `evt_${seq.toString(36).padStart(20, '0')}`,
    seq,
    type: 'bench.event',
    source: '/herald',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { n, t: now(), pad },
  };
}

/** What a fan-out benchmark's clients process is asked to connect: `count` clients of one server, as the group `name`. */
export interface ConnectRequest<Kind extends string> {
  name: string;
  kind: Kind;
  port: number;
  key: string;
  count: number;
}

/** Opens one client of `request`; it calls `received` with each event's publish time and registers how it is closed. */
export type OpenClient<Kind extends string> = (
  request: ConnectRequest<Kind>,
  received: (publishedAt: number) => void,
  onClose: (close: () => void) => void,
) => Promise<void>;

interface ClientGroup {
  counters: { received: number }[];
  /** Called with each event's publish time, when measuring latency. */
  onEvent?: (publishedAt: number) => void;
  samples?: number[];
  lastAt: number;
  closers: (() => void)[];
}

/**
 * The clients' process of a fan-out benchmark (WebSocket, SSE): groups of clients opened `batch` at a
 * time by `open`, and the calls the benchmark makes on them: `connect`, `reset`, `fanOut` (waits until
 * every client has `perClient` events), `startLatency`, `latency`, `close`, `cpu`. Says `'up'` when ready.
 */
export function serveClientGroups<Kind extends string>(batch: number, open: OpenClient<Kind>): void {
  const groups = new Map<string, ClientGroup>();
  const groupNamed = (name: string) => {
    const group = groups.get(name);
    if (!group) throw new Error(`no client group ${name}`);
    return group;
  };

  /** Resolves when every client of `group` received `perClient` events since the last reset; rejects when that stalls for a minute. */
  const allReceived = (group: ClientGroup, perClient: number) =>
    new Promise<void>((resolve, reject) => {
      let total = -1;
      let progressAt = now();
      const check = () => {
        if (group.counters.every((counter) => counter.received >= perClient)) return resolve();
        const received = group.counters.reduce((sum, counter) => sum + counter.received, 0);
        if (received !== total) {
          total = received;
          progressAt = now();
        } else if (now() - progressAt > 60_000) {
          return reject(new Error(`stalled: ${group.counters.filter((c) => c.received < perClient).length} clients behind, ${received} deliveries`));
        }
        setTimeout(check, 5);
      };
      check();
    });

  serveRequests({
    async connect(request: ConnectRequest<Kind>) {
      const group: ClientGroup = { counters: [], lastAt: 0, closers: [] };
      groups.set(request.name, group);
      const started = now();
      for (let opened = 0; opened < request.count; opened += batch) {
        await Promise.all(
          Array.from({ length: Math.min(batch, request.count - opened) }, () => {
            const counter = { received: 0 };
            group.counters.push(counter);
            const received = (publishedAt: number) => {
              counter.received += 1;
              group.lastAt = now();
              group.onEvent?.(publishedAt);
            };
            return open(request, received, (close) => group.closers.push(close));
          }),
        );
      }
      return { ms: now() - started };
    },
    reset({ name }: { name: string }) {
      const group = groupNamed(name);
      for (const counter of group.counters) counter.received = 0;
      group.onEvent = undefined;
      return true;
    },
    async fanOut({ name, perClient }: { name: string; perClient: number }) {
      const group = groupNamed(name);
      await allReceived(group, perClient);
      return { lastAt: group.lastAt };
    },
    startLatency({ name }: { name: string }) {
      const group = groupNamed(name);
      const samples: number[] = [];
      group.samples = samples;
      group.onEvent = (publishedAt) => samples.push(now() - publishedAt);
      for (const counter of group.counters) counter.received = 0;
      return true;
    },
    async latency({ name, perClient }: { name: string; perClient: number }) {
      const group = groupNamed(name);
      await allReceived(group, perClient);
      const samples = group.samples ?? [];
      group.onEvent = undefined;
      return { p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples.reduce((a, b) => Math.max(a, b), 0), count: samples.length };
    },
    close({ name }: { name: string }) {
      for (const close of groupNamed(name).closers) close();
      groups.delete(name);
      return true;
    },
    cpu: () => process.cpuUsage(),
  });
  process.send?.('up');
}

/** Publish-to-receipt latency of a client group, in ms. */
export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
  count: number;
}

/** Has `server` publish `events` at `rate` per second, and measures how long each took to reach the group `name`. */
export async function measureLatency(clients: Child, server: Child, name: string, events: number, rate: number): Promise<LatencySummary> {
  await clients.call('startLatency', { name });
  const done = clients.call<LatencySummary>('latency', { name, perClient: events });
  await server.call('publish', { events, rate });
  return done;
}
