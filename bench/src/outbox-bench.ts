/**
 * @herald/outbox without the network: the delivery engine and the SQL outbox driving a push transport
 * whose send answers at the next turn of the event loop, so that what a drain costs besides sending is
 * measured without an HTTP receiver's noise. Beside each drain, in the same round, the least SQLite work a
 * durable outbox could do for as many deliveries (better-sqlite3 alone, one write a delivery).
 * Run alone: `tsx --conditions=herald-source bench/src/outbox-bench.ts`. `BENCH_OUTBOX_PROFILE=<folder>` writes a
 * CPU profile of each drain's measured part there.
 */
import { definePushTransport, pushConfigFields } from '@herald/outbox';
import { z } from 'zod';
import { CpuProfiles } from './lib/cpu-profile.js';
import { adminPost, drainNode, makeRetriesDue, onSqlite, publishBatches, until, withSubscription } from './lib/drain-setup.js';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { mainThreadCpu, mainThreadCpuPer } from './lib/proc-cpu.js';
import { envNumber, progress } from './lib/rounds.js';
import { formatCount, formatRatio, median } from './lib/stats.js';

const deliveries = envNumber('BENCH_OUTBOX_DELIVERIES', 20_000);
const rounds = envNumber('BENCH_ROUNDS', 5);
const concurrency = 32;
const profiles = new CpuProfiles(process.env.BENCH_OUTBOX_PROFILE);

/** What the transport's sends do: fail (as an endpoint in an outage) or deliver, counting deliveries. */
const destination = { down: false, delivered: 0 };

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function startHerald(database: string, sending: boolean) {
  const transport = definePushTransport({
    name: 'instant',
    configSchema: z.strictObject({ name: z.string(), ...pushConfigFields }),
    options: { concurrency },
    async send() {
      await nextTurn();
      if (destination.down) return { delivered: false, responseStatus: 503, error: 'the endpoint answered 503' };
      destination.delivered += 1;
      return { delivered: true, responseStatus: 200 };
    },
  });
  return drainNode(database, sending ? [transport] : []);
}

/** Runs `work` on a fresh database that has one subscription of the transport, then deletes it. */
function withDatabase<T>(work: (database: string, subscriptionId: string) => Promise<T>): Promise<T> {
  const subscription = { transport: 'instant', types: ['bench.*'], consumer: 'bench', config: { name: 'bench' } };
  return withSubscription((database) => startHerald(database, true), subscription, work);
}

/** Main-thread CPU per delivery from `begin` until `deliveries` are counted; profiled as `what`. */
async function measureDrain(what: string, begin: () => Promise<unknown>): Promise<number> {
  destination.delivered = 0;
  const stopProfile = await profiles.start(what);
  const before = mainThreadCpu();
  await begin();
  await until(() => destination.delivered >= deliveries, `the ${what} drain`);
  const perDelivery = mainThreadCpuPer(before, deliveries);
  await stopProfile();
  return perDelivery ?? Number.NaN;
}

/** {@link measureDrain} from a node's start on `database`, which is closed after. */
async function drainFromStart(what: string, database: string): Promise<number> {
  let node: ReturnType<typeof startHerald> | undefined;
  try {
    return await measureDrain(what, async () => {
      node = startHerald(database, true);
    });
  } finally {
    await node?.close();
  }
}

function count(database: string, where: string): number {
  return (onSqlite(database, (sqlite) => sqlite.prepare(`SELECT count(*) AS n FROM herald_deliveries WHERE ${where}`).get(), { readonly: true }) as { n: number }).n;
}

/** Events published while no node sends, then a node starts: it fans them out, sends and records each. */
function fanOut(): Promise<number> {
  return withDatabase(async (database) => {
    const publisher = startHerald(database, false);
    await publisher.ready;
    await publishBatches(publisher, deliveries);
    await publisher.close();
    return drainFromStart('fan-out', database);
  });
}

/** Every delivery attempted once while the destination is down, then made due: a node starts and retries them all. */
function retryStorm(): Promise<number> {
  return withDatabase(async (database) => {
    destination.down = true;
    const failing = startHerald(database, true);
    await failing.ready;
    await publishBatches(failing, deliveries);
    await until(() => count(database, `status = 'pending' AND attempts >= 1 AND locked_by IS NULL`) >= deliveries, 'the first attempts to fail');
    await failing.close();
    destination.down = false;
    makeRetriesDue(database, deliveries);
    return drainFromStart('retry', database);
  });
}

/** Delivered events replayed on the running node that delivered them: from the request to the last delivery. */
function replay(): Promise<number> {
  return withDatabase(async (database, subscriptionId) => {
    destination.delivered = 0;
    const node = startHerald(database, true);
    const { url } = await node.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
    await publishBatches(node, deliveries);
    try {
      await until(() => destination.delivered >= deliveries && count(database, `status = 'delivered'`) >= deliveries, 'the first deliveries');
      return await measureDrain('replay', () => adminPost(url, `/v1/subscriptions/${subscriptionId}/replay`, { after: 0 }, 202));
    } finally {
      await node.close();
    }
  });
}

