/**
 * What counting the REST rate limits in Redis costs a request: `GET /v1/event-types` with a consumer key
 * under autocannon, against Herald counting in its own memory (the default) and with no rate limit at
 * all. Each server runs in a child process of its own; Redis is the machine's. Prints a markdown section.
 * Run alone: `pnpm bench rate-limits`.
 */
import { randomBytes } from 'node:crypto';
import { defineEventType } from '@herald/core';
import { redisRateLimits } from '@herald/redis';
import { createHerald } from '@herald/server';
import { z } from 'zod';
import { serveRequests } from './lib/child-process.js';
import { cpuPerRequest, type LoadedServer, latencyOf, loadServer, serverConnections, serverSchedule, serverWarmupSeconds, startServer } from './lib/loaded-server.js';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { alternate, progress } from './lib/rounds.js';
import { formatCount, formatRatio, roundRatios } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const adminKey = 'bench-admin-key-0123456789abcdef0123';
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const path = '/v1/event-types';
/** A limit no run reaches: every request is counted, none refused. */
const limit = 1_000_000_000;

type Kind = 'off' | 'memory' | 'redis';
const kinds: readonly Kind[] = ['off', 'memory', 'redis'];

/** In a child process: a Herald whose rate limits are `kind`, on 127.0.0.1; tells the parent its port and a consumer key. */
async function serve(kind: Kind): Promise<void> {
  const dir = tempDirectory();
  const rateLimit = kind === 'off' ? false : { requests: limit, window: 3_600 };
  const herald = createHerald({
    database: dir.file('herald.db'),
    logLevel: 'silent',
    adminKey,
    env: {},
    eventTypes: [defineEventType('bench.event', z.object({ n: z.number() }))],
    rateLimit,
    ...(kind === 'redis' ? { rateLimitStore: redisRateLimits({ url: redisUrl, prefix: `bench-${randomBytes(6).toString('hex')}:` }) } : {}),
  });
  const { url, port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const created = await fetch(`${url}/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'consumer', consumer: 'bench' }),
  });
  const { key } = (await created.json()) as { key: string };
  serveRequests({
    port: () => port,
    key: () => key,
    cpu: () => {
      const { user, system } = process.cpuUsage();
      return user + system;
    },
    stop: async () => {
      await herald.close();
      dir.remove();
    },
  });
  process.send?.('up');
}

type Target = LoadedServer<Kind> & { key: string };

async function start(kind: Kind): Promise<Target> {
  const server = await startServer(import.meta.url, kind);
  return { ...server, key: await server.child.call<string>('key') };
}

/** Requests answered 200 in `seconds` of `GET path` with the consumer key. */
const load = (target: Target, seconds: number, measured = true) =>
  loadServer(target, { path, headers: { authorization: `Bearer ${target.key}` } }, serverConnections, seconds, measured);

/** Fails unless `target` counted every request it answered (or, with the limits off, none). */
async function checkCounted(target: Target): Promise<void> {
  const answer = await fetch(`http://127.0.0.1:${target.port}${path}`, { headers: { authorization: `Bearer ${target.key}` } });
  const remaining = /;r=(\d+);/.exec(answer.headers.get('ratelimit') ?? '')?.[1];
  if (target.kind === 'off') {
    if (remaining !== undefined) throw new Error('off: a request was counted');
    return;
  }
  const counted = limit - Number(remaining);
  if (remaining === undefined || counted < target.answered) throw new Error(`${target.kind}: ${target.answered} requests answered, ${remaining === undefined ? 'none' : counted} counted`);
}

async function main(): Promise<void> {
  const note = measuredWith('pnpm bench rate-limits');
  progress(`rate limits: ${serverSchedule.rounds} rounds × ${serverSchedule.slices} turns × ${serverSchedule.sliceMilliseconds / 1000} s per server, ${serverConnections} connections`);
  const targets = await Promise.all(kinds.map(start));
  const [off, memory, redis] = targets as [Target, Target, Target];
  try {
    for (const target of targets) await load(target, serverWarmupSeconds, false);
    const rates = await alternate(serverSchedule, {
      off: (milliseconds) => load(off, milliseconds / 1000),
      memory: (milliseconds) => load(memory, milliseconds / 1000),
      redis: (milliseconds) => load(redis, milliseconds / 1000),
    });
    for (const target of targets) await checkCounted(target);
    const row = (what: string, target: Target) => [
      what,
      formatCount(rates[target.kind].total),
      rates[target.kind].rounds.map(formatCount).join(', '),
      latencyOf(target),
      cpuPerRequest(target),
    ];
    const ratio = (of: Target, to: Target) => [
      `${of.kind} ÷ ${to.kind}`,
      formatRatio(rates[of.kind].total / rates[to.kind].total),
      roundRatios(rates[of.kind], rates[to.kind]).map(formatRatio).join(', '),
    ];
    console.log(`## Rate limits: counted in memory and in Redis

${note}

\`GET ${path}\` with a consumer key under autocannon (${serverConnections} connections, no pipelining), against three
Herald servers, each a child process of its own on a SQLite file: rate limits off, counted in the node's memory
(the default), and counted in the machine's Redis (\`redisRateLimits()\`: one script a request). The limit is
one no run reaches, so every request is counted and none refused. A ${serverWarmupSeconds} s warm-up each, then
${serverSchedule.rounds} rounds; in each, every server gets ${serverSchedule.slices} turns of ${serverSchedule.sliceMilliseconds / 1000} s, the turns alternating. Latency is the median
over the turns; "server CPU µs/request" is the server process's CPU time per request.

${markdownTable(
  ['rate limits', 'requests/s', 'per round', 'latency p50 / p99', 'server CPU µs/request'],
  [row('off', off), row('in memory (default)', memory), row('in Redis', redis)],
)}

${markdownTable(['ratio', 'value', 'per round'], [ratio(redis, memory), ratio(memory, off)])}
`);
    for (const target of targets) await target.child.call('stop');
  } finally {
    await Promise.all(targets.map((target) => target.child.kill()));
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] as Kind);
else await main();
