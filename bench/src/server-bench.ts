/**
 * @herald/server over HTTP: `POST /v1/events` under autocannon against a bare express 5 route that
 * parses the JSON and answers 202. Each server runs in its own child process, so it has a core to
 * itself while autocannon loads it from this one. Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/server-bench.ts`.
 */
import type { AddressInfo } from 'node:net';
import { defineEventType } from '@herald/core';
import { createHerald } from '@herald/server';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import express from 'express';
import { z } from 'zod';
import { type Child, serveRequests, spawnChild } from './lib/child-process.js';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { type AlternateOptions, alternate, envNumber, progress } from './lib/rounds.js';
import { formatCount, formatGoal, formatRatio, type Goal, median, roundRatios, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const schedule: AlternateOptions = {
  rounds: envNumber('BENCH_ROUNDS', 3),
  slices: envNumber('BENCH_SERVER_SLICES', 2),
  sliceMilliseconds: envNumber('BENCH_SERVER_SLICE_SECONDS', 5) * 1000,
};
const warmupSeconds = 3;
const connections = 64;
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

interface Target {
  kind: Kind;
  port: number;
  child: Child;
  /** Requests that were answered 2xx, so the Herald child's log can be checked against them. */
  acknowledged: number;
  /** CPU time the server spent under measured load, in µs, and the requests it answered then. */
  cpuMicroseconds: number;
  measuredRequests: number;
  latencies: { p50: number; p99: number }[];
}

async function start(kind: Kind): Promise<Target> {
  const child = await spawnChild(import.meta.url, ['serve', kind]);
  return { kind, port: await child.call<number>('port'), child, acknowledged: 0, cpuMicroseconds: 0, measuredRequests: 0, latencies: [] };
}

/** Requests answered 2xx in `seconds`; any other answer or error fails the benchmark. */
async function load(target: Target, seconds: number, measured = true): Promise<number> {
  const cpuBefore = await target.child.call<number>('cpu');
  const result = await autocannon({
    url: `http://127.0.0.1:${target.port}/v1/events`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
    body,
    connections,
    duration: seconds,
  });
  const cpuAfter = await target.child.call<number>('cpu');
  target.acknowledged += result['2xx'];
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${target.kind}: ${result.non2xx} answers were not 2xx and ${result.errors} requests failed`);
  }
  if (measured) {
    target.cpuMicroseconds += cpuAfter - cpuBefore;
    target.measuredRequests += result['2xx'];
    target.latencies.push({ p50: result.latency.p50, p99: result.latency.p99 });
  }
  return result['2xx'];
}

async function main(): Promise<void> {
  const note = measuredWith('pnpm bench server');
  const seconds = (schedule.slices * schedule.sliceMilliseconds) / 1000;
  progress(`server: ${schedule.rounds} rounds × ${schedule.slices} turns × ${schedule.sliceMilliseconds / 1000} s per server, ${connections} connections`);
  const herald = await start('herald');
  const bare = await start('express');
  try {
    await load(bare, warmupSeconds, false);
    await load(herald, warmupSeconds, false);
    const rates = await alternate(schedule, {
      express: (milliseconds) => load(bare, milliseconds / 1000),
      herald: (milliseconds) => load(herald, milliseconds / 1000),
    });
    const stored = await herald.child.call<number>('stop');
    await bare.child.call<number>('stop');
    // autocannon stops with requests in flight, so the log may hold a few more than were acknowledged; never fewer.
    if (stored < herald.acknowledged) {
      throw new Error(`Herald acknowledged ${herald.acknowledged} publishes but its log holds only ${stored} events`);
    }
    const ratio = rates.herald.total / rates.express.total;
    const cpuPerRequest = (target: Target) => (target.cpuMicroseconds / target.measuredRequests).toFixed(0);
    const latency = (target: Target) =>
      `${median(target.latencies.map((l) => l.p50))} ms / ${median(target.latencies.map((l) => l.p99))} ms`;
    console.log(`## Server: POST /v1/events

${note}

\`POST /v1/events\` with a 1 KiB event under autocannon (${connections} connections, no pipelining), against a bare
express 5 route that parses the JSON body and answers 202. Herald runs with a SQLite file (WAL, \`synchronous=FULL\`)
and \`logLevel: 'silent'\`; each server is a child process of its own on 127.0.0.1, autocannon runs in the parent.
A ${warmupSeconds} s warm-up each, then ${schedule.rounds} rounds; in each, every server gets ${schedule.slices} turns of ${schedule.sliceMilliseconds / 1000} s
(${seconds} s), the turns alternating, so both see the same drift in the shared machine's load. Latency is the
median over the turns; "server CPU µs/request" is the server process's CPU time (user + system) per request.
Each of Herald's ${formatCount(herald.acknowledged)} acknowledged publishes was in its log when it closed (${formatCount(stored)} events:
autocannon stops with requests in flight).

${markdownTable(
  ['server', 'requests/s', 'per round', 'latency p50 / p99', 'server CPU µs/request'],
  [
    ['bare express 5 route', formatCount(rates.express.total), rates.express.rounds.map(formatCount).join(', '), latency(bare), cpuPerRequest(bare)],
    ['Herald', formatCount(rates.herald.total), rates.herald.rounds.map(formatCount).join(', '), latency(herald), cpuPerRequest(herald)],
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