/**
 * The least a durable outbox writes for `deliveries` deliveries, with better-sqlite3 alone on the outbox's own
 * table (its indexes, its columns): `insert`, one row a delivery, delivered (as a fan-out's settled attempt
 * makes it); `update`, pending rows made delivered, one UPDATE a delivery. Transactions of 500, unsynced as the
 * outbox's. Main-thread CPU per delivery of the writes alone.
 */
function rowsAlone(kind: 'insert' | 'update'): Promise<number> {
  return withDatabase(async (database, subscriptionId) =>
    onSqlite(database, (sqlite) => {
      sqlite.pragma('synchronous = normal');
      const columns = `(id, subscription_id, event_seq, event_id, status, attempts, next_attempt_at, locked_by, locked_until, created_at, updated_at, attempt_started_at, attempt_duration_ms, attempt_response_status, attempt_response_body)`;
      const insert = sqlite.prepare(`INSERT INTO herald_deliveries ${columns} VALUES (?, ?, ?, ?, ?, 1, ?, NULL, NULL, ?, ?, ?, 3, 200, NULL)`);
      const update = sqlite.prepare(
        `UPDATE herald_deliveries SET status = 'delivered', next_attempt_at = NULL, locked_by = NULL, locked_until = NULL, updated_at = ?, attempt_started_at = ?, attempt_duration_ms = 3, attempt_response_status = 200 WHERE id = ?`,
      );
      const now = Date.now();
      const id = (n: number) => `dlv_${String(n).padStart(22, '0')}`;
      const write = (from: number, status: 'pending' | 'delivered') =>
        sqlite.transaction(() => {
          for (let n = from; n < Math.min(from + 500, deliveries); n++) insert.run(id(n), subscriptionId, n + 1, `evt_${n}`, status, status === 'pending' ? now : null, now, now, status === 'pending' ? null : now);
        })();
      if (kind === 'update') for (let n = 0; n < deliveries; n += 500) write(n, 'pending');
      const before = mainThreadCpu();
      for (let from = 0; from < deliveries; from += 500) {
        if (kind === 'insert') write(from, 'delivered');
        else
          sqlite.transaction(() => {
            for (let n = from; n < Math.min(from + 500, deliveries); n++) update.run(now, now, id(n));
          })();
      }
      return mainThreadCpuPer(before, deliveries) ?? Number.NaN;
    }),
  );
}

async function main(): Promise<void> {
  const runs = { fanOut: [] as number[], insert: [] as number[], retry: [] as number[], replay: [] as number[], update: [] as number[] };
  progress('warming up');
  await fanOut();
  for (let round = 1; round <= rounds; round++) {
    runs.insert.push(await rowsAlone('insert'));
    runs.fanOut.push(await fanOut());
    runs.update.push(await rowsAlone('update'));
    runs.retry.push(await retryStorm());
    runs.replay.push(await replay());
    progress(
      `round ${round}/${rounds}: rows inserted ${runs.insert.at(-1)?.toFixed(1)} µs, fan-out ${runs.fanOut.at(-1)?.toFixed(1)} µs; rows updated ${runs.update.at(-1)?.toFixed(1)} µs, retry storm ${runs.retry.at(-1)?.toFixed(1)} µs, replay ${runs.replay.at(-1)?.toFixed(1)} µs (main thread per delivery)`,
    );
  }
  const least = (values: number[]) => Math.min(...values);
  const row = (what: string, values: number[], baseline?: number[]) => [
    what,
    `${least(values).toFixed(1)} µs`,
    `${median(values).toFixed(1)} µs`,
    baseline ? `${formatRatio(least(values) / least(baseline))}×` : '1×',
  ];
  console.log(
    [
      '## The outbox without the network',
      '',
      measuredWith('pnpm bench outbox'),
      '',
      `\`tsx --conditions=herald-source bench/src/outbox-bench.ts\` (part of \`pnpm bench\`). The delivery engine and the SQL outbox on a SQLite file, driving a push transport whose \`send\` answers at the next turn of the event loop, ${concurrency} in flight to one subscription, ${formatCount(deliveries)} deliveries a drain: what a drain costs besides sending, without an HTTP receiver sharing the machine. Beside each drain, in the same round, the rows alone: better-sqlite3 writing the outbox's own table, one statement a delivery in transactions of 500 (an insert of a delivered row, as a fan-out's settled attempt makes it; an update of a pending row to delivered, as a retry or a replay ends). Main-thread CPU per delivery (from /proc, in 10 ms steps), the least and the median of ${rounds} rounds; the ratio is the least over the least of its rows alone.`,
      '',
      markdownTable(
        ['what', 'main-thread CPU per delivery (least)', '(median)', 'over the rows alone'],
        [
          row('rows alone: one INSERT a delivery', runs.insert),
          row('fan-out: events published while no node sends, then a node starts', runs.fanOut, runs.insert),
          row('rows alone: one UPDATE a delivery', runs.update),
          row('retry storm: every delivery failed once, then due, then a node starts', runs.retry, runs.update),
          row('replay: `POST /v1/subscriptions/:id/replay` of delivered events on the running node', runs.replay, runs.update),
        ],
      ),
      '',
    ].join('\n'),
  );
}

await main();
