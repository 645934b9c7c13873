/**
 * @herald/poll: events/s with 100 long-polling consumers, against 100 SSE streams of the same server (for
 * the record: no goal). The server runs in a child process with both transports, the clients in another
 * one. Prints a markdown section. Run alone: `tsx --conditions=herald-source bench/src/poll-bench.ts`.
 */
import { Agent, type IncomingMessage, request } from 'node:http';
import { defineEventType } from '@herald/core';
import { poll } from '@herald/poll';
import { createHerald } from '@herald/server';
import { sse } from '@herald/sse';
import { z } from 'zod';
import { type Child, serveRequests, spawnChild } from './lib/child-process.js';
import { type LatencySummary, measureLatency, now, pad, serveClientGroups } from './lib/client-groups.js';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { envNumber, progress } from './lib/rounds.js';
import { formatCount, formatRatio, median, roundRatios } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const consumers = envNumber('BENCH_POLL_CLIENTS', 100);
const events = envNumber('BENCH_POLL_EVENTS', 1000);
const rounds = envNumber('BENCH_ROUNDS', 3);
const latencyRate = 100;
const latencySeconds = envNumber('BENCH_POLL_LATENCY_SECONDS', 3);

type Kind = 'poll' | 'sse';
const kinds: Kind[] = ['poll', 'sse'];
const label: Record<Kind, string> = {
  poll: '@herald/poll: `GET /v1/poll?types=bench.*&after=<next>&wait=25&limit=1000` in a loop',
  sse: '@herald/sse: `GET /v1/stream?types=bench.*`',
};

const benchEvent = defineEventType('bench.event', z.object({ n: z.number(), t: z.number(), pad: z.string() }));

