/**
 * The log kept in bounds (issue 16), in process on SQLite files:
 * - a read by type pattern (`*.created`, resolved against the catalog) against an exact-type read, at random
 *   positions of a large log (and the old way, the pattern handed to the store, for reference);
 * - a soak: two logs published to in alternating slices, one pruned to `HERALD_LOG_MAX_EVENTS`, one not: the
 *   publish rate of each, and the database size of the pruned one against its size when it first held the
 *   maximum. Writes a plot of both to docs/images/retention-soak.svg;
 * - PostgreSQL (the machine's, `BENCH_POSTGRES_URL`): pruning by dropping whole partitions against deleting
 *   the same events as rows (`--postgres-only` runs this alone).
 * Run alone: `pnpm bench retention`. Sizes: BENCH_RETENTION_LOG, BENCH_RETENTION_SOAK, BENCH_RETENTION_MAX,
 * BENCH_RETENTION_PG_EVENTS, BENCH_RETENTION_PG_PARTITION, BENCH_RETENTION_PG_KEEP.
 */
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  defineEventType,
  EventBus,
  EventCatalog,
  LogPruner,
  memoryBroker,
  type NewEvent,
  postgresStore,
  type SqlStore,
  sqliteStore,
} from '@herald/core';
import pg from 'pg';
import { z } from 'zod';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { envNumber, progress } from './lib/rounds.js';
import { formatCount, formatGoal, formatRatio, type Goal, median, percentile, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const logSize = envNumber('BENCH_RETENTION_LOG', 1_000_000);
const soakEvents = envNumber('BENCH_RETENTION_SOAK', 300_000);
const maxEvents = envNumber('BENCH_RETENTION_MAX', 30_000);
const readRounds = envNumber('BENCH_RETENTION_READ_ROUNDS', 5);
const readsPerTurn = 200;
const sliceEvents = 5_000;
const publishers = 64;
const readGoal: Goal = { atMost: 2 };
const rateGoal: Goal = { atLeast: 0.9 };
const sizeGoal: Goal = { atMost: 1.5 };
const latencyGoal: Goal = { atMost: 1.1 };

/** 40 types: 8 entities × 5 verbs; `*.created` matches 8 of them, an eighth of the log. */
const entities = ['order', 'invoice', 'user', 'cart', 'shipment', 'refund', 'ticket', 'account'];
const verbs = ['created', 'updated', 'deleted', 'paid', 'viewed'];
const typeNames = entities.flatMap((entity) => verbs.map((verb) => `${entity}.${verb}`));
const catalog = new EventCatalog(typeNames.map((name) => defineEventType(name, z.object({ n: z.number(), note: z.string() }))));
const note = 'x'.repeat(200);

let counter = 0;
function newEvent(type: string): NewEvent {
  counter += 1;
  return {
    specversion: '1.0',
    id: `evt_bench_${counter}`,
    type,
    source: '/bench',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { n: counter, note },
  };
}

async function openStore(path: string): Promise<SqlStore> {
  const store = sqliteStore({ path });
  await store.init();
  return store;
}

/** Milliseconds per read, over `readsPerTurn` reads of 100 events at random positions. */
async function timeReads(store: SqlStore, types: readonly string[] | undefined, resolve: boolean): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < readsPerTurn; i++) {
    const after = Math.floor(Math.random() * logSize * 0.95);
    const resolved = resolve && types ? catalog.typesMatching(types) : types;
    if (resolved?.length === 0) continue;
    const page = await store.read({ after, limit: 100, ...(resolved ? { types: resolved } : {}) });
    if (page.length === 0) throw new Error(`an empty page after ${after}`);
  }
  return (performance.now() - started) / readsPerTurn;
}

