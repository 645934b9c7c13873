/**
 * @herald/server over HTTP: `POST /v1/events` under autocannon against a bare express 5 route that
 * parses the JSON and answers 202. Each server runs in its own child process, so it has a core to
 * itself while autocannon loads it from this one. Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/server-bench.ts`.
 */
import type { AddressInfo } from 'node:net';
import { defineEventType } from '@herald/core';
import { createHerald } from '@herald/server';
import Database from 'better-sqlite3';
import express from 'express';
import { z } from 'zod';
import { serveRequests } from './lib/child-process.js';
import { cpuPerRequest, latencyOf, loadServer, serverConnections, serverSchedule, serverWarmupSeconds, startServer } from './lib/loaded-server.js';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { alternate, progress } from './lib/rounds.js';
import { formatCount, formatGoal, formatRatio, type Goal, roundRatios, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const goal: Goal = { atLeast: 0.6 };
const adminKey = 'bench-admin-key-0123456789abcdef0123';

const eventType = defineEventType('bench.event', z.object({ payload: z.string() }));
/** A publish request whose `data` is 1,024 bytes of JSON, like the in-process benchmark's events. */
const body = JSON.stringify({ type: eventType.name, data: { payload: 'x'.repeat(1024 - '{"payload":""}'.length) } });

type Kind = 'herald' | 'express';

/** In a child process: serve `kind` on 127.0.0.1, tell the parent the port, answer its questions. */
async function serve(kind: Kind): Promise<void> {
  let port: number;
  let stop: () => Promise<number>;
  if (kind === 'express') {
    const app = express();
    let seq = 0;
    app.use(express.json({ limit: 256 * 1024 }));
    app.post('/v1/events', (req, res) => {
      res.status(202).json({ id: `evt_${typeof req.body === 'object' ? ++seq : 0}`, seq });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
    stop = async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      return seq;
    };
  } else {
    const dir = tempDirectory();
    const herald = createHerald({ database: dir.file('herald.db'), logLevel: 'silent', adminKey, env: {}, eventTypes: [eventType] });
    ({ port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false }));
    stop = async () => {
      await herald.close();
      // Counted afresh from the file, after the store is closed: what a restart would find.
      const database = new Database(dir.file('herald.db'), { readonly: true });
      const { stored } = database.prepare('select count(*) as stored from herald_events').get() as { stored: number };
      database.close();
      dir.remove();
      return stored;
    };
  }
  serveRequests({
    port: () => port,
    cpu: () => {
      const { user, system } = process.cpuUsage();
      return user + system;
    },
    stop: () => stop(),
  });
  process.send?.('up');
}

/** A publish of `body` as the admin. */
const publishRequest = { path: '/v1/events', method: 'POST' as const, headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body };

async function main(): Promise<void> {
  const note = measuredWith('pnpm bench server');
  const seconds = (serverSchedule.slices * serverSchedule.sliceMilliseconds) / 1000;
  progress(`server: ${serverSchedule.rounds} rounds × ${serverSchedule.slices} turns × ${serverSchedule.sliceMilliseconds / 1000} s per server, ${serverConnections} connections`);
  const herald = await startServer(import.meta.url, 'herald');
  const bare = await startServer(import.meta.url, 'express');
  try {
    await loadServer(bare, publishRequest, serverConnections, serverWarmupSeconds, false);
    await loadServer(herald, publishRequest, serverConnections, serverWarmupSeconds, false);
    const rates = await alternate(serverSchedule, {
      express: (milliseconds) => loadServer(bare, publishRequest, serverConnections, milliseconds / 1000),
      herald: (milliseconds) => loadServer(herald, publishRequest, serverConnections, milliseconds / 1000),
    });
    const stored = await herald.child.call<number>('stop');
    await bare.child.call<number>('stop');
    // autocannon stops with requests in flight, so the log may hold a few more than were acknowledged; never fewer.
    if (stored < herald.answered) {
      throw new Error(`Herald acknowledged ${herald.answered} publishes but its log holds only ${stored} events`);
    }
    const ratio = rates.herald.total / rates.express.total;
    console.log(`## Server: POST /v1/events

${note}

\`POST /v1/events\` with a 1 KiB event under autocannon (${serverConnections} connections, no pipelining), against a bare
express 5 route that parses the JSON body and answers 202. Herald runs with a SQLite file (WAL, \`synchronous=FULL\`)
and \`logLevel: 'silent'\`; each server is a child process of its own on 127.0.0.1, autocannon runs in the parent.
A ${serverWarmupSeconds} s warm-up each, then ${serverSchedule.rounds} rounds; in each, every server gets ${serverSchedule.slices} turns of ${serverSchedule.sliceMilliseconds / 1000} s
(${seconds} s), the turns alternating, so both see the same drift in the shared machine's load. Latency is the
median over the turns; "server CPU µs/request" is the server process's CPU time (user + system) per request.
Each of Herald's ${formatCount(herald.answered)} acknowledged publishes was in its log when it closed (${formatCount(stored)} events:
autocannon stops with requests in flight).

${markdownTable(
  ['server', 'requests/s', 'per round', 'latency p50 / p99', 'server CPU µs/request'],
  [
    ['bare express 5 route', formatCount(rates.express.total), rates.express.rounds.map(formatCount).join(', '), latencyOf(bare), cpuPerRequest(bare)],
    ['Herald', formatCount(rates.herald.total), rates.herald.rounds.map(formatCount).join(', '), latencyOf(herald), cpuPerRequest(herald)],
  ],
)}

${markdownTable(
  ['ratio', 'value', 'per round', 'goal', ''],
  [
    [
      'Herald ÷ bare express route',
      formatRatio(ratio),
      roundRatios(rates.herald, rates.express).map(formatRatio).join(', '),
      formatGoal(goal),
      verdict(ratio, goal),
    ],
  ],
)}
`);
  } finally {
    await Promise.all([herald.child.kill(), bare.child.kill()]);
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] as Kind);
else await main();