async function runServer(): Promise<void> {
  const dir = tempDirectory();
  const adminKey = 'bench-admin-key-0123456789abcdef0123';
  const polling = poll();
  const streaming = sse();
  const herald = createHerald({
    database: dir.file('herald.db'),
    logLevel: 'silent',
    env: {},
    adminKey,
    maxConnectionsPerKey: 1_000_000,
    eventTypes: [benchEvent],
    transports: [polling, streaming],
    // A hundred consumers poll with one key: far more requests than its REST quota.
    rateLimit: false,
  });
  const { port, server } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  let polls = 0;
  server.on('request', (request: IncomingMessage) => {
    if (request.url?.startsWith('/v1/poll?')) polls += 1;
  });
  const response = await fetch(`http://127.0.0.1:${port}/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'consumer', consumer: 'bench' }),
  });
  const { key } = (await response.json()) as { key: string };
  const publish = async (n: number) => void (await herald.publish({ type: 'bench.event', data: { n, t: now(), pad } }));

  serveRequests({
    info: () => ({ port, key }),
    polls: () => polls,
    cpu: () => process.cpuUsage(),
    count: ({ kind }: { kind: Kind }) => (kind === 'poll' ? polling.waiting : streaming.connections),
    async publish({ events: count, rate }: { events: number; rate?: number }) {
      const startedAt = now();
      const all: Promise<void>[] = [];
      const interval = rate ? 1000 / rate : 0;
      for (let n = 0; n < count; n++) {
        const wait = startedAt + n * interval - now();
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
// Clients, all in one process, over plain `node:http`.

/** Calls `onEvent` with the publish time (`data.t`) of each event in a chunk of JSON or of an event stream. */
function publishTimes(text: string, onEvent: (publishedAt: number) => void): void {
  for (let at = text.indexOf('"t":'); at !== -1; at = text.indexOf('"t":', at + 4)) onEvent(Number.parseFloat(text.slice(at + 4, at + 32)));
}

function runClients(): void {
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  serveClientGroups<Kind>(100, ({ kind, port, key }, received, onClose) => {
    const headers = { authorization: `Bearer ${key}` };
    if (kind === 'sse') {
      return new Promise<void>((resolve, reject) => {
        // Frames may split across chunks; a frame's `"t":` and its number are read once the frame is complete.
        let buffered = '';
        const get = request({ host: '127.0.0.1', port, path: '/v1/stream?types=bench.*', headers, agent: new Agent({ keepAlive: false }) }, (response) => {
          if (response.statusCode !== 200) return reject(new Error(`sse answered ${response.statusCode}`));
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            buffered += chunk;
            const end = buffered.lastIndexOf('\n\n');
            if (end === -1) return;
            publishTimes(buffered.slice(0, end), received);
            buffered = buffered.slice(end + 2);
          });
          resolve();
        });
        get.on('error', reject);
        get.end();
        onClose(() => get.destroy());
      });
    }
    let closed = false;
    let current: ReturnType<typeof request> | undefined;
    onClose(() => {
      closed = true;
      current?.destroy();
    });
    const pollOnce = (after: number | undefined) =>
      new Promise<{ next: number }>((resolve, reject) => {
        const path = `/v1/poll?types=bench.*&wait=25&limit=1000${after === undefined ? '' : `&after=${after}`}`;
        current = request({ host: '127.0.0.1', port, path, headers, agent }, (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => {
            if (response.statusCode !== 200) return reject(new Error(`poll answered ${response.statusCode}: ${text}`));
            publishTimes(text, received);
            resolve({ next: Number(/"next":(\d+)/.exec(text.slice(text.lastIndexOf('"next":')))?.[1]) });
          });
        });
        current.on('error', reject);
        current.end();
      });
    (async () => {
      let after: number | undefined;
      let failures = 0;
      while (!closed) {
        try {
          after = (await pollOnce(after)).next;
          failures = 0;
        } catch (error) {
          // As every client does: a keep-alive connection the server closed as it was reused (ECONNRESET) is tried again.
          if (!closed && ++failures > 3) throw error;
        }
      }
    })().catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
    return Promise.resolve();
  });
}

// ---------------------------------------------------------------------------------------------

async function waitForCount(server: Child, kind: Kind, expected: number): Promise<void> {
  const deadline = now() + 60_000;
  for (;;) {
    const count = await server.call<number>('count', { kind });
    if (count === expected) return;
    if (now() > deadline) throw new Error(`${kind}: ${count} of ${expected} consumers are waiting`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main(): Promise<void> {
  const started0 = now();
  const measured = measuredWith('pnpm bench poll');
  const server = await spawnChild(import.meta.url, ['server']);
  const clients = await spawnChild(import.meta.url, ['clients']);
  const { port, key } = await server.call('info');

  const rates: Record<Kind, number[]> = { poll: [], sse: [] };
  const serverCpuRuns: Record<Kind, number[]> = { poll: [], sse: [] };
  const answersPerRound: number[] = [];
  // Each round runs each kind once, in rotating order, its consumers alone on the server; round 0, a fifth of the size, warms up.
  for (let round = 0; round < rounds + 1; round++) {
    const perRound = round === 0 ? Math.ceil(events / 5) : events;
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(round + i) % kinds.length] as Kind;
      await clients.call('connect', { name: kind, kind, port, key, count: consumers });
      await waitForCount(server, kind, consumers);
      const pollsBefore = await server.call<number>('polls');
      const cpuBefore: NodeJS.CpuUsage = await server.call('cpu');
      const received = clients.call('fanOut', { name: kind, perClient: perRound });
      const { startedAt } = await server.call('publish', { events: perRound });
      const { lastAt } = await received;
      const cpuAfter: NodeJS.CpuUsage = await server.call('cpu');
      const answered = (await server.call<number>('polls')) - pollsBefore;
      await clients.call('close', { name: kind });
      await waitForCount(server, kind, 0);
      const rate = perRound / ((lastAt - startedAt) / 1000);
      const cpu = (cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) / (perRound * consumers);
      if (round > 0) {
        rates[kind].push(rate);
        serverCpuRuns[kind].push(cpu);
        if (kind === 'poll') answersPerRound.push(answered);
      }
      progress(`${round === 0 ? 'warm-up' : `round ${round}`} ${kind}: ${formatCount(rate)} events/s to all ${consumers}; server CPU ${cpu.toFixed(2)} µs per delivery${kind === 'poll' ? `; ${answered} polls` : ''}`);
    }
  }

  const latency = {} as Record<Kind, LatencySummary>;
  for (const kind of kinds) {
    await clients.call('connect', { name: kind, kind, port, key, count: consumers });
    await waitForCount(server, kind, consumers);
    latency[kind] = await measureLatency(clients, server, kind, latencyRate * latencySeconds, latencyRate);
    await clients.call('close', { name: kind });
    await waitForCount(server, kind, 0);
    progress(`latency ${kind}: p50 ${latency[kind].p50.toFixed(2)} ms, p99 ${latency[kind].p99.toFixed(2)} ms`);
  }
  await clients.kill();
  await server.kill();

  const rate = Object.fromEntries(kinds.map((kind) => [kind, median(rates[kind])])) as Record<Kind, number>;
  const ratio = rate.poll / rate.sse;
  const perRoundRatios = roundRatios({ rounds: rates.poll }, { rounds: rates.sse }).map(formatRatio).join(', ');
  const eventsPerAnswer = (events * consumers) / median(answersPerRound);
  console.log(`## Long-polling

${measured} It took ${formatCount((now() - started0) / 1000)} s; it is also part of \`pnpm bench\`. A short run on a shared machine (2 cores, other work on it): read the ratio, not the absolute figures.

One Herald (SQLite, WAL) with the \`poll\` and \`sse\` transports runs in a child process; ${consumers} consumers in another
one, plain \`node:http\`, read \`?types=bench.*\` with one consumer key, either by long-polling in a loop (each poll
after the previous answer's \`next\`, over keep-alive connections) or over SSE streams. Each round publishes ${formatCount(events)} events
of ~250 bytes as fast as the server takes them, to one kind of consumer at a time, and ends when every consumer has every event.
No goal: for the record, the price of polling against streaming on the same server.

### Throughput: ${consumers} consumers, ${formatCount(events)} events, median of ${rounds} rounds

${markdownTable(
  ['consumers', 'events/s (each to all)', 'deliveries/s', 'poll ÷ SSE', 'per round', 'server CPU per delivery'],
  [
    [label.poll, formatCount(rate.poll), formatCount(rate.poll * consumers), formatRatio(ratio), perRoundRatios, `${median(serverCpuRuns.poll).toFixed(2)} µs`],
    [label.sse, formatCount(rate.sse), formatCount(rate.sse * consumers), '', '', `${median(serverCpuRuns.sse).toFixed(2)} µs`],
  ],
)}

Each long-polling consumer made ${(median(answersPerRound) / consumers).toFixed(1)} polls a round (${eventsPerAnswer.toFixed(1)} events per answer on average): a
waiting poll answers at the first event, and the next one finds what was published meanwhile in the log.

### Publish-to-receipt latency: ${consumers} consumers, ${latencyRate} events/s for ${latencySeconds} s

${markdownTable(
  ['consumers', 'p50', 'p99', 'max', 'deliveries'],
  kinds.map((kind) => [label[kind], `${latency[kind].p50.toFixed(2)} ms`, `${latency[kind].p99.toFixed(2)} ms`, `${latency[kind].max.toFixed(1)} ms`, formatCount(latency[kind].count)]),
)}

From the \`publish()\` call (validation and the SQLite append included) to the consumer's parser. A poll's time
includes, for an event that arrives between two polls, the round trip of the next poll.
`);
}

const role = process.argv[2];
if (role === 'server') await runServer();
else if (role === 'clients') runClients();
else await main();