async function patternReads(): Promise<string> {
  const dir = tempDirectory();
  try {
    const store = await openStore(dir.file('log.db'));
    progress(`filling a log of ${formatCount(logSize)} events over ${typeNames.length} types`);
    for (let at = 0; at < logSize; at += 10_000) {
      await store.append(Array.from({ length: Math.min(10_000, logSize - at) }, (_, i) => newEvent(typeNames[(at + i) % typeNames.length] as string)));
    }
    const variants: [string, readonly string[] | undefined, boolean][] = [
      ['exact type (`order.created`)', ['order.created'], false],
      ['pattern `*.created`, resolved against the catalog (8 types)', ['*.created'], true],
      ['pattern `order.*`, resolved against the catalog (5 types)', ['order.*'], true],
      ['pattern `*.created` handed to the store as it is (before issue 16)', ['*.created'], false],
      ['pattern `*.zzz`, which matches no type', ['*.zzz'], true],
    ];
    const times = variants.map(() => [] as number[]);
    for (let round = 0; round < readRounds; round++) {
      progress(`reads, round ${round + 1} of ${readRounds}`);
      for (let v = 0; v < variants.length; v++) {
        const [, types, resolve] = variants[(v + round) % variants.length] as (typeof variants)[number];
        (times[(v + round) % variants.length] as number[]).push(await timeReads(store, types, resolve));
      }
    }
    await store.close();
    const exact = median(times[0] as number[]);
    const rows = variants.map(([name], v) => {
      const ms = median(times[v] as number[]);
      return [name, ms.toFixed(3), formatRatio(ms / exact), v === 1 || v === 2 ? `${formatGoal(readGoal)} ${verdict(ms / exact, readGoal)}` : ''];
    });
    return [
      `### Reads: a page of 100 by type pattern against one exact type, on a ${formatCount(logSize)}-event log`,
      '',
      `\`store.read({ after: <random>, limit: 100, types })\` on a SQLite file of ${formatCount(logSize)} events of ${typeNames.length} types (one in ${typeNames.length} of each), ${readsPerTurn} reads per turn, ${readRounds} rounds taking turns; the median of the rounds.`,
      '',
      markdownTable(['read', 'ms per page', '÷ exact type', 'goal'], rows),
    ].join('\n');
  } finally {
    dir.remove();
  }
}

interface Sample {
  published: number;
  megabytes: number;
  rate: number;
}

/** One log the soak publishes to: its bus, its pruner (or none), its size and rate samples. */
async function soakLog(path: string, pruned: boolean) {
  const store = await openStore(path);
  const bus = new EventBus({ store, broker: memoryBroker(), catalog });
  await bus.start();
  const rules = { maxAge: 30 * 86_400_000, maxEvents, types: new Map() };
  const pruner = pruned ? new LogPruner({ log: store, rules: () => rules }) : undefined;
  pruner?.start();
  const samples: Sample[] = [];
  /** Milliseconds each publish took, once the pruned log holds its maximum (pruning runs from then on). */
  const latencies: number[] = [];
  let published = 0;
  let busyMs = 0;
  const size = () => (statSync(path).size + (statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0)) / 2 ** 20;
  return {
    samples,
    latencies,
    get rate() {
      return published / (busyMs / 1000);
    },
    size,
    /** Publishes one slice with `publishers` publishers at once (group commit), timing it. */
    async slice(): Promise<void> {
      const started = performance.now();
      let left = sliceEvents;
      await Promise.all(
        Array.from({ length: publishers }, async () => {
          while (left > 0) {
            left -= 1;
            const type = typeNames[published % typeNames.length] as string;
            const began = performance.now();
            await bus.publish({ type, data: { n: published, note } });
            if (published >= maxEvents) latencies.push(performance.now() - began);
            published += 1;
          }
        }),
      );
      const ms = performance.now() - started;
      busyMs += ms;
      samples.push({ published, megabytes: size(), rate: sliceEvents / (ms / 1000) });
    },
    async close(): Promise<number> {
      await pruner?.stop();
      await bus.stop();
      const { events } = await store.logSize();
      await store.close();
      return events;
    },
    pruner,
  };
}

