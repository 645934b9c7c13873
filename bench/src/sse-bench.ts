/**
 * @herald/sse: fan-out throughput, publish-to-receipt latency and memory per idle connection, against
 * a raw `node:http` `res.write` broadcast of the same frames and better-sse's channel broadcast. Every
 * server runs in its own child process and every client in one more, so the server measured has a
 * core to itself. Prints a markdown section. Run alone: `tsx --conditions=herald-source bench/src/sse-bench.ts`.
 */
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineEventType, } from '@herald/core';
import { createHerald } from '@herald/server';
import { sse } from '@herald/sse';
import { createChannel, createSession } from 'better-sse';
import express from 'express';
import { z } from 'zod';
import { type Child, memory, serveRequests, spawnChild } from './lib/child-process.js';
import { benchEnvelope, type LatencySummary, measureLatency, now, pad, serveClientGroups } from './lib/client-groups.js';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { envNumber, progress } from './lib/rounds.js';
import { formatCount, formatGoal, formatRatio, type Goal, median, meetsGoal, roundRatios, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const fanOutClients = envNumber('BENCH_SSE_CLIENTS', 1000);
const fanOutEvents = envNumber('BENCH_SSE_EVENTS', 500);
const rounds = envNumber('BENCH_ROUNDS', 3);
const latencyRate = 200;
const latencySeconds = envNumber('BENCH_SSE_LATENCY_SECONDS', 5);
const idleConnections = envNumber('BENCH_SSE_IDLE', 10_000);
const goals = { vsRaw: { atLeast: 0.85 } as Goal, vsBetterSse: { atLeast: 1.0 } as Goal, memoryVsRaw: { atMost: 1.5 } as Goal };
/** The issue's other measure of the memory goal: RSS per idle stream, in KiB. */
const memoryKiB = 15;

/** The servers of the fan-out and latency runs. */
type Kind = 'herald' | 'raw' | 'better-sse';
/** `express`, a bare app holding the same streams, only has its memory measured. */
type ServerKind = Kind | 'express';
const kinds: Kind[] = ['herald', 'raw', 'better-sse'];
const label: Record<ServerKind, string> = {
  herald: '@herald/sse',
  raw: 'raw `node:http` `res.write` broadcast',
  'better-sse': 'better-sse 0.16 channel broadcast',
  express: 'a bare express 5 app',
};

const benchEvent = defineEventType('bench.event', z.object({ n: z.number(), t: z.number(), pad: z.string() }));


async function listen(server: ReturnType<typeof createServer>): Promise<number> {
  server.maxConnections = Number.POSITIVE_INFINITY;
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  return (server.address() as AddressInfo).port;
}

async function runServer(kind: ServerKind): Promise<void> {
  let count = () => 0;
  let publish: (n: number) => Promise<void> | void;
  let port: number;
  let key = '';
  let seq = 0;

  if (kind === 'herald') {
    const dir = tempDirectory();
    const adminKey = 'bench-admin-key-0123456789abcdef0123';
    const transport = sse();
    const herald = createHerald({
      database: dir.file('herald.db'),
      logLevel: 'silent',
      env: {},
      adminKey,
      // Every client streams with the one key.
      maxConnectionsPerKey: 1_000_000,
      eventTypes: [benchEvent],
      transports: [transport],
      // Thousands of clients connect with one consumer key in a few seconds: more than its REST quota.
      rateLimit: false,
    });
    const listening = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
    port = listening.port;
    const response = await fetch(`http://127.0.0.1:${port}/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'consumer', consumer: 'bench' }),
    });
    key = ((await response.json()) as { key: string }).key;
    count = () => transport.connections;
    publish = async (n) => void (await herald.publish({ type: 'bench.event', data: { n, t: now(), pad } }));
  } else if (kind === 'raw') {
    const clients = new Set<ServerResponse>();
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.flushHeaders();
      clients.add(res);
      req.once('close', () => clients.delete(res));
    });
    port = await listen(server);
    count = () => clients.size;
    publish = (n) => {
      seq += 1;
      const frame = `id: ${seq}\nevent: bench.event\ndata: ${JSON.stringify(benchEnvelope(seq, n))}\n\n`;
      for (const client of clients) client.write(frame);
    };
  } else if (kind === 'express') {
    const clients = new Set<ServerResponse>();
    const app = express();
    app.get('/', (req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.flushHeaders();
      clients.add(res);
      req.once('close', () => clients.delete(res));
    });
    port = await listen(createServer(app));
    count = () => clients.size;
    publish = () => {
      throw new Error('the express server only has its memory measured');
    };
  } else {
    const channel = createChannel();
    const server = createServer(async (req, res) => {
      const session = await createSession(req, res, { serializer: (data) => data as string, keepAlive: 15_000 });
      channel.register(session);
    });
    port = await listen(server);
    count = () => channel.sessionCount;
    publish = (n) => {
      seq += 1;
      channel.broadcast(JSON.stringify(benchEnvelope(seq, n)), 'bench.event', { eventId: String(seq) });
    };
  }

  serveRequests({
    info: () => ({ port, key }),
    cpu: () => process.cpuUsage(),
    count: () => count(),
    memory,
    /** Publishes `events` events as fast as it can (at `rate` per second when given); returns when it started. */
    async publish({ events, rate }: { events: number; rate?: number }) {
      const startedAt = now();
      if (!rate) {
        const all: (Promise<void> | void)[] = [];
        for (let n = 0; n < events; n++) all.push(publish(n));
        await Promise.all(all);
        return { startedAt };
      }
      // Like producers on their own requests: each publish starts on time, without waiting for the one before.
      const interval = 1000 / rate;
      const all: (Promise<void> | void)[] = [];
      for (let n = 0; n < events; n++) {
        const due = startedAt + n * interval;
        const wait = due - now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        all.push(publish(n));
      }
      await Promise.all(all);
      return { startedAt };
    },
  });
  process.send?.('up');
}

// ---------------------------------------------------------------------------------------------
// Clients, all in one process: plain `node:http` GETs with the same minimal parser for every server.

/**
 * Calls `onEvent` with the publish time of each event frame in the stream: frames end with a blank line,
 * and only event frames carry `"t":`. Reading one number instead of parsing the whole envelope keeps the
 * clients' process cheap, so the servers are what is measured.
 */
function eventStreamParser(onEvent: (publishedAt: number) => void): (chunk: string) => void {
  let buffered = '';
  return (chunk) => {
    buffered = buffered === '' ? chunk : buffered + chunk;
    let start = 0;
    for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n', start)) {
      const at = buffered.indexOf('"t":', start);
      if (at !== -1 && at < end) onEvent(Number.parseFloat(buffered.slice(at + 4, at + 32)));
      start = end + 2;
    }
    buffered = start === buffered.length ? '' : buffered.slice(start);
  };
}

function runClients(): void {
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  serveClientGroups<ServerKind>(250, ({ kind, port, key }, received, onClose) => {
    const path = kind === 'herald' ? '/v1/stream?types=bench.*' : '/';
    const headers = { accept: 'text/event-stream', ...(kind === 'herald' ? { authorization: `Bearer ${key}` } : {}) };
    const parse = eventStreamParser(received);
    return new Promise<void>((resolve, reject) => {
      const get = request({ host: '127.0.0.1', port, path, headers, agent }, (response) => {
        if (response.statusCode !== 200) return reject(new Error(`${kind} answered ${response.statusCode}`));
        response.setEncoding('utf8');
        response.on('data', parse);
        resolve();
      });
      get.on('error', reject);
      get.end();
      onClose(() => get.destroy());
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The orchestra.

async function waitForCount(server: Child, expected: number, what: string): Promise<void> {
  const deadline = now() + 60_000;
  for (;;) {
    const count = await server.call<number>('count');
    if (count === expected) return;
    if (now() > deadline) throw new Error(`${what}: ${count} of ${expected} streams are registered`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main(): Promise<void> {
  const started0 = now();
  const measured = measuredWith('tsx --conditions=herald-source bench/src/sse-bench.ts');
  const clients = await spawnChild(import.meta.url, ['clients']);
  const servers = {} as Record<Kind, Child>;
  for (const kind of kinds) {
    servers[kind] = await spawnChild(import.meta.url, ['server', kind]);
    const { port, key } = await servers[kind].call('info');
    const { ms } = await clients.call('connect', { name: kind, kind, port, key, count: fanOutClients });
    await waitForCount(servers[kind], fanOutClients, kind);
    progress(`${kind}: ${fanOutClients} clients connected in ${Math.round(ms)} ms`);
  }

  // Fan-out: each round runs every kind once, in rotating order; round 0, a fifth of the size, warms up.
  const rates: Record<Kind, number[]> = { herald: [], raw: [], 'better-sse': [] };
  /** CPU time (user + system) the server and the clients spent per delivery, in µs, per round. */
  const serverCpuRuns: Record<Kind, number[]> = { herald: [], raw: [], 'better-sse': [] };
  const clientsCpuRuns: Record<Kind, number[]> = { herald: [], raw: [], 'better-sse': [] };
  for (let round = 0; round < rounds + 1; round++) {
    const events = round === 0 ? Math.ceil(fanOutEvents / 5) : fanOutEvents;
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(round + i) % kinds.length] as Kind;
      await clients.call('reset', { name: kind });
      const [serverBefore, clientsBefore] = await Promise.all([servers[kind].call('cpu'), clients.call('cpu')]);
      const received = clients.call('fanOut', { name: kind, perClient: events });
      const { startedAt } = await servers[kind].call('publish', { events });
      const { lastAt } = await received;
      const [serverAfter, clientsAfter] = await Promise.all([servers[kind].call('cpu'), clients.call('cpu')]);
      const deliveries = fanOutClients * events;
      const perDelivery = (before: NodeJS.CpuUsage, after: NodeJS.CpuUsage) => (after.user + after.system - before.user - before.system) / deliveries;
      const rate = deliveries / ((lastAt - startedAt) / 1000);
      if (round > 0) {
        rates[kind].push(rate);
        serverCpuRuns[kind].push(perDelivery(serverBefore, serverAfter));
        clientsCpuRuns[kind].push(perDelivery(clientsBefore, clientsAfter));
      }
      progress(
        `fan-out ${round === 0 ? 'warm-up' : `round ${round}`} ${kind}: ${formatCount(rate)} deliveries/s; CPU per delivery ${perDelivery(serverBefore, serverAfter).toFixed(2)} µs server, ${perDelivery(clientsBefore, clientsAfter).toFixed(2)} µs clients`,
      );
    }
  }
  const serverCpu = Object.fromEntries(kinds.map((kind) => [kind, median(serverCpuRuns[kind])])) as Record<Kind, number>;
  const clientsCpu = Object.fromEntries(kinds.map((kind) => [kind, median(clientsCpuRuns[kind])])) as Record<Kind, number>;
  const cpuColumns = (kind: Kind) => [`${serverCpu[kind].toFixed(2)} µs`, `${clientsCpu[kind].toFixed(2)} µs`];

  // Latency at a steady rate.
  const latency = {} as Record<Kind, LatencySummary>;
  const latencyEvents = latencyRate * latencySeconds;
  for (const kind of kinds) {
    latency[kind] = await measureLatency(clients, servers[kind], kind, latencyEvents, latencyRate);
    progress(`latency ${kind}: p50 ${latency[kind].p50.toFixed(2)} ms, p99 ${latency[kind].p99.toFixed(2)} ms`);
  }
  for (const kind of kinds) {
    await clients.call('close', { name: kind });
    await servers[kind].kill();
  }

  // Memory per idle connection: a fresh server, measured before and after `idleConnections` connect.
  const perConnection = {} as Record<'herald' | 'raw' | 'express', { rss: number; heap: number }>;
  for (const kind of ['herald', 'raw', 'express'] as const) {
    const server = await spawnChild(import.meta.url, ['server', kind], true);
    const { port, key } = await server.call('info');
    const before = await server.call('memory');
    const { ms } = await clients.call('connect', { name: `idle-${kind}`, kind, port, key, count: idleConnections });
    await waitForCount(server, idleConnections, `idle ${kind}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await server.call('memory');
    perConnection[kind] = { rss: (after.rss - before.rss) / idleConnections, heap: (after.heap - before.heap) / idleConnections };
    progress(`memory ${kind}: ${idleConnections} connections in ${Math.round(ms)} ms, ${formatCount(perConnection[kind].rss)} B RSS / ${formatCount(perConnection[kind].heap)} B heap each`);
    await server.kill();
    await clients.call('close', { name: `idle-${kind}` });
  }
  await clients.kill();

  const fanOut = Object.fromEntries(kinds.map((kind) => [kind, median(rates[kind])])) as Record<Kind, number>;
  const vsRaw = fanOut.herald / fanOut.raw;
  const vsBetterSse = fanOut.herald / fanOut['better-sse'];
  const perRound = (baseline: Kind) => roundRatios({ rounds: rates.herald }, { rounds: rates[baseline] }).map(formatRatio).join(', ');
  const memoryRatio = perConnection.herald.rss / perConnection.raw.rss;
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const sampleFrame = `id: 1\nevent: bench.event\ndata: ${JSON.stringify(benchEnvelope(1, 0))}\n\n`;
  console.log(`## SSE

${measured} It took ${formatCount((now() - started0) / 1000)} s; it is also part of \`pnpm bench\`.

Each server runs in its own process, the clients in another one: plain \`node:http\` GETs with the same minimal
\`text/event-stream\` parser for every server, which finds each frame and reads its publish time. Herald's clients
stream \`?types=bench.*\` with a consumer key; Herald also validates, stores (SQLite, WAL) and numbers each event.
The raw server and better-sse send the same frames (an envelope of ${sampleFrame.length - 'id: 1\nevent: bench.event\ndata: \n\n'.length} bytes of JSON), serialised once per event.
Herald writes the events that arrive together to each stream in one write, a chunk made once and shared by every stream
that gets the same events; the raw server writes each event to each client.

### Fan-out: ${formatCount(fanOutClients)} clients, ${fanOutEvents} events of ~250 bytes, median of ${rounds} rounds

${markdownTable(
  ['server', 'deliveries/s', 'Herald ÷ it', 'per round', 'goal', '', 'server CPU per delivery', 'clients CPU per delivery'],
  [
    [label.herald, formatCount(fanOut.herald), '', '', '', '', ...cpuColumns('herald')],
    [label.raw, formatCount(fanOut.raw), formatRatio(vsRaw), perRound('raw'), formatGoal(goals.vsRaw), verdict(vsRaw, goals.vsRaw), ...cpuColumns('raw')],
    [
      label['better-sse'],
      formatCount(fanOut['better-sse']),
      formatRatio(vsBetterSse),
      perRound('better-sse'),
      formatGoal(goals.vsBetterSse),
      verdict(vsBetterSse, goals.vsBetterSse),
      ...cpuColumns('better-sse'),
    ],
  ],
)}

CPU per delivery is the process's user + system time (\`process.cpuUsage()\`) over the round, divided by its deliveries.
Server CPU per delivery, Herald ÷ raw: ${formatRatio(serverCpu.herald / serverCpu.raw)}.

### Publish-to-receipt latency: ${formatCount(fanOutClients)} clients, ${latencyRate} events/s for ${latencySeconds} s

${markdownTable(
  ['server', 'p50', 'p99', 'max', 'deliveries'],
  kinds.map((kind) => [label[kind], `${latency[kind].p50.toFixed(2)} ms`, `${latency[kind].p99.toFixed(2)} ms`, `${latency[kind].max.toFixed(1)} ms`, formatCount(latency[kind].count)]),
)}

Each event is published on schedule, without waiting for the one before. Herald's time runs from the
\`publish()\` call (validation and the SQLite append, synced to disk, included) to the client's parser.
The run asks for ${formatCount(fanOutClients * latencyRate)} deliveries/s; a server whose fan-out above is below that cannot keep up
on this machine, and its latency is the queue that builds up in ${latencySeconds} s.

### Memory per idle connection at ${formatCount(idleConnections)} connections

${markdownTable(
  ['server', 'RSS per connection', 'JS heap + external per connection', '÷ raw (RSS)', 'goal', ''],
  [
    [
      '@herald/sse (authenticated, ad hoc stream)',
      kib(perConnection.herald.rss),
      kib(perConnection.herald.heap),
      formatRatio(memoryRatio),
      `${formatGoal(goals.memoryVsRaw)}, ≤ ${memoryKiB} KiB`,
      meetsGoal(memoryRatio, goals.memoryVsRaw) && perConnection.herald.rss <= memoryKiB * 1024 ? 'met' : '**missed**',
    ],
    ['raw `node:http`', kib(perConnection.raw.rss), kib(perConnection.raw.heap), '', '', ''],
    [label.express, kib(perConnection.express.rss), kib(perConnection.express.heap), formatRatio(perConnection.express.rss / perConnection.raw.rss), '', ''],
  ],
)}

Herald answers the stream route straight from \`node:http\`, before its express app sees the request (its other
routes go through express); the bare express app, which only holds the same open responses, shows what express's
per-request state would cost each stream.
`);
}

const role = process.argv[2];
if (role === 'server') await runServer(process.argv[3] as ServerKind);
else if (role === 'clients') runClients();
else await main();
