/**
 * @herald/core in process: publishing to the SQLite log against a bare better-sqlite3 insert loop,
 * and the cost of matching 10,000 subscriptions against 10. Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/core-bench.ts`.
 */
import {
  defineEventType,
  EventBus,
  EventCatalog,
  type HeraldEvent,
  memoryBroker,
  type SqliteStoreOptions,
  SubscriptionRegistry,
  sqliteStore,
} from '@herald/core';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { type AlternateOptions, alternate, envNumber, progress, type Rates, type Workload } from './lib/rounds.js';
import { formatCount, formatDuration, formatGoal, formatRatio, type Goal, roundRatios, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const schedule: AlternateOptions = {
  rounds: envNumber('BENCH_ROUNDS', 3),
  slices: envNumber('BENCH_CORE_SLICES', 4),
  sliceMilliseconds: envNumber('BENCH_CORE_SLICE_MS', 300),
};
/** How long each variant runs before anything is measured, so the JIT has compiled its hot paths. */
const warmupMilliseconds = envNumber('BENCH_CORE_WARMUP_MS', 1500);
const batchSize = 64;
const publishers = 64;
/** The matcher's difference is small beside the machine's noise: more rounds. */
const matcherSchedule: AlternateOptions = { ...schedule, rounds: envNumber('BENCH_MATCHER_ROUNDS', 5) };
const publishGoal: Goal = { atLeast: 0.5 };
const matcherGoal: Goal = { atMost: 1.2 };

const eventType = defineEventType('bench.event', z.object({ payload: z.string() }));
/** `{"payload":"xxx…"}`: 1,024 bytes of JSON. */
const data = { payload: 'x'.repeat(1024 - '{"payload":""}'.length) };
const dataJson = JSON.stringify(data);

/** A workload with the database it keeps open between its turns. */
interface OpenWorkload {
  run: Workload;
  close(): Promise<void>;
}

/** Bare better-sqlite3 inserts into Herald's own `herald_events` table (made by its migrations), WAL, synchronous=FULL. */
async function bareLoop(perTransaction: number): Promise<OpenWorkload> {
  const dir = tempDirectory();
  const path = dir.file('bare.db');
  const schema = sqliteStore({ path });
  await schema.init();
  await schema.close();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  const insert = db.prepare(
    'insert into herald_events (id, type, source, subject, time, datacontenttype, data, consumer) values (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  let written = 0;
  const insertOne = () => {
    insert.run(`evt_${written++}`, eventType.name, '/herald', null, new Date().toISOString(), 'application/json', dataJson, null);
  };
  const insertMany = db.transaction((count: number) => {
    for (let i = 0; i < count; i++) insertOne();
  });
  return {
    async run(milliseconds) {
      const before = written;
      const deadline = performance.now() + milliseconds;
      while (performance.now() < deadline) {
        if (perTransaction === 1) insertOne();
        else insertMany(perTransaction);
      }
      return written - before;
    },
    async close() {
      db.close();
      dir.remove();
    },
  };
}

interface HeraldWorkloadOptions {
  publishers: number;
  /** @default 'full', the store's default */
  synchronous?: SqliteStoreOptions['synchronous'];
  /** @default a catalog with one type */
  catalog?: EventCatalog;
  /** Subscriptions to create through a SubscriptionRegistry, matched by a listener for every event. @default none */
  subscriptions?: number;
}

/** `EventBus.publish` into a SQLite file from `publishers` concurrent loops, with one listener on the bus. */
async function heraldPublishing(options: HeraldWorkloadOptions): Promise<OpenWorkload> {
  const dir = tempDirectory();
  const store = sqliteStore({ path: dir.file('herald.db'), synchronous: options.synchronous ?? 'full' });
  const broker = memoryBroker();
  const catalog = options.catalog ?? new EventCatalog([eventType]);
  const bus = new EventBus({ store, broker, catalog });
  await store.init();
  await bus.start();
  let registry: SubscriptionRegistry | undefined;
  let match: (events: readonly HeraldEvent[]) => void = () => {};
  if (options.subscriptions !== undefined) {
    const subscriptions = new SubscriptionRegistry(store, broker);
    registry = subscriptions;
    await subscriptions.start();
    for (const input of subscriptionInputs(options.subscriptions)) await subscriptions.create(input);
    match = (events) => {
      for (const event of events) matched += subscriptions.match(event, transportName).length;
    };
  }
  const types = catalog.list().map((info) => info.name);
  let delivered = 0;
  bus.onEvents((events) => {
    delivered += events.length;
    match(events);
  });
  let published = 0;
  let next = 0;
  return {
    async run(milliseconds) {
      const before = published;
      const deadline = performance.now() + milliseconds;
      await Promise.all(
        Array.from({ length: options.publishers }, async () => {
          while (performance.now() < deadline) {
            await bus.publish({ type: types[next++ % types.length] as string, data });
            published++;
          }
        }),
      );
      return published - before;
    },
    async close() {
      await bus.stop();
      await registry?.stop();
      await broker.close();
      await store.close();
      dir.remove();
      if (delivered !== published) throw new Error(`The listener saw ${delivered} of ${published} published events`);
    },
  };
}

/** Namespaces × names per namespace = the 1,000 event types of the matcher benchmark. */
const namespaces = 50;
const namesPerNamespace = 20;
const matcherTypes = Array.from(
  { length: namespaces * namesPerNamespace },
  (_, i) => `ns${Math.floor(i / namesPerNamespace)}.name${i % namesPerNamespace}`,
);
const transportName = 'memory';
let matched = 0;

/**
 * `count` subscriptions over the 1,000 types: nineteen in twenty name one type exactly, one in
 * twenty a whole namespace (`ns7.*`), each for a consumer of its own.
 */
function subscriptionInputs(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    consumer: `consumer-${i}`,
    transport: transportName,
    types: [i % 20 === 19 ? `ns${i % namespaces}.*` : (matcherTypes[(i * 7) % matcherTypes.length] as string)],
    status: 'active' as const,
    config: {},
    cursor: 0,
  }));
}

