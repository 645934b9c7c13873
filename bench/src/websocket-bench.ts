/**
 * @herald/websocket: fan-out throughput, publish-to-receipt latency and memory per idle connection,
 * against a raw `ws` broadcast of the same frames and Socket.IO 4's broadcast. Every server runs in
 * its own child process and every client in one more, so the server measured has a core to itself.
 * Prints a markdown section. Run alone: `tsx --conditions=herald-source bench/src/websocket-bench.ts`.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { HeraldSocket } from '@herald/client';
import { defineEventType, type HeraldEvent } from '@herald/core';
import { createHerald } from '@herald/server';
import { websocket } from '@herald/websocket';
import { Server as SocketIoServer } from 'socket.io';
import { io as socketIoClient, type Socket as SocketIoSocket } from 'socket.io-client';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { type Child, memory, serveRequests, spawnChild } from './lib/child-process.js';
import { benchEnvelope, type LatencySummary, measureLatency, now, pad, serveClientGroups } from './lib/client-groups.js';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { envNumber, progress } from './lib/rounds.js';
import { formatCount, formatGoal, formatRatio, type Goal, median, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const fanOutClients = envNumber('BENCH_WS_CLIENTS', 1000);
const fanOutEvents = envNumber('BENCH_WS_EVENTS', 500);
const rounds = envNumber('BENCH_ROUNDS', 5);
/** Socket.IO's rounds take several times longer than the others', and its ratio is far from its goal: fewer of them. */
const socketIoRounds = Math.min(rounds, 3);
const latencyRate = 200;
const latencySeconds = envNumber('BENCH_WS_LATENCY_SECONDS', 5);
const idleConnections = envNumber('BENCH_WS_IDLE', 10_000);
const goals = { vsWs: { atLeast: 0.85 } as Goal, vsSocketIo: { atLeast: 1.15 } as Goal, memory: { atMost: 1.5 } as Goal, cpuVsWs: { atMost: 0.6 } as Goal };

/**
 * What is measured, each with its own server process: Herald with minimal clients (the same work per
 * frame as the raw clients: `JSON.parse`), Herald with `HeraldSocket` clients, a raw `ws` server, Socket.IO.
 */
type Kind = 'herald' | 'herald-socket' | 'ws' | 'socketio';
const allKinds: Kind[] = ['herald', 'herald-socket', 'ws', 'socketio'];
/** `BENCH_WS_KINDS`: the servers to run, comma-separated (a baseline is compared only when its Herald run is there too). @default all four */
const kinds = (process.env.BENCH_WS_KINDS?.split(',') ?? allKinds).filter((kind): kind is Kind => allKinds.includes(kind as Kind));
/** `BENCH_WS_PARTS`: which of `fan-out`, `latency`, `memory` to run, comma-separated. @default all three */
const parts = new Set(process.env.BENCH_WS_PARTS?.split(',') ?? ['fan-out', 'latency', 'memory']);
/** `BENCH_WS_CPU_PROF`: a folder where each server writes a V8 CPU profile of its measured fan-out rounds. */
const cpuProfileDir = process.env.BENCH_WS_CPU_PROF;
const label: Record<Kind, [server: string, clients: string]> = {
  herald: ['@herald/websocket', '`ws`, `JSON.parse` per frame'],
  'herald-socket': ['@herald/websocket', '`HeraldSocket` (on `ws`)'],
  ws: ['raw `ws`: each batch corked and written client by client', '`ws`, `JSON.parse` per frame'],
  socketio: ['Socket.IO 4: `io.emit()` per event', '`socket.io-client`, websocket transport'],
};
/** Which Herald run each baseline is compared with: like clients for the raw server, each library's own for Socket.IO. */
const comparedWith: Partial<Record<Kind, Kind>> = { ws: 'herald', socketio: 'herald-socket' };

const benchEvent = defineEventType('bench.event', z.object({ n: z.number(), t: z.number(), pad: z.string() }));

// ---------------------------------------------------------------------------------------------
// Servers, each in its own process.

