/**
 * @herald/core in process: publishing to the SQLite log against a bare better-sqlite3 insert loop,
 * and the cost of matching 10,000 subscriptions against 10. Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/core-bench.ts`.
 */
import { defineEventType, EventBus, EventCatalog, type HeraldEvent, memoryBroker, SubscriptionRegistry, sqliteStore } from '@herald/core';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { markdownTable } from './lib/markdown.js';
import { envNumber, interleaved, progress } from './lib/rounds.js';
import { best, formatCount, formatDuration, formatGoal, formatRatio, type Goal, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const rounds = envNumber('BENCH_ROUNDS', 3);
/** How long each publishing run lasts. */
const runMilliseconds = envNumber('BENCH_CORE_RUN_MS', 1500);
const batchSize = 64;
const publishGoal: Goal = { atLeast: 0.5 };
const matcherGoal: Goal = { atMost: 1.2 };

const eventType = defineEventType('bench.event', z.object({ payload: z.string() }));
/** `{"payload":"xxx…"}`: 1,024 bytes of JSON. */
const data = { payload: 'x'.repeat(1024 - '{"payload":""}'.length) };
const dataJson = JSON.stringify(data);

/** Herald's own schema, made by its migrations, so the bare loop writes to exactly the same table and indexes. */
async function heraldSchemaFile(path: string): Promise<void> {
  const store = sqliteStore({ path });
  await store.init();
  await store.close();
}

/** Bare better-sqlite3 inserts into `herald_events`, WAL, synchronous=FULL; `perTransaction` rows per commit. */
async function sqliteLoop(perTransaction: number): Promise<number> {
  const dir = tempDirectory();
  try {
    await heraldSchemaFile(dir.file('bare.db'));
    const db = new Database(dir.file('bare.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const insert = db.prepare(
      'insert into herald_events (id, type, source, subject, time, datacontenttype, data, consumer) values (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    let written = 0;
    const insertOne = () => {
      insert.run(`evt_${written++}`, 'bench.event', '/herald', null, new Date().toISOString(), 'application/json', dataJson, null);
    };
    const insertMany = db.transaction((count: number) => {
      for (let i = 0; i < count; i++) insertOne();
    });
    const started = performance.now();
    const deadline = started + runMilliseconds;
    while (performance.now() < deadline) {
      if (perTransaction === 1) insertOne();
      else insertMany(perTransaction);
    }
    const seconds = (performance.now() - started) / 1000;
    db.close();
    return written / seconds;
  } finally {
    dir.remove();
  }
}

interface PublishRun {
  publishers: number;
  synchronous?: 'full' | 'normal';
  /** Runs before publishing starts; its listener runs for every event, as a transport's would. */
  prepare?: (parts: { store: ReturnType<typeof sqliteStore>; broker: ReturnType<typeof memoryBroker>; bus: EventBus }) => Promise<{
    types?: readonly string[];
    listener?: (events: readonly HeraldEvent[]) => void;
    cleanup?: () => Promise<void>;
  }>;
}

/** Events/s through EventBus.publish into a SQLite file, from `publishers` concurrent loops. */
async function heraldPublish({ publishers, synchronous = 'full', prepare }: PublishRun, catalog = new EventCatalog([eventType])): Promise<number> {
  const dir = tempDirectory();
  const store = sqliteStore({ path: dir.file('herald.db'), synchronous });
  const broker = memoryBroker();
  const bus = new EventBus({ store, broker, catalog });
  try {
    await store.init();
    await bus.start();
    const prepared = (await prepare?.({ store, broker, bus })) ?? {};
    const types = prepared.types ?? [eventType.name];
    let delivered = 0;
    bus.onEvents((events) => {
      delivered += events.length;
      prepared.listener?.(events);
    });
    let published = 0;
    const started = performance.now();
    const deadline = started + runMilliseconds;
    await Promise.all(
      Array.from({ length: publishers }, async (_, publisher) => {
        for (let at = publisher; performance.now() < deadline; at += publishers) {
          await bus.publish({ type: types[at % types.length] as string, data });
          published++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    await bus.stop();
    await prepared.cleanup?.();
    if (delivered !== published) throw new Error(`The listeners saw ${delivered} of ${published} published events`);
    return published / seconds;
  } finally {
    await broker.close();
    await store.close();
    dir.remove();
  }
}

/** Namespaces × names per namespace = the event types the matcher benchmark publishes. */
const namespaces = 50;
const namesPerNamespace = 20;
const matcherTypes = Array.from({ length: namespaces * namesPerNamespace }, (_, i) => `ns${Math.floor(i / namesPerNamespace)}.name${i % namesPerNamespace}`);
const matcherCatalog = new EventCatalog(matcherTypes.map((name) => defineEventType(name, z.object({ payload: z.string() }))));
const transportName = 'memory';

/**
 * `count` subscriptions over the 1,000 types: nineteen in twenty name one type exactly, one in
 * twenty a whole namespace (`ns7.*`), spread over `count` consumers.
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

let matched = 0;

/** Publishing (64 publishers) while a listener matches every event against `subscriptions` subscriptions. */
function publishWithSubscriptions(subscriptions: number): Promise<number> {
  return heraldPublish(
    {
      publishers: 64,
      // No fsync per commit, so the log's disk wait does not hide the matcher's cost.
      synchronous: 'normal',
      async prepare({ store, broker }) {
        const registry = new SubscriptionRegistry(store, broker);
        await registry.start();
        for (const input of subscriptionInputs(subscriptions)) await registry.create(input);
        return {
          types: matcherTypes,
          listener: (events) => {
            for (const event of events) matched += registry.match(event, transportName).length;
          },
          cleanup: () => registry.stop(),
        };
      },
    },
    matcherCatalog,
  );
}

/** The cost of one `registry.match` alone, in ms, averaged over every type many times. */
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

async function main(): Promise<void> {
  progress(`core: publishing, ${rounds} rounds of ${runMilliseconds} ms per variant`);
  const rate = (name: string, value: number) => `${name}: ${formatCount(value)} events/s`;
  // One short run of each first, so the JIT has warmed up before anything is measured.
  await heraldPublish({ publishers: 64 });
  const publish = await interleaved(
    rounds,
    {
      'bare loop, 1 row per transaction': () => sqliteLoop(1),
      [`bare loop, ${batchSize} rows per transaction`]: () => sqliteLoop(batchSize),
      'Herald, 1 publisher': () => heraldPublish({ publishers: 1 }),
      'Herald, 64 publishers': () => heraldPublish({ publishers: 64 }),
    },
    rate,
  );
  const single = best(publish['bare loop, 1 row per transaction'] as number[]);
  const batched = best(publish[`bare loop, ${batchSize} rows per transaction`] as number[]);
  const one = best(publish['Herald, 1 publisher'] as number[]);
  const many = best(publish['Herald, 64 publishers'] as number[]);

  progress('core: matcher');
  await publishWithSubscriptions(10);
  const matcher = await interleaved(
    rounds,
    { '10 subscriptions': () => publishWithSubscriptions(10), '10,000 subscriptions': () => publishWithSubscriptions(10_000) },
    rate,
  );
  const few = best(matcher['10 subscriptions'] as number[]);
  const lots = best(matcher['10,000 subscriptions'] as number[]);
  const matcherRatio = few / lots;
  const matchFew = await matchCost(10);
  const matchLots = await matchCost(10_000);

  const runs = (samples: number[]) => samples.map(formatCount).join(', ');
  const publishRatio = many / batched;
  console.log(`## Core: publishing to the SQLite log

In process: \`EventBus.publish\` (validation against a one-type catalog, \`sqliteStore\` on a temp file in WAL mode
with the default \`synchronous=FULL\`, \`memoryBroker\`, one listener) with 1 KiB events, against bare better-sqlite3
inserts into the same table with the same settings. Each figure is the best of ${rounds} runs of ${runMilliseconds / 1000} s,
the variants interleaved.

${markdownTable(
  ['variant', 'events/s (best)', 'runs'],
  Object.entries(publish).map(([name, samples]) => [name, formatCount(best(samples)), runs(samples)]),
)}

${markdownTable(
  ['ratio', 'value', 'goal', ''],
  [
    [`Herald, 64 publishers ÷ bare loop, ${batchSize} rows per transaction`, formatRatio(publishRatio), formatGoal(publishGoal), verdict(publishRatio, publishGoal)],
    ['Herald, 1 publisher ÷ bare loop, 1 row per transaction', formatRatio(one / single), '', ''],
    ['Herald, 64 publishers ÷ bare loop, 1 row per transaction', formatRatio(many / single), '', ''],
  ],
)}

## Core: the matcher

Publishing with 64 publishers while a listener on the bus calls \`registry.match(event, '${transportName}')\` for every
event, with 10 and with 10,000 subscriptions made through \`SubscriptionRegistry\` over 1,000 types (${namespaces}
namespaces × ${namesPerNamespace} names; one subscription in twenty is a \`ns.*\` pattern, the rest exact names).
The store runs with \`synchronous=NORMAL\` here so the disk's fsync does not hide the matcher's cost. Best of ${rounds} runs
of ${runMilliseconds / 1000} s each, interleaved.

${markdownTable(
  ['subscriptions', 'events/s (best)', 'runs', 'one match alone', 'matches per event'],
  [
    ['10', formatCount(few), runs(matcher['10 subscriptions'] as number[]), formatDuration(matchFew.milliseconds), matchFew.perEvent.toFixed(2)],
    ['10,000', formatCount(lots), runs(matcher['10,000 subscriptions'] as number[]), formatDuration(matchLots.milliseconds), matchLots.perEvent.toFixed(2)],
  ],
)}

${markdownTable(
  ['ratio', 'value', 'goal', ''],
  [['cost per event, 10,000 subscriptions ÷ 10', formatRatio(matcherRatio), formatGoal(matcherGoal), verdict(matcherRatio, matcherGoal)]],
)}
`);
  if (matched === 0) throw new Error('No event matched a subscription: the matcher benchmark measured nothing');
}

await main();
