/**
 * Herald while another process holds its SQLite database's write lock: how fast `/healthz`, reads and
 * publishes answer with the lock held, against the same without it. The lock is held by a child
 * process (`begin exclusive` through better-sqlite3). Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/lock-bench.ts`.
 */
import { defineEventType } from '@herald/core';
import { createHerald } from '@herald/server';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { serveRequests, spawnChild } from './lib/child-process.js';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { envNumber, progress } from './lib/rounds.js';
import { formatGoal, type Goal, percentile, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const phaseMilliseconds = envNumber('BENCH_LOCK_SECONDS', 5) * 1000;
/** The longest `/healthz` may take while the lock is held, in ms. */
const healthGoal: Goal = { atMost: 100 };
const adminKey = 'bench-admin-key-0123456789';
const eventType = defineEventType('bench.event', z.object({ n: z.number() }));

/** In the child: holds `begin exclusive` on the database until told to commit. */
function runHolder(): void {
  let database: Database.Database | undefined;
  serveRequests({
    lock(path: string) {
      database = new Database(path, { timeout: 10_000 });
      database.exec('begin exclusive');
    },
    release() {
      database?.exec('commit');
      database?.close();
    },
  });
  process.send?.('up');
}

interface Samples {
  healthz: number[];
  reads: number[];
  publishes: number[];
  /** The statuses publish answered with, and how often. */
  statuses: Map<number, number>;
  /** The longest gap between the ticks of a 5 ms timer, less 5 ms. */
  stall: number;
}

async function timed(request: () => Promise<Response>): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const response = await request();
  await response.arrayBuffer();
  return { status: response.status, ms: performance.now() - started };
}

/** For `phaseMilliseconds`: `/healthz` every 50 ms, and in a loop of its own, a publish followed by a read. */
async function sample(url: string): Promise<Samples> {
  const samples: Samples = { healthz: [], reads: [], publishes: [], statuses: new Map(), stall: 0 };
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    samples.stall = Math.max(samples.stall, now - last - 5);
    last = now;
  }, 5);
  const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
  const end = performance.now() + phaseMilliseconds;
  let n = 0;
  await Promise.all([
    (async () => {
      while (performance.now() < end) {
        const { status, ms } = await timed(() => fetch(`${url}/healthz`));
        if (status !== 200) throw new Error(`/healthz answered ${status}`);
        samples.healthz.push(ms);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })(),
    (async () => {
      while (performance.now() < end) {
        const published = await timed(() => fetch(`${url}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ type: 'bench.event', data: { n: n++ } }) }));
        samples.publishes.push(published.ms);
        samples.statuses.set(published.status, (samples.statuses.get(published.status) ?? 0) + 1);
        const read = await timed(() => fetch(`${url}/v1/events?after=0&limit=100`, { headers }));
        if (read.status !== 200) throw new Error(`GET /v1/events answered ${read.status}`);
        samples.reads.push(read.ms);
      }
    })(),
  ]);
  clearInterval(ticker);
  return samples;
}

const summary = (values: number[]) => `${percentile(values, 50).toFixed(1)} / ${percentile(values, 99).toFixed(1)} / ${Math.max(...values).toFixed(1)} ms`;
const statuses = (samples: Samples) => [...samples.statuses].map(([status, count]) => `${count} × ${status}`).join(', ');

async function main(): Promise<void> {
  const dir = tempDirectory();
  const holder = await spawnChild(import.meta.url, ['holder']);
  const herald = createHerald({ database: dir.file('herald.db'), adminKey, logLevel: 'silent', env: {}, eventTypes: [eventType] });
  try {
    const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
    progress('without the lock');
    const free = await sample(url);
    progress('with the lock held by another process');
    await holder.call('lock', dir.file('herald.db'));
    const locked = await sample(url);
    await holder.call('release');
    if ([...free.statuses.keys()].some((status) => status !== 202)) throw new Error(`without the lock, publish answered ${statuses(free)}`);
    if ([...locked.statuses.keys()].some((status) => status !== 503)) throw new Error(`with the lock held, publish answered ${statuses(locked)}`);
    const slowest = Math.max(...locked.healthz);
    console.log(
      [
        '## Locks: the server while another process holds the write lock',
        '',
        measuredWith('pnpm bench lock'),
        '',
        `Herald (\`createHerald\` with the default \`sqliteStore\` on a temp file, \`lockTimeout\` 1 s) for ${phaseMilliseconds / 1000} s without a lock, then ${phaseMilliseconds / 1000} s while a child process holds \`begin exclusive\` on its database. Meanwhile \`/healthz\` every 50 ms, and in a loop a \`POST /v1/events\` followed by a \`GET /v1/events\`. Times are p50 / p99 / max. The stall is the longest the event loop was held up (the longest gap between the ticks of a 5 ms timer, less 5 ms).`,
        '',
        markdownTable(
          ['', 'without the lock', 'with the lock held by another process'],
          [
            ['`GET /healthz`', summary(free.healthz), `${summary(locked.healthz)} (goal: max ${formatGoal(healthGoal)} ms, ${verdict(slowest, healthGoal)})`],
            ['`GET /v1/events`', summary(free.reads), summary(locked.reads)],
            ['`POST /v1/events`', `${summary(free.publishes)} (${statuses(free)})`, `${summary(locked.publishes)} (${statuses(locked)})`],
            ['longest stall of the event loop', `${free.stall.toFixed(1)} ms`, `${locked.stall.toFixed(1)} ms`],
          ],
        ),
        '',
      ].join('\n'),
    );
  } finally {
    await herald.close();
    await holder.kill();
    dir.remove();
  }
}

if (process.argv[2] === 'holder') runHolder();
else await main();