function matcherCatalog(): EventCatalog {
  return new EventCatalog(matcherTypes.map((name) => defineEventType(name, z.object({ payload: z.string() }))));
}

/** The cost of one `registry.match` alone, averaged over every type many times. */
async function matchCost(subscriptions: number): Promise<{ milliseconds: number; perEvent: number }> {
  const dir = tempDirectory();
  const store = sqliteStore({ path: dir.file('registry.db'), synchronous: 'normal' });
  const broker = memoryBroker();
  try {
    await store.init();
    const registry = new SubscriptionRegistry(store, broker);
    await registry.start();
    for (const input of subscriptionInputs(subscriptions)) await registry.create(input);
    const events = matcherTypes.map((type) => ({ type }));
    let found = 0;
    const passes = 200;
    const started = performance.now();
    for (let pass = 0; pass < passes; pass++) for (const event of events) found += registry.match(event, transportName).length;
    const milliseconds = (performance.now() - started) / (passes * events.length);
    await registry.stop();
    return { milliseconds, perEvent: found / (passes * events.length) };
  } finally {
    await broker.close();
    await store.close();
    dir.remove();
  }
}

/** Opens the workloads, warms each up with one turn, alternates them, and closes them. */
async function measure<K extends string>(open: Record<K, () => Promise<OpenWorkload>>, options = schedule): Promise<Record<K, Rates>> {
  const names = Object.keys(open) as K[];
  const opened = {} as Record<K, OpenWorkload>;
  try {
    for (const name of names) opened[name] = await open[name]();
    for (const name of names) await opened[name].run(warmupMilliseconds);
    return await alternate(options, Object.fromEntries(names.map((name) => [name, opened[name].run])) as Record<K, Workload>);
  } finally {
    for (const name of names) await opened[name]?.close();
  }
}

const perRound = (rates: Rates) => rates.rounds.map(formatCount).join(', ');
const cpuPerEvent = (rates: Rates) => rates.cpu.total.toFixed(1);
const ratioRow = (label: string, subject: Rates, baseline: Rates, goal?: Goal) => {
  const ratio = subject.total / baseline.total;
  return [
    label,
    formatRatio(ratio),
    roundRatios(subject, baseline).map(formatRatio).join(', '),
    goal ? formatGoal(goal) : '',
    goal ? verdict(ratio, goal) : '',
  ];
};
const seconds = (schedule.slices * schedule.sliceMilliseconds) / 1000;
const how = (options: AlternateOptions) => `Each variant first runs ${warmupMilliseconds / 1000} s unmeasured to warm up; then ${options.rounds} rounds; in each, every variant gets ${options.slices} turns of ${options.sliceMilliseconds} ms
(${seconds} s), the turns alternating, so that all variants see the same drift in the shared machine's load and disk latency`;

