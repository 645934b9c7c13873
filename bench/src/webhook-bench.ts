/**
 * @herald/webhook: deliveries per second through the durable outbox (signed, leased, recorded) against a
 * raw undici POST loop with the same concurrency and receiver; publish-to-receipt latency at 200
 * events/s; memory across 100,000 deliveries. The receiver runs in its own process. Prints a markdown
 * section. Run alone: `tsx --conditions=herald-source bench/src/webhook-bench.ts`. `BENCH_WEBHOOK_ONLY=recovery`
 * runs only the recovery section (Herald's signed send alone, the fan-out, replay and retry-storm drains);
 * `BENCH_WEBHOOK_PROFILE=<folder>` writes a CPU profile of the measured part of each drain there.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateSecret, HttpSender, webhook, webhookRequest } from '@herald/webhook';
import { Pool } from 'undici';
import { type Child, collectGarbage, serveRequests, spawnChild } from './lib/child-process.js';
import { CpuProfiles } from './lib/cpu-profile.js';
import { adminPost, drainNode, makeRetriesDue, onSqlite, pad, publishBatches, until, withSubscription, within } from './lib/drain-setup.js';
import { now } from './lib/client-groups.js';
import { mainThreadCpu, mainThreadCpuPer } from './lib/proc-cpu.js';
import { markdownTable } from './lib/markdown.js';
import { envNumber, progress } from './lib/rounds.js';
import { best, formatCount, formatGoal, formatRatio, type Goal, median, percentile, roundRatios, verdict } from './lib/stats.js';

const concurrency = envNumber('BENCH_WEBHOOK_CONCURRENCY', 32);
const drainEvents = envNumber('BENCH_WEBHOOK_EVENTS', 20_000);
const rounds = envNumber('BENCH_ROUNDS', 3);
const latencyRate = 200;
const latencySeconds = envNumber('BENCH_WEBHOOK_LATENCY_SECONDS', 10);
const memoryDeliveries = envNumber('BENCH_WEBHOOK_MEMORY_DELIVERIES', 100_000);
/** The memory run stops early past this, and says so. */
const memoryBudgetMs = envNumber('BENCH_WEBHOOK_MEMORY_SECONDS', 75) * 1000;
const recoveryEvents = envNumber('BENCH_WEBHOOK_RECOVERY_EVENTS', 10_000);
/** `recovery`: only the recovery section (the signed send and the fan-out, replay and retry-storm drains, each with its raw loop); anything else: every part. */
const only = process.env.BENCH_WEBHOOK_ONLY;
const goal: Goal = { atLeast: 0.5 };
/** A folder: each fan-out, replay and retry-storm drain writes the CPU profile of its measured part there (`<what>-<n>.cpuprofile`). */
const profiles = new CpuProfiles(process.env.BENCH_WEBHOOK_PROFILE);


// ---------------------------------------------------------------------------------------------
// The receiver, in its own process: answers 200 at once and notes when each webhook-id first came.

async function runReceiver(): Promise<void> {
  let total = 0;
  let receipts = new Map<string, number>();
  /** While true, the endpoint is down: every request is answered 503 and not counted as a receipt. */
  let down = false;
  /** Who waits for this many unique receipts. */
  let reached: { unique: number; resolve: (value: true) => void } | undefined;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      total += 1;
      const id = req.headers['webhook-id'];
      if (!down && typeof id === 'string' && !receipts.has(id)) {
        receipts.set(id, now());
        if (reached && receipts.size >= reached.unique) {
          reached.resolve(true);
          reached = undefined;
        }
      }
      res.writeHead(down ? 503 : 200, { 'content-length': '0' });
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  serveRequests({
    port: () => (server.address() as AddressInfo).port,
    reset: () => {
      total = 0;
      receipts = new Map();
      reached = undefined;
      return true;
    },
    down: (value: boolean) => {
      down = value;
      return true;
    },
    count: () => ({ total, unique: receipts.size }),
    reached: (unique: number) =>
      new Promise<true>((resolve) => {
        if (receipts.size >= unique) resolve(true);
        else reached = { unique, resolve };
      }),
    receipts: () => [...receipts],
  });
  process.send?.('up');
}

interface Receiver extends Child {
  port: number;
}