function plot(without: Sample[], withPruning: Sample[]): string {
  const width = 720;
  const height = 260;
  const margin = { left: 60, right: 20, top: 30, bottom: 40 };
  const x = (published: number) => margin.left + (published / soakEvents) * (width - margin.left - margin.right);
  const panel = (title: string, unit: string, pick: (sample: Sample) => number, top: number) => {
    const all = [...without, ...withPruning].map(pick);
    const maximum = Math.max(...all) * 1.1;
    const y = (value: number) => top + height - margin.bottom - (value / maximum) * (height - margin.top - margin.bottom);
    const line = (samples: Sample[], color: string) =>
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${samples.map((s) => `${x(s.published).toFixed(1)},${y(pick(s)).toFixed(1)}`).join(' ')}"/>`;
    const ticks = [0, 0.25, 0.5, 0.75, 1]
      .map((f) => `<text x="${margin.left - 6}" y="${y(maximum * f) + 4}" text-anchor="end">${(maximum * f).toFixed(unit === 'MB' ? 0 : 0)}</text>`)
      .join('');
    const xTicks = [0, 0.25, 0.5, 0.75, 1]
      .map((f) => `<text x="${x(soakEvents * f)}" y="${top + height - margin.bottom + 16}" text-anchor="${f === 1 ? 'end' : 'middle'}">${formatCount(Math.round(soakEvents * f))}</text>`)
      .join('');
    return `<g font-family="sans-serif" font-size="11">
<text x="${margin.left}" y="${top + 18}" font-size="13" font-weight="bold">${title} (${unit})</text>
<line x1="${margin.left}" y1="${top + height - margin.bottom}" x2="${width - margin.right}" y2="${top + height - margin.bottom}" stroke="#888"/>
<line x1="${margin.left}" y1="${top + margin.top}" x2="${margin.left}" y2="${top + height - margin.bottom}" stroke="#888"/>
${ticks}${xTicks}${line(without, '#c0392b')}${line(withPruning, '#2471a3')}</g>`;
  };
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" width="${width}" height="${height * 2 + 30}" viewBox="0 0 ${width} ${height * 2 + 30}">
<title>Database size and publish rate over the soak, with and without pruning</title>
<rect width="100%" height="100%" fill="white"/>
${panel('Database size (file + WAL)', 'MB', (s) => s.megabytes, 0)}
${panel('Publish rate per slice', 'events/s', (s) => s.rate, height)}
<g font-family="sans-serif" font-size="12"><rect x="${width - 300}" y="${height * 2}" width="12" height="12" fill="#c0392b"/><text x="${width - 282}" y="${height * 2 + 11}">no pruning</text>
<rect x="${width - 180}" y="${height * 2}" width="12" height="12" fill="#2471a3"/><text x="${width - 162}" y="${height * 2 + 11}">max ${formatCount(maxEvents)} events</text>
<text x="${60}" y="${height * 2 + 11}">events published →</text></g>
</svg>
`;
}

async function soak(): Promise<string> {
  const dir = tempDirectory();
  try {
    const without = await soakLog(dir.file('unpruned.db'), false);
    const pruned = await soakLog(dir.file('pruned.db'), true);
    let sizeAtMax: number | undefined;
    for (let slice = 0; slice * sliceEvents < soakEvents; slice++) {
      // Taking turns, who goes first changing, so that both see the same drift in the machine's load.
      const order = slice % 2 === 0 ? [without, pruned] : [pruned, without];
      for (const log of order) await log.slice();
      if (sizeAtMax === undefined && (slice + 1) * sliceEvents >= maxEvents) {
        await pruned.pruner?.run();
        sizeAtMax = pruned.size();
      }
      if (slice % 10 === 9) progress(`soak: ${formatCount((slice + 1) * sliceEvents)} of ${formatCount(soakEvents)} events in each log`);
    }
    await pruned.pruner?.run();
    const finalSize = pruned.size();
    const unprunedSize = without.size();
    const rateRatio = pruned.rate / without.rate;
    const [p99Without, p99Pruned] = [percentile(without.latencies, 99), percentile(pruned.latencies, 99)];
    const latencyRatio = p99Pruned / p99Without;
    const sizeRatio = finalSize / (sizeAtMax as number);
    const prunedTotal = pruned.pruner?.pruned ?? 0;
    const [unprunedEvents, prunedEvents] = [await without.close(), await pruned.close()];
    // The work happened: every publish is in the unpruned log, and the pruned one holds exactly its maximum.
    if (unprunedEvents !== soakEvents || prunedEvents !== maxEvents || prunedTotal !== soakEvents - maxEvents) {
      throw new Error(`the logs hold ${unprunedEvents} and ${prunedEvents} events (${prunedTotal} pruned): expected ${soakEvents} and ${maxEvents}`);
    }
    const image = join(dirname(fileURLToPath(import.meta.url)), '../../docs/images/retention-soak.svg');
    writeFileSync(image, plot(without.samples, pruned.samples));
    progress(`wrote ${image}`);
    return [
      `### Soak: ${formatCount(soakEvents)} events with \`HERALD_LOG_MAX_EVENTS=${formatCount(maxEvents)}\` against none`,
      '',
      `Two logs on SQLite files (WAL, \`synchronous=FULL\`), each behind an \`EventBus\` with ${publishers} publishers at once (group commit), ~300-byte events; the logs take turns of ${formatCount(sliceEvents)} events. The pruned one runs the \`LogPruner\` createHerald runs (every second, batches of 200, 20 ms apart).${soakEvents < 1_000_000 ? " Scaled down from the issue's 1,000,000 events with a maximum of 100,000 (the same 10 : 1) so that it runs in a few minutes on the shared machine." : ''}`,
      '',
      markdownTable(
        ['log', 'events/s', 'publish p99', 'events kept', 'database size at the end'],
        [
          ['no pruning', formatCount(Math.round(without.rate)), `${p99Without.toFixed(1)} ms`, formatCount(unprunedEvents), `${unprunedSize.toFixed(1)} MB`],
          [`max ${formatCount(maxEvents)}`, formatCount(Math.round(pruned.rate)), `${p99Pruned.toFixed(1)} ms`, formatCount(prunedEvents), `${finalSize.toFixed(1)} MB`],
        ],
      ),
      '',
      markdownTable(
        ['ratio', 'value', 'goal', ''],
        [
          ['publish rate, pruned ÷ not pruned', formatRatio(rateRatio), formatGoal(rateGoal), verdict(rateRatio, rateGoal)],
          [`publish latency p99 once pruning runs (after ${formatCount(maxEvents)} events), pruned ÷ not pruned`, formatRatio(latencyRatio), formatGoal(latencyGoal), verdict(latencyRatio, latencyGoal)],
          [`size at the end ÷ size when it first held ${formatCount(maxEvents)} events (${(sizeAtMax as number).toFixed(1)} MB)`, formatRatio(sizeRatio), formatGoal(sizeGoal), verdict(sizeRatio, sizeGoal)],
        ],
      ),
      '',
      `Events pruned: ${formatCount(prunedTotal)}.`,
      '',
      '![Database size and publish rate over the soak](images/retention-soak.svg)',
    ].join('\n');
  } finally {
    dir.remove();
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: pruning drops whole partitions, against deleting the same events as rows.

const postgresAdminUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresAdmin<T>(work: (client: pg.Client) => Promise<T>, url = postgresAdminUrl): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A fresh database with a log of `count` events, partitions of `partitionSize`: its store and URL. */
async function postgresLog(count: number, partitionSize: number): Promise<{ store: SqlStore; url: string; drop(): Promise<void> }> {
  const name = `herald_bench_prune_${process.pid}_${randomBytes(4).toString('hex')}`;
  await postgresAdmin((client) => client.query(`create database ${name}`));
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  const store = postgresStore({ url: url.href, logPartitionSize: partitionSize });
  await store.init();
  for (let at = 0; at < count; at += sliceEvents) {
    await store.append(Array.from({ length: Math.min(sliceEvents, count - at) }, (_, i) => newEvent(typeNames[(at + i) % typeNames.length] as string)));
  }
  const drop = async () => {
    await store.close();
    await postgresAdmin((client) => client.query(`drop database if exists ${name} with (force)`));
  };
  return { store, url: url.href, drop };
}

/** The WAL PostgreSQL has written so far, in bytes (the whole server's: other databases' writes count too). */
const walPosition = (url: string) =>
  postgresAdmin(async (client) => Number((await client.query<{ bytes: string }>("select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') as bytes")).rows[0]?.bytes), url);

/** How long `work` took (s) and the WAL written meanwhile (bytes). */
async function measured(url: string, work: () => Promise<number>): Promise<{ seconds: number; wal: number; pruned: number }> {
  await postgresAdmin((client) => client.query('checkpoint'), url);
  const walBefore = await walPosition(url);
  const started = performance.now();
  const pruned = await work();
  return { seconds: (performance.now() - started) / 1000, wal: (await walPosition(url)) - walBefore, pruned };
}

async function postgresPruning(): Promise<string> {
  const events = envNumber('BENCH_RETENTION_PG_EVENTS', 200_000);
  const partitionSize = envNumber('BENCH_RETENTION_PG_PARTITION', 50_000);
  const keep = envNumber('BENCH_RETENTION_PG_KEEP', 50_000);
  const rounds = envNumber('BENCH_ROUNDS', 2);
  const results: { partitions: { seconds: number; wal: number; pruned: number }; rows: { seconds: number; wal: number; pruned: number } }[] = [];
  for (let round = 1; round <= rounds; round++) {
    progress(`PostgreSQL pruning, round ${round}/${rounds}: two logs of ${formatCount(events)} events`);
    const [partitioned, baseline] = [await postgresLog(events, partitionSize), await postgresLog(events, partitionSize)];
    try {
      const rules = { maxAge: 365 * 86_400_000, maxEvents: keep, types: new Map() };
      const partitions = await measured(partitioned.url, async () => {
        let pruned = 0;
        for (let more = true; more; ) {
          const result = await partitioned.store.prune(rules);
          pruned += result.pruned;
          more = result.more;
        }
        return pruned;
      });
      // As the pruner did before partitions: 200 events a transaction, looked up from the lowest seq, then deleted by seq.
      const bound = events - keep;
      const rows = await measured(baseline.url, () =>
        postgresAdmin(async (client) => {
          let pruned = 0;
          for (;;) {
            const { rows: batch } = await client.query<{ seq: string }>('select seq from herald_events where seq <= $1 order by seq limit 200', [bound]);
            if (batch.length === 0) return pruned;
            const deleted = await client.query('delete from herald_events where seq = any($1::bigint[])', [batch.map((row) => row.seq)]);
            pruned += deleted.rowCount ?? 0;
          }
        }, baseline.url),
      );
      results.push({ partitions, rows });
    } finally {
      await partitioned.drop();
      await baseline.drop();
    }
  }
  const sum = (pick: (r: (typeof results)[number]) => { seconds: number; wal: number; pruned: number }) => ({
    seconds: results.reduce((total, r) => total + pick(r).seconds, 0),
    wal: results.reduce((total, r) => total + pick(r).wal, 0),
    pruned: results.reduce((total, r) => total + pick(r).pruned, 0),
  });
  const [partitions, rows] = [sum((r) => r.partitions), sum((r) => r.rows)];
  const perRound = (pick: (r: (typeof results)[number]) => number) => results.map((r) => formatRatio(pick(r))).join(', ');
  const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
  return [
    '### PostgreSQL: dropping partitions against deleting rows (issue 16)',
    '',
    `Two logs of ${formatCount(events)} events (about 220 bytes of data each, 40 types) in fresh databases of the machine's`,
    `PostgreSQL, partitions of ${formatCount(partitionSize)} seqs; each is pruned to its newest ${formatCount(keep)}. Partitions: \`SqlStore.prune\``,
    'rounds until nothing is left to do (whole partitions dropped, their ids deleted by range). Rows: the events deleted',
    '200 a transaction, as the pruner did before partitions (their ids left alone, which spares the rows their share).',
    `WAL: \`pg_current_wal_lsn()\` before and after, after a checkpoint (the whole server's: others' writes count too). ${rounds} rounds.`,
    '',
    markdownTable(
      ['pruning', 'events pruned', 'seconds', 'WAL written', 'time ÷ rows', 'per round', 'WAL ÷ rows', 'per round'],
      [
        ['rows, 200 a transaction', formatCount(rows.pruned), rows.seconds.toFixed(2), megabytes(rows.wal), '1.00', '', '1.00', ''],
        [
          'whole partitions',
          formatCount(partitions.pruned),
          partitions.seconds.toFixed(2),
          megabytes(partitions.wal),
          formatRatio(partitions.seconds / rows.seconds),
          perRound((r) => r.partitions.seconds / r.rows.seconds),
          formatRatio(partitions.wal / rows.wal),
          perRound((r) => r.partitions.wal / r.rows.wal),
        ],
      ],
    ),
  ].join('\n');
}

// `--postgres-only`: the PostgreSQL section alone.
const sections = process.argv.includes('--postgres-only')
  ? [`## Retention: the log kept in bounds`, '', measuredWith('pnpm --filter @herald/bench exec tsx --conditions=herald-source src/retention-bench.ts --postgres-only'), '', await postgresPruning()]
  : [`## Retention: the log kept in bounds`, '', measuredWith('pnpm bench retention'), '', await patternReads(), '', await soak(), '', await postgresPruning()];
console.log(sections.join('\n'));