async function main(): Promise<void> {
  const note = measuredWith('pnpm bench core');
  progress(`core: publishing; ${schedule.rounds} rounds × ${schedule.slices} turns × ${schedule.sliceMilliseconds} ms per variant`);
  const publish = await measure({
    'bare loop, 1 row per transaction': () => bareLoop(1),
    [`bare loop, ${batchSize} rows per transaction`]: () => bareLoop(batchSize),
    'Herald, 1 publisher': () => heraldPublishing({ publishers: 1 }),
    [`Herald, ${publishers} publishers`]: () => heraldPublishing({ publishers }),
  });
  const single = publish['bare loop, 1 row per transaction'] as Rates;
  const batched = publish[`bare loop, ${batchSize} rows per transaction`] as Rates;
  const one = publish['Herald, 1 publisher'] as Rates;
  const many = publish[`Herald, ${publishers} publishers`] as Rates;

  progress('core: matcher');
  const matcher = await measure({
    '10 subscriptions': () => heraldPublishing({ publishers, synchronous: 'normal', catalog: matcherCatalog(), subscriptions: 10 }),
    '10,000 subscriptions': () => heraldPublishing({ publishers, synchronous: 'normal', catalog: matcherCatalog(), subscriptions: 10_000 }),
  }, matcherSchedule);
  const few = matcher['10 subscriptions'];
  const lots = matcher['10,000 subscriptions'];
  if (matched === 0) throw new Error('No event matched a subscription: the matcher benchmark measured nothing');
  const matchFew = await matchCost(10);
  const matchLots = await matchCost(10_000);
  const costRatio = lots.cpu.total / few.cpu.total;
  // Wall time per event is 1 / rate, so its ratio is the rates' ratio the other way round.
  const wallRatio = few.total / lots.total;

  console.log(`## Core: publishing to the SQLite log

${note}

In process: \`EventBus.publish\` (validation against a one-type catalog, \`sqliteStore\` on a temp file in WAL mode
with the default \`synchronous=FULL\`, \`memoryBroker\`, one listener on the bus) with 1 KiB events, against bare
better-sqlite3 inserts into the same table (made by Herald's migrations) with the same settings. ${how(schedule)}. "CPU µs/event" is this process's CPU time (user + system) per event.

${markdownTable(
  ['variant', 'events/s', 'per round', 'CPU µs/event'],
  Object.entries(publish).map(([name, rates]) => [name, formatCount(rates.total), perRound(rates), cpuPerEvent(rates)]),
)}

${markdownTable(
  ['ratio', 'value', 'per round', 'goal', ''],
  [
    ratioRow(`Herald, ${publishers} publishers ÷ bare loop, ${batchSize} rows per transaction`, many, batched, publishGoal),
    ratioRow('Herald, 1 publisher ÷ bare loop, 1 row per transaction', one, single),
    ratioRow(`Herald, ${publishers} publishers ÷ bare loop, 1 row per transaction`, many, single),
  ],
)}

## Core: the matcher

${note}

Publishing with ${publishers} publishers while a listener on the bus calls \`registry.match(event, '${transportName}')\` for
every event, with 10 and with 10,000 subscriptions made through \`SubscriptionRegistry\` over 1,000 types
(${namespaces} namespaces × ${namesPerNamespace} names; one subscription in twenty is a \`ns.*\` pattern, the rest exact names,
each for its own consumer). The events cycle through all 1,000 types. The store runs with \`synchronous=NORMAL\`
here, so that the disk's fsync does not hide the matcher's cost. ${how(matcherSchedule)}.
The cost compared is the process's CPU time (user + system) per event, which the machine's other load
disturbs far less than the rate; the rate's ratio (wall time per event) is shown too.
"One match alone" times \`registry.match\` by itself, over every type 200 times.

${markdownTable(
  ['subscriptions', 'events/s', 'per round', 'CPU µs/event', 'per round', 'one match alone', 'matches per event'],
  [
    ['10', formatCount(few.total), perRound(few), cpuPerEvent(few), few.cpu.rounds.map((v) => v.toFixed(1)).join(', '), formatDuration(matchFew.milliseconds), matchFew.perEvent.toFixed(2)],
    ['10,000', formatCount(lots.total), perRound(lots), cpuPerEvent(lots), lots.cpu.rounds.map((v) => v.toFixed(1)).join(', '), formatDuration(matchLots.milliseconds), matchLots.perEvent.toFixed(2)],
  ],
)}

${markdownTable(
  ['ratio', 'value', 'per round', 'goal', ''],
  [
    [
      'CPU time per event, 10,000 subscriptions ÷ 10',
      formatRatio(costRatio),
      roundRatios(lots.cpu, few.cpu).map(formatRatio).join(', '),
      formatGoal(matcherGoal),
      verdict(costRatio, matcherGoal),
    ],
    ['wall time per event, 10,000 subscriptions ÷ 10', formatRatio(wallRatio), roundRatios(few, lots).map(formatRatio).join(', '), '', ''],
  ],
)}
`);
}

await main();