async function startReceiver(): Promise<Receiver> {
  const child = await spawnChild(import.meta.url, ['receiver']);
  return { ...child, port: await child.call<number>('port') };
}

// ---------------------------------------------------------------------------------------------
// The subjects.

/**
 * A rate, and the CPU time this process spent per unit, in µs (less disturbed by other load than the rate):
 * all of it, and its main thread's alone (what the drains are bound by), where /proc tells.
 */
interface Measured {
  rate: number;
  cpu: number;
  main?: number | undefined;
}

/** The raw loop's body: an event's JSON of about 250 bytes. */
const rawBody = JSON.stringify({ specversion: '1.0', id: 'evt_0', seq: 1, type: 'bench.event', source: '/herald', time: new Date().toISOString(), datacontenttype: 'application/json', data: { n: 0, pad } });

/** Starts measuring this process: `per(units)` is then the rate of `units` since the start, and the CPU spent per unit. */
function startMeasuring(): { per(units: number): Measured } {
  const cpuBefore = process.cpuUsage();
  const mainBefore = mainThreadCpu();
  const started = now();
  return {
    per(units) {
      const seconds = (now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      return { rate: units / seconds, cpu: (cpu.user + cpu.system) / units, main: mainThreadCpuPer(mainBefore, units) };
    },
  };
}

/** `concurrency` loops each running `post(n)` for the next request number `n` until `requests` are sent; profiled as `what`. */
async function postLoop(what: string, requests: number, post: (n: number) => Promise<void>): Promise<Measured> {
  let sent = 0;
  const stopProfile = await profiles.start(what);
  const measuring = startMeasuring();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < requests) {
        sent += 1;
        await post(sent);
      }
    }),
  );
  const measured = measuring.per(requests);
  await stopProfile();
  return measured;
}

/** `concurrency` loops POSTing a 250-byte JSON body with undici, as fast as the receiver answers. */
async function rawLoop(receiver: Receiver, requests: number): Promise<Measured> {
  const pool = new Pool(`http://127.0.0.1:${receiver.port}`, { connections: concurrency });
  const measured = await postLoop('raw', requests, async (n) => {
    const response = await pool.request({ path: '/hook', method: 'POST', headers: { 'content-type': 'application/json', 'webhook-id': `raw_${n}` }, body: rawBody });
    await response.body.dump();
  });
  await pool.close();
  return measured;
}

/**
 * Herald's send alone, without the delivery engine or the outbox: the same loops, each request signed
 * and sent as the webhook transport sends a delivery (`webhookRequest`, then its `HttpSender`).
 */
async function signedLoop(receiver: Receiver, requests: number): Promise<Measured> {
  const sender = new HttpSender({ allowPrivate: true });
  const config = { url: `http://127.0.0.1:${receiver.port}/hook`, secret: generateSecret() };
  const measured = await postLoop('signed', requests, async (n) => {
    const request = webhookRequest(config, `msg_${n}`, rawBody, Date.now());
    const result = await sender.post(request.url, request.headers, rawBody, 15_000);
    if (result.status !== 200) throw new Error(`the receiver answered ${result.status ?? result.error}`);
  });
  await sender.close();
  return measured;
}

function startHerald(database: string, withWebhooks: boolean) {
  return drainNode(database, withWebhooks ? [webhook({ allowPrivate: true, concurrency })] : []);
}

/** Runs `work` on a fresh database that has a webhook subscription to the receiver, then deletes it. */
function withDatabase<T>(receiver: Receiver, work: (database: string, subscriptionId: string) => Promise<T>): Promise<T> {
  const subscription = { transport: 'webhook', types: ['bench.*'], consumer: 'bench', config: { url: `http://127.0.0.1:${receiver.port}/hook` } };
  return withSubscription((database) => startHerald(database, true), subscription, work);
}

/**
 * Drains the outbox: `events` are published while no node delivers webhooks, then a node starts and
 * fans them out, claims, signs, sends and records every delivery. Deliveries/s from its start to the last receipt.
 */