async function runServer(kind: Kind): Promise<void> {
  let count = () => 0;
  let publish: (n: number) => Promise<void> | void;
  /** Publishes a burst of events at once; the default publishes each (concurrently). */
  let publishBurst: ((events: number) => Promise<void> | void) | undefined;
  let port: number;
  let key = '';

  if (kind === 'herald' || kind === 'herald-socket') {
    const dir = tempDirectory();
    const adminKey = 'bench-admin-key-0123456789abcdef0123';
    const transport = websocket();
    const herald = createHerald({
      database: dir.file('herald.db'),
      logLevel: 'silent',
      env: {},
      adminKey,
      maxConnectionsPerKey: 1_000_000,
      eventTypes: [benchEvent],
      transports: [transport],
    });
    port = (await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false })).port;
    const response = await fetch(`http://127.0.0.1:${port}/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'consumer', consumer: 'bench' }),
    });
    key = ((await response.json()) as { key: string }).key;
    count = () => transport.stats().subscriptions;
    publish = async (n) => void (await herald.publish({ type: 'bench.event', data: { n, t: now(), pad } }));
  } else if (kind === 'ws') {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
    count = () => server.clients.size;
    let seq = 0;
    /** The frame Herald sends for the same event, serialised once. */
    const frame = (n: number) => {
      seq += 1;
      return Buffer.from(`{"type":"event","id":"s1","event":${JSON.stringify(benchEnvelope(seq, n))}}`);
    };
    publish = (n) => {
      const data = frame(n);
      for (const client of server.clients) client.send(data, { binary: false });
    };
    publishBurst = (events) => {
      const frames = Array.from({ length: events }, (_, n) => frame(n));
      for (const client of server.clients) {
        const socket = (client as unknown as { _socket: Duplex })._socket;
        socket.cork();
        for (const data of frames) client.send(data, { binary: false });
        socket.uncork();
      }
    };
  } else {
    const http = createServer();
    const server = new SocketIoServer(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    port = (http.address() as AddressInfo).port;
    count = () => server.engine.clientsCount;
    let seq = 0;
    publish = (n) => {
      seq += 1;
      server.emit('event', benchEnvelope(seq, n));
    };
  }

  const profiler = new Session();
  serveRequests({
    info: () => ({ port, key }),
    async profileStart() {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    },
    async profileStop({ file }: { file: string }) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      profiler.disconnect();
    },
    cpu: () => process.cpuUsage(),
    count: () => count(),
    memory,
    /** Publishes `count` events as fast as it can (at `rate` per second when given); returns when it started. */
    async publish({ events, rate }: { events: number; rate?: number }) {
      const startedAt = now();
      if (!rate && publishBurst) {
        await publishBurst(events);
        return { startedAt };
      }
      if (!rate) {
        const all: (Promise<void> | void)[] = [];
        for (let n = 0; n < events; n++) all.push(publish(n));
        await Promise.all(all);
        return { startedAt };
      }
      const interval = 1000 / rate;
      for (let n = 0; n < events; n++) {
        const due = startedAt + n * interval;
        const wait = due - now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await publish(n);
      }
      return { startedAt };
    },
  });
  process.send?.('up');
}

// ---------------------------------------------------------------------------------------------
// Clients, all in one process.

function runClients(): void {
  serveClientGroups<Kind>(200, async ({ kind, port, key }, received, onClose) => {
    if (kind === 'herald') {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, 'herald.v1', { perMessageDeflate: false });
      onClose(() => ws.terminate());
      await new Promise<void>((resolve, reject) => {
        ws.once('error', reject);
        ws.once('open', () => ws.send(JSON.stringify({ type: 'auth', token: key })));
        ws.on('message', (data) => {
          const message = JSON.parse(data.toString());
          if (message.type === 'event') received(message.event.data.t);
          else if (message.type === 'ready') ws.send(JSON.stringify({ type: 'subscribe', id: 's1', types: ['bench.*'] }));
          else if (message.type === 'subscribed') resolve();
        });
      });
    } else if (kind === 'herald-socket') {
      const socket = new HeraldSocket<{ 'bench.event': { n: number; t: number; pad: string } }>({ url: `ws://127.0.0.1:${port}/v1/ws`, token: key, WebSocket });
      onClose(() => socket.close());
      await new Promise<void>((resolve) => {
        socket.on('subscribed', () => resolve());
        socket.subscribe(['bench.*'], (event) => received(event.data.t));
      });
    } else if (kind === 'ws') {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
      onClose(() => ws.terminate());
      ws.on('message', (data) => received(JSON.parse(data.toString()).event.data.t));
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
    } else {
      const socket: SocketIoSocket = socketIoClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
      onClose(() => socket.disconnect());
      socket.on('event', (event: HeraldEvent<{ t: number }>) => received(event.data.t));
      await new Promise((resolve, reject) => {
        socket.once('connect', () => resolve(undefined));
        socket.once('connect_error', reject);
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The orchestra.

async function main(): Promise<void> {
  const began = now();
  const measured = measuredWith('pnpm bench websocket');
  const children: Child[] = [];
  const spawn = async (role: string[], gc = false) => {
    const child = await spawnChild(import.meta.url, role, gc);
    children.push(child);
    return child;
  };
  try {
    const clients = await spawn(['clients']);
    const servers = {} as Record<Kind, Child>;
    for (const kind of kinds) {
      servers[kind] = await spawn(['server', kind]);
      const { port, key } = await servers[kind].call('info');
      const { ms } = await clients.call('connect', { name: kind, kind, port, key, count: fanOutClients });
      progress(`${kind}: ${formatCount(fanOutClients)} clients connected in ${formatCount(ms)} ms`);
    }

    // Fan-out: a warm-up, then rounds that run every server once each, in rotating order.
    /** Deliveries per second, and the CPU time the server and the clients spent per delivery (µs). */
    const fanOutOnce = async (kind: Kind, events: number) => {
      await clients.call('reset', { name: kind });
      const [serverBefore, clientsBefore] = await Promise.all([servers[kind].call('cpu'), clients.call('cpu')]);
      const received = clients.call('fanOut', { name: kind, perClient: events });
      const { startedAt } = await servers[kind].call('publish', { events });
      const { lastAt } = await received;
      const [serverAfter, clientsAfter] = await Promise.all([servers[kind].call('cpu'), clients.call('cpu')]);
      const deliveries = fanOutClients * events;
      const perDelivery = (before: NodeJS.CpuUsage, after: NodeJS.CpuUsage) => (after.user + after.system - before.user - before.system) / deliveries;
      return {
        rate: deliveries / ((lastAt - startedAt) / 1000),
        serverCpu: perDelivery(serverBefore, serverAfter),
        /** The part of {@link serverCpu} spent in the kernel. */
        serverSystem: (serverAfter.system - serverBefore.system) / deliveries,
        clientsCpu: perDelivery(clientsBefore, clientsAfter),
      };
    };
    const sections: string[] = [];
    const has = (kind: Kind) => kinds.includes(kind);
    if (parts.has('fan-out')) {
      for (const kind of kinds) await fanOutOnce(kind, 100);
      if (cpuProfileDir) for (const kind of kinds) await servers[kind].call('profileStart');
      const runs = Object.fromEntries(kinds.map((kind) => [kind, [] as Awaited<ReturnType<typeof fanOutOnce>>[]])) as Record<
        Kind,
        Awaited<ReturnType<typeof fanOutOnce>>[]
      >;
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < kinds.length; i++) {
          const kind = kinds[(round + i) % kinds.length] as Kind;
          if (kind === 'socketio' && round >= socketIoRounds) continue;
          const run = await fanOutOnce(kind, fanOutEvents);
          runs[kind].push(run);
          progress(
            `fan-out round ${round + 1} ${kind}: ${formatCount(run.rate)} deliveries/s; CPU per delivery ${run.serverCpu.toFixed(2)} µs server (${run.serverSystem.toFixed(2)} µs system), ${run.clientsCpu.toFixed(2)} µs clients`,
          );
        }
      }
      if (cpuProfileDir) {
        for (const kind of kinds) await servers[kind].call('profileStop', { file: `${cpuProfileDir}/${kind}.cpuprofile` });
        progress(`CPU profiles of the measured rounds in ${cpuProfileDir}`);
      }
      const rates = Object.fromEntries(kinds.map((kind) => [kind, runs[kind].map((run) => run.rate)])) as Record<Kind, number[]>;
      const serverCpu = Object.fromEntries(kinds.map((kind) => [kind, median(runs[kind].map((run) => run.serverCpu))])) as Record<Kind, number>;
      const clientsCpu = Object.fromEntries(kinds.map((kind) => [kind, median(runs[kind].map((run) => run.clientsCpu))])) as Record<Kind, number>;
      const fanOut = Object.fromEntries(kinds.map((kind) => [kind, median(rates[kind])])) as Record<Kind, number>;
      const compared = (kind: Kind) => {
        const herald = comparedWith[kind];
        return herald !== undefined && has(herald) ? herald : undefined;
      };
      const ratio = (kind: Kind) => fanOut[compared(kind) as Kind] / fanOut[kind];
      const goalOf: Partial<Record<Kind, Goal>> = { ws: goals.vsWs, socketio: goals.vsSocketIo };
      let cpuLine = '';
      if (has('herald') && has('ws')) {
        /** Herald's server CPU per delivery ÷ raw `ws`'s, round by round (both ran in each round). */
        const cpuRatios = runs.herald.map((run, round) => run.serverCpu / (runs.ws[round] as { serverCpu: number }).serverCpu);
        const cpuRatio = serverCpu.herald / serverCpu.ws;
        cpuLine = `Server CPU per delivery, Herald (\`ws\` clients) ÷ raw \`ws\`: **${formatRatio(cpuRatio)}** (goal ${formatGoal(goals.cpuVsWs)}: ${verdict(cpuRatio, goals.cpuVsWs)}); round by round ${cpuRatios.map(formatRatio).join(', ')}.\n\n`;
      }
      sections.push(`### Fan-out: ${formatCount(fanOutClients)} clients, ${fanOutEvents} events of ~250 bytes published at once, median of ${rounds} rounds (Socket.IO: ${socketIoRounds})

${markdownTable(
  ['server', 'clients', 'deliveries/s', 'Herald ÷ it', 'goal', '', 'server CPU per delivery', 'clients CPU per delivery'],
  kinds.map((kind) => {
    const goal = compared(kind) ? goalOf[kind] : undefined;
    return [
      label[kind][0],
      label[kind][1],
      formatCount(fanOut[kind]),
      goal ? formatRatio(ratio(kind)) : '',
      goal ? formatGoal(goal) : '',
      goal ? verdict(ratio(kind), goal) : '',
      `${serverCpu[kind].toFixed(2)} µs`,
      `${clientsCpu[kind].toFixed(2)} µs`,
    ];
  }),
)}

${cpuLine}The raw \`ws\` server is compared with Herald serving the same minimal clients, so only the servers differ;
Socket.IO, which needs its own client, with Herald serving \`HeraldSocket\`s. Herald hands each connection the
events of a bus batch in one write: the frames back to back, encoded once into one Buffer that every connection
getting the same events writes as it is. The raw baseline corks each client's socket and calls \`send\` per frame.
With the clients' process the bottleneck, deliveries/s is bounded by what the clients can read; the CPU columns
show each side's cost per delivery.
`);
    }

    // Latency at a steady rate. Not Socket.IO's: its fan-out (above) is slower than the rate asked here, so its
    // latency would only measure its growing queue.
    if (parts.has('latency')) {
      const latencyKinds = (['herald', 'herald-socket', 'ws'] as Kind[]).filter(has);
      const latency = {} as Record<Kind, LatencySummary>;
      const latencyEvents = latencyRate * latencySeconds;
      for (const kind of latencyKinds) {
        latency[kind] = await measureLatency(clients, servers[kind], kind, latencyEvents, latencyRate);
        progress(`latency ${kind}: p50 ${latency[kind].p50.toFixed(2)} ms, p99 ${latency[kind].p99.toFixed(2)} ms`);
      }
      sections.push(`### Publish-to-receipt latency: ${formatCount(fanOutClients)} clients, ${latencyRate} events/s for ${latencySeconds} s

${markdownTable(
  ['server', 'clients', 'p50', 'p99', 'max', 'deliveries'],
  latencyKinds.map((kind) => [
    kind === 'ws' ? 'raw `ws`: each event sent to every client as it comes' : label[kind][0],
    label[kind][1],
    `${latency[kind].p50.toFixed(2)} ms`,
    `${latency[kind].p99.toFixed(2)} ms`,
    `${latency[kind].max.toFixed(1)} ms`,
    formatCount(latency[kind].count),
  ]),
)}

From the \`publish()\` call (for Herald: validation and the SQLite commit included) to the client's handler, on one clock
(\`CLOCK_MONOTONIC\`, shared by the processes). Socket.IO is left out: its fan-out rate above is below the
${formatCount(latencyRate * fanOutClients)} deliveries/s asked here, so its latency would only measure a growing queue.
`);
    }
    for (const kind of kinds) {
      await servers[kind].kill();
      await clients.call('close', { name: kind });
    }

    // Memory per idle connection: a fresh server, measured before and after the connections open.
    if (parts.has('memory')) {
      const perConnection = {} as Record<'herald' | 'ws', { rss: number; heap: number }>;
      for (const kind of ['herald', 'ws'] as const) {
        const server = await spawn(['server', kind], true);
        const { port, key } = await server.call('info');
        const before = await server.call('memory');
        const { ms } = await clients.call('connect', { name: `idle-${kind}`, kind, port, key, count: idleConnections });
        const connected = await server.call('count');
        if (connected !== idleConnections) throw new Error(`${kind}: ${connected} of ${idleConnections} connections are up`);
        const after = await server.call('memory');
        perConnection[kind] = { rss: (after.rss - before.rss) / idleConnections, heap: (after.heap - before.heap) / idleConnections };
        progress(
          `memory ${kind}: ${formatCount(idleConnections)} connections in ${formatCount(ms)} ms; ${formatCount(perConnection[kind].rss)} B RSS, ${formatCount(perConnection[kind].heap)} B heap each`,
        );
        await server.kill();
        await clients.call('close', { name: `idle-${kind}` });
      }
      const rssRatio = perConnection.herald.rss / perConnection.ws.rss;
      const heapRatio = perConnection.herald.heap / perConnection.ws.heap;
      const kib = (bytes: number) => `${(bytes / 1024).toFixed(2)} KiB`;
      sections.push(`### Memory per idle connection at ${formatCount(idleConnections)} connections

${markdownTable(
  ['server', 'RSS', 'JS heap + external', 'Herald ÷ raw', 'goal', ''],
  [
    ['@herald/websocket (authenticated, one subscription)', kib(perConnection.herald.rss), kib(perConnection.herald.heap), `${formatRatio(rssRatio)} RSS, ${formatRatio(heapRatio)} heap`, formatGoal(goals.memory), verdict(Math.max(rssRatio, heapRatio), goals.memory)],
    ['raw `ws`', kib(perConnection.ws.rss), kib(perConnection.ws.heap), '', '', ''],
  ],
)}

Measured in the server's process after a full garbage collection, before and after the connections open.
`);
    }

    console.log(`## WebSocket

${measured}

Alone: \`tsx --conditions=herald-source bench/src/websocket-bench.ts\`; this run took ${formatCount((now() - began) / 1000)} s.
Every server runs in its own process and all the clients in one more, so the server measured has a core to itself.
The raw \`ws\` server sends the very frames Herald sends (\`{"type":"event","id":…,"event":{…}}\`), each serialised once.
Herald also validates each event, appends it to SQLite (WAL, a file in the temp folder) and numbers it before it is sent.

${sections.join('\n')}`);
  } finally {
    for (const child of children) await child.kill();
  }
}

const role = process.argv[2];
if (role === 'server') await runServer(process.argv[3] as Kind);
else if (role === 'clients') runClients();
else await main();