async function outboxDrain(receiver: Receiver, events: number): Promise<Measured> {
  return withDatabase(receiver, async (database) => {
    const publisher = startHerald(database, false);
    await publisher.ready;
    await publishBatches(publisher, events);
    await publisher.close();
    await receiver.call('reset');
    const stopProfile = await profiles.start('fan-out');
    const measuring = startMeasuring();
    const node = startHerald(database, true);
    const measured = await drained(receiver, events, measuring, 'the outbox to drain');
    await stopProfile();
    await node.close();
    return measured;
  });
}

/** Waits for `events` unique receipts: deliveries/s since `measuring` started, and this process's CPU per delivery. */
async function drained(receiver: Receiver, events: number, measuring: ReturnType<typeof startMeasuring>, what: string): Promise<Measured> {
  // The receiver says when the last one came: asking it every few ms would cost the measured process CPU.
  await within(receiver.call('reached', events), what);
  return measuring.per(events);
}

/** Whether the outbox holds `events` delivered deliveries and nothing else. */
function settledOutbox(database: string, events: number): boolean {
  const { delivered, other } = onSqlite(database, (sqlite) =>
    sqlite
      .prepare(
        `SELECT sum(status = 'delivered') AS delivered, sum(status != 'delivered') + (SELECT count(*) FROM herald_outbox_holds) AS other FROM herald_deliveries`,
      )
      .get(),
    { readonly: true },
  ) as { delivered: number | null; other: number | null };
  return delivered === events && (other ?? 0) === 0;
}

/**
 * A replay of `events` already delivered events to the one endpoint, on a running node: from the
 * `POST /v1/subscriptions/:id/replay` to the last receipt.
 */
async function replayDrain(receiver: Receiver, events: number): Promise<Measured> {
  return withDatabase(receiver, async (database, subscriptionId) => {
    const node = startHerald(database, true);
    const { url } = await node.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
    await publishBatches(node, events);
    await within(receiver.call('reached', events), 'the first deliveries');
    // Every first attempt recorded: a replay of a delivery still in flight is settled by that attempt.
    await until(async () => settledOutbox(database, events), 'the first attempts to be recorded');
    await receiver.call('reset');
    const stopProfile = await profiles.start('replay');
    const measuring = startMeasuring();
    await adminPost(url, `/v1/subscriptions/${subscriptionId}/replay`, { after: 0 }, 202);
    const measured = await drained(receiver, events, measuring, 'the replay to drain');
    await stopProfile();
    await node.close();
    return measured;
  });
}

/**
 * A retry storm: the endpoint is down (503) while `events` are published and attempted once each; the
 * node stops, the outage ends and the retries fall due (their `next_attempt_at` set to now, as if the
 * schedule's wait had passed), then a node starts: from its start to the last receipt.
 */
async function retryStormDrain(receiver: Receiver, events: number): Promise<Measured> {
  return withDatabase(receiver, async (database) => {
    await receiver.call('down', true);
    await receiver.call('reset');
    const failing = startHerald(database, true);
    await failing.ready;
    await publishBatches(failing, events);
    await until(async () => (await receiver.call<{ total: number }>('count')).total >= events, 'the first attempts to fail');
    await failing.close();
    await receiver.call('down', false);
    makeRetriesDue(database, events);
    await receiver.call('reset');
    const stopProfile = await profiles.start('retry');
    const measuring = startMeasuring();
    const node = startHerald(database, true);
    const measured = await drained(receiver, events, measuring, 'the retries to drain');
    await stopProfile();
    await node.close();
    return measured;
  });
}

/** Events published while the node delivers them, from the first publish to the last receipt. */
async function endToEnd(receiver: Receiver, events: number): Promise<number> {
  return withDatabase(receiver, async (database) => {
    const node = startHerald(database, true);
    await node.ready;
    await receiver.call('reset');
    const measuring = startMeasuring();
    await publishBatches(node, events);
    const { rate } = await drained(receiver, events, measuring, 'every delivery');
    await node.close();
    return rate;
  });
}

/** One event every 5 ms for `latencySeconds`; the time from calling publish to the receiver's first receipt. */
async function latency(receiver: Receiver): Promise<number[]> {
  return withDatabase(receiver, async (database) => {
    const node = startHerald(database, true);
    await node.ready;
    await receiver.call('reset');
    const sentAt = new Map<string, number>();
    const total = latencyRate * latencySeconds;
    const started = now();
    const publishing: Promise<unknown>[] = [];
    for (let n = 0; n < total; n++) {
      const due = started + (n * 1000) / latencyRate;
      while (now() < due) await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - now() - 1)));
      const at = now();
      const id = `evt_latency_${n}`;
      sentAt.set(id, at);
      publishing.push(node.publish({ type: 'bench.event', id, data: { n, pad } } as never));
    }
    await Promise.all(publishing);
    await within(receiver.call('reached', total), 'every latency event');
    const receipts = await receiver.call<[string, number][]>('receipts');
    await node.close();
    return receipts.map(([id, at]) => at - (sentAt.get(id) as number));
  });
}

interface MemorySample {
  deliveries: number;
  heapMb: number;
  rssMb: number;
}

/** Keeps up to 5,000 events ahead of the receiver, and samples memory every 10% of the run. */
async function memoryRun(receiver: Receiver): Promise<{ samples: MemorySample[]; stoppedEarly: boolean }> {
  return withDatabase(receiver, async (database) => {
    const node = startHerald(database, true);
    await node.ready;
    await receiver.call('reset');
    const step = memoryDeliveries / 10;
    const samples: MemorySample[] = [];
    const sample = (deliveries: number) => {
      collectGarbage();
      const usage = process.memoryUsage();
      samples.push({ deliveries, heapMb: usage.heapUsed / 2 ** 20, rssMb: usage.rss / 2 ** 20 });
    };
    sample(0);
    const started = Date.now();
    let published = 0;
    let stoppedEarly = false;
    while (samples.length <= 10) {
      const { unique } = await receiver.call<{ unique: number }>('count');
      if (unique >= step * samples.length) {
        sample(unique);
        progress(`memory: ${formatCount(unique)} deliveries, heap ${(samples.at(-1) as MemorySample).heapMb.toFixed(1)} MB`);
        if (Date.now() - started > memoryBudgetMs && samples.length <= 10) {
          stoppedEarly = true;
          break;
        }
        continue;
      }
      if (published < memoryDeliveries && published - unique < 5_000) {
        const batch = Math.min(500, memoryDeliveries - published);
        await node.bus.publishMany(Array.from({ length: batch }, (_, i) => ({ type: 'bench.event', data: { n: published + i, pad } })));
        published += batch;
      } else {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    await node.close();
    return { samples, stoppedEarly };
  });
}

// ---------------------------------------------------------------------------------------------

/** The fan-out, replay and retry-storm drains, each round against a raw loop of as many requests run just before it. */
async function recovery(receiver: Receiver): Promise<string[]> {
  const pair = () => ({ raw: [] as Measured[], drained: [] as Measured[] });
  const runs = { signed: pair(), fanOut: pair(), replay: pair(), retry: pair() };
  for (let round = 1; round <= rounds; round++) {
    runs.signed.raw.push(await rawLoop(receiver, recoveryEvents));
    runs.signed.drained.push(await signedLoop(receiver, recoveryEvents));
    runs.fanOut.raw.push(await rawLoop(receiver, recoveryEvents));
    runs.fanOut.drained.push(await outboxDrain(receiver, recoveryEvents));
    runs.replay.raw.push(await rawLoop(receiver, recoveryEvents));
    runs.replay.drained.push(await replayDrain(receiver, recoveryEvents));
    runs.retry.raw.push(await rawLoop(receiver, recoveryEvents));
    runs.retry.drained.push(await retryStormDrain(receiver, recoveryEvents));
    const rate = (measured: Measured[]) => formatCount((measured.at(-1) as Measured).rate);
    progress(
      `recovery round ${round}/${rounds}: raw ${rate(runs.signed.raw)}/s, signed send ${rate(runs.signed.drained)}/s; raw ${rate(runs.fanOut.raw)}/s, fan-out ${rate(runs.fanOut.drained)}/s; raw ${rate(runs.replay.raw)}/s, replay ${rate(runs.replay.drained)}/s; raw ${rate(runs.retry.raw)}/s, retry storm ${rate(runs.retry.drained)}/s`,
    );
  }
  const cpuOf = (measured: Measured[]) => `${Math.min(...measured.map((m) => m.cpu)).toFixed(0)} µs`;
  // Least of the rounds, as for the process's CPU: a slow moment of the machine only ever adds to a round's figure.
  const leastMain = (measured: Measured[]) => {
    const mains = measured.flatMap((m) => (m.main === undefined ? [] : [m.main]));
    return mains.length > 0 ? Math.min(...mains) : undefined;
  };
  const mainOf = (raw: Measured[], drained?: Measured[]) => {
    const own = leastMain(drained ?? raw);
    if (own === undefined) return 'n/a';
    const rawMain = leastMain(raw);
    return drained && rawMain !== undefined ? `${own.toFixed(0)} µs; raw's ÷ this: ${formatRatio(rawMain / own)}` : `${own.toFixed(0)} µs`;
  };
  /** A pair's two rows; `judged`: whether the goal applies to it. */
  const rows = (what: string, { raw, drained }: { raw: Measured[]; drained: Measured[] }, judged = true) => {
    const ratio = best(drained.map((m) => m.rate)) / best(raw.map((m) => m.rate));
    const paired = roundRatios({ rounds: drained.map((m) => m.rate) }, { rounds: raw.map((m) => m.rate) });
    return [
      [`raw undici \`Pool\` POST loop, ${concurrency} at a time (run just before each ${what.split(':')[0]})`, formatCount(best(raw.map((m) => m.rate))), '1.00', '', cpuOf(raw), mainOf(raw)],
      [
        what,
        formatCount(best(drained.map((m) => m.rate))),
        judged ? `${formatRatio(ratio)} (${verdict(ratio, goal)})` : formatRatio(ratio),
        `${paired.map(formatRatio).join(', ')}; median ${formatRatio(median(paired))}`,
        cpuOf(drained),
        mainOf(raw, drained),
      ],
    ];
  };
  return [
    '### Replay and retry-storm drains, beside the fan-out drain',
    '',
    `\`BENCH_WEBHOOK_ONLY=recovery tsx --conditions=herald-source bench/src/webhook-bench.ts\` (also part of \`pnpm bench webhook\`). The same receiver and ${concurrency} requests in flight; ${formatCount(recoveryEvents)} deliveries to the one endpoint. A replay and a retry storm send out of the outbox's stored rows; the fan-out drain, measured in the same rounds, sends what its fan-out holds (each delivery written once, as its attempt settles): the path the goal names as the one to match. The signed send (the webhook transport's signature and \`HttpSender\` in the raw loop's place, no engine, no outbox) says what sending itself costs; the rest of a drain's CPU is the engine's and the outbox's. Each rate is the best of ${rounds} rounds; each round's ratio is its drain against the raw loop run just before it. A drain is bound by its main thread (busy nearly all of it), so that thread's CPU per delivery (from /proc, in 10 ms steps) says where it stands with less of the machine's noise than the rate; the raw loop's main-thread CPU per request over it is the ratio the drain would reach if that thread alone set its pace. CPU figures are the least of the rounds.`,
    '',
    markdownTable(
      ['what', 'deliveries/s', `ratio to raw (goal ${formatGoal(goal)})`, "each round's ratio", 'CPU of the sending process per delivery', 'of it, its main thread'],
      [
        ...rows(`signed send: Herald's signature and \`HttpSender\` in the same loops, no engine, no outbox (what the drains build on; the goal is theirs)`, runs.signed, false),
        ...rows(`fan-out: ${formatCount(recoveryEvents)} events published while no node sends, from a node's start to the last receipt (the path the goal compares with)`, runs.fanOut),
        ...rows(`replay: \`POST /v1/subscriptions/:id/replay\` of ${formatCount(recoveryEvents)} delivered events on a running node, to the last receipt`, runs.replay),
        ...rows(`retry storm: ${formatCount(recoveryEvents)} due retries after a 503 outage, from a node's start to the last receipt`, runs.retry),
      ],
    ),
    '',
  ];
}

async function main(): Promise<void> {
  const receiver = await startReceiver();
  try {
    progress(`warming up`);
    if (only === 'recovery') {
      await rawLoop(receiver, 2_000);
      await replayDrain(receiver, 2_000);
      console.log((await recovery(receiver)).join('\n'));
      return;
    }
    await rawLoop(receiver, 2_000);
    await outboxDrain(receiver, 2_000);

    const raw: Measured[] = [];
    const drained: Measured[] = [];
    for (let round = 1; round <= rounds; round++) {
      raw.push(await rawLoop(receiver, drainEvents));
      drained.push(await outboxDrain(receiver, drainEvents));
      progress(`round ${round}/${rounds}: raw undici ${formatCount((raw.at(-1) as Measured).rate)}/s, outbox ${formatCount((drained.at(-1) as Measured).rate)}/s`);
    }
    const live = await endToEnd(receiver, drainEvents);
    progress(`publishing while delivering: ${formatCount(live)}/s`);
    const latencies = await latency(receiver);
    progress(`latency p50 ${percentile(latencies, 50).toFixed(2)} ms`);
    const memory = await memoryRun(receiver);

    const rawRate = best(raw.map((m) => m.rate));
    const drainedRate = best(drained.map((m) => m.rate));
    const ratio = drainedRate / rawRate;
    // Each drain against the raw loop run just before it: less moved by the machine's drift than the best of each.
    const paired = roundRatios({ rounds: drained.map((m) => m.rate) }, { rounds: raw.map((m) => m.rate) });
    const cpuOf = (runs: Measured[]) => Math.min(...runs.map((m) => m.cpu));
    const lines = [
      '## Webhooks',
      '',
      `\`tsx --conditions=herald-source bench/src/webhook-bench.ts\` (part of \`pnpm bench\`). One subscription, ${concurrency} requests in flight, a \`node:http\` receiver in its own process answering 200 at once; Herald on a SQLite file with the default \`synchronous=FULL\` (appends are fsynced; the outbox's own commits are not waited to disk, since losing one to a power failure only sends its deliveries again). Each rate is the best of ${rounds} rounds; ratios come from the same run.`,
      '',
      markdownTable(
        ['what', 'deliveries/s', `ratio to raw (goal ${formatGoal(goal)})`, 'CPU of the sending process per delivery'],
        [
          [`raw undici \`Pool\` POST loop, ${concurrency} at a time, no signing, no storage`, formatCount(rawRate), '1.00', `${cpuOf(raw).toFixed(0)} µs`],
          [
            `@herald/webhook draining the outbox: fan-out under a lease, Standard Webhooks signature, POST, delivery and attempt recorded (${formatCount(drainEvents)} events)`,
            formatCount(drainedRate),
            `${formatRatio(ratio)} (${verdict(ratio, goal)})`,
            `${cpuOf(drained).toFixed(0)} µs`,
          ],
          [`@herald/webhook while the same node publishes the events (append to the log included)`, formatCount(live), formatRatio(live / rawRate), ''],
        ],
      ),
      '',
      `Each round's own ratio (its drain against the raw loop run just before it): ${paired.map(formatRatio).join(', ')}; median ${formatRatio(median(paired))}.`,
      '',
      `Publish-to-receipt latency at ${latencyRate} events/s for ${latencySeconds} s (${formatCount(latencies.length)} events; from calling \`publish\` to the receiver reading the request, one clock for both processes):`,
      '',
      markdownTable(
        ['p50', 'p90', 'p99', 'max'],
        [[50, 90, 99, 100].map((p) => `${percentile(latencies, p).toFixed(2)} ms`)],
      ),
      '',
      `Memory of the Herald process while delivering ${formatCount(memory.samples.at(-1)?.deliveries ?? 0)} events (published as they are delivered, at most 5,000 ahead; after a full GC):`,
      '',
      markdownTable(
        ['deliveries', 'heap used', 'RSS'],
        memory.samples.map((s) => [formatCount(s.deliveries), `${s.heapMb.toFixed(1)} MB`, `${s.rssMb.toFixed(1)} MB`]),
      ),
      ...(memory.stoppedEarly ? ['', `The memory run stopped at the ${memoryBudgetMs / 1000} s budget, before ${formatCount(memoryDeliveries)} deliveries.`] : []),
      '',
      ...(await recovery(receiver)),
    ];
    console.log(lines.join('\n'));
  } finally {
    await receiver.kill();
  }
}

if (process.argv[2] === 'receiver') await runReceiver();
else await main();
