/**
 * Payload filters (issue 20): publishing while 10,000 subscriptions, each with a two-clause filter, are
 * matched against every event, against the same subscriptions without filters. Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/filters-bench.ts`.
 */
import { defineEventType, EventBus, EventCatalog, type EventFilter, type HeraldEvent, memoryBroker, SubscriptionRegistry, sqliteStore } from '@herald/core';
import { z } from 'zod';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { type AlternateOptions, alternate, envNumber, progress, type Rates } from './lib/rounds.js';
import { formatCount, formatDuration, formatGoal, formatRatio, type Goal, roundRatios, verdict } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const schedule: AlternateOptions = {
  rounds: envNumber('BENCH_FILTERS_ROUNDS', 5),
  slices: envNumber('BENCH_FILTERS_SLICES', 4),
  sliceMilliseconds: envNumber('BENCH_FILTERS_SLICE_MS', 300),
};
const warmupMilliseconds = envNumber('BENCH_FILTERS_WARMUP_MS', 1500);
const subscriptions = 10_000;
const publishers = 64;
const goal: Goal = { atMost: 2 };
const transportName = 'memory';
const regions = ['eu', 'us', 'apac', 'latam'] as const;

const eventType = defineEventType('order.created', z.object({ total: z.number(), region: z.string(), payload: z.string() }));
const payload = 'x'.repeat(200);

/** Subscription `i`'s two clauses: a total of at least `i % 100`, and one region of four. */
function filterOf(i: number): EventFilter {
  return { 'data.total': { $gte: i % 100 }, 'data.region': regions[i % regions.length] as string };
}

/** Event `n`: totals cycle through 0..99, regions through the four. */
function dataOf(n: number) {
  return { total: n % 100, region: regions[n % regions.length] as string, payload };
}

interface OpenWorkload {
  run(milliseconds: number): Promise<number>;
  /** Subscriptions matched so far, over all events. */
  matched(): number;
  close(): Promise<void>;
}

/** Publishes from `publishers` loops into SQLite while a listener on the bus matches every event against 10,000 subscriptions. */
async function publishing(filtered: boolean): Promise<OpenWorkload> {
  const dir = tempDirectory();
  const store = sqliteStore({ path: dir.file('herald.db'), synchronous: 'normal' });
  const broker = memoryBroker();
  const bus = new EventBus({ store, broker, catalog: new EventCatalog([eventType]) });
  await store.init();
  await bus.start();
  const registry = new SubscriptionRegistry(store, broker);
  await registry.start();
  for (let i = 0; i < subscriptions; i++) {
    await registry.create({
      consumer: `consumer-${i}`,
      transport: transportName,
      types: [eventType.name],
      status: 'active',
      config: {},
      cursor: 0,
      ...(filtered ? { filter: filterOf(i) } : {}),
    });
  }
  let matched = 0;
  let delivered = 0;
  bus.onEvents((events) => {
    delivered += events.length;
    for (const event of events) matched += registry.match(event, transportName).length;
  });
  let published = 0;
  let next = 0;
  return {
    async run(milliseconds) {
      const before = published;
      const deadline = performance.now() + milliseconds;
      await Promise.all(
        Array.from({ length: publishers }, async () => {
          while (performance.now() < deadline) {
            await bus.publish({ type: eventType.name, data: dataOf(next++) });
            published++;
          }
        }),
      );
      return published - before;
    },
    matched: () => matched,
    async close() {
      await bus.stop();
      await registry.stop();
      await broker.close();
      await store.close();
      dir.remove();
      if (delivered !== published) throw new Error(`The listener saw ${delivered} of ${published} published events`);
    },
  };
}

/** How many of the 10,000 filters event `n` passes, worked out without the filter code: the check on the benchmark's own result. */
function expectedMatches(n: number): number {
  let count = 0;
  const { total, region } = dataOf(n);
  for (let i = 0; i < subscriptions; i++) if (total >= i % 100 && regions[i % regions.length] === region) count += 1;
  return count;
}

/** One `registry.match` alone, over 400 events, many times: the matcher and the filters without the log. */
async function matchAlone(filtered: boolean): Promise<number> {
  const dir = tempDirectory();
  const store = sqliteStore({ path: dir.file('alone.db'), synchronous: 'normal' });
  const broker = memoryBroker();
  try {
    await store.init();
    const registry = new SubscriptionRegistry(store, broker);
    await registry.start();
    for (let i = 0; i < subscriptions; i++) {
      await registry.create({ consumer: `consumer-${i}`, transport: transportName, types: [eventType.name], status: 'active', config: {}, cursor: 0, ...(filtered ? { filter: filterOf(i) } : {}) });
    }
    const events = Array.from({ length: 400 }, (_, n) => ({ type: eventType.name, data: dataOf(n) }) as unknown as HeraldEvent);
    for (const [n, event] of events.entries()) {
      const found = registry.match(event, transportName).length;
      const expected = filtered ? expectedMatches(n) : subscriptions;
      if (found !== expected) throw new Error(`event ${n} matched ${found} subscriptions, not ${expected}`);
    }
    const passes = 10;
    const started = performance.now();
    for (let pass = 0; pass < passes; pass++) for (const event of events) registry.match(event, transportName);
    await registry.stop();
    return (performance.now() - started) / (passes * events.length);
  } finally {
    await broker.close();
    await store.close();
    dir.remove();
  }
}

async function main(): Promise<void> {
  const note = measuredWith('pnpm bench filters');
  progress(`filters: ${subscriptions} subscriptions; ${schedule.rounds} rounds × ${schedule.slices} turns × ${schedule.sliceMilliseconds} ms per variant`);
  const filtered = await publishing(true);
  const plain = await publishing(false);
  let rates: Record<'plain' | 'filtered', Rates>;
  try {
    await filtered.run(warmupMilliseconds);
    await plain.run(warmupMilliseconds);
    rates = await alternate(schedule, { plain: (ms) => plain.run(ms), filtered: (ms) => filtered.run(ms) });
  } finally {
    await plain.close();
    await filtered.close();
  }
  if (filtered.matched() === 0 || filtered.matched() >= plain.matched()) throw new Error('The filters let no event through, or every one: the benchmark measured nothing');
  progress('filters: one match alone');
  const alonePlain = await matchAlone(false);
  const aloneFiltered = await matchAlone(true);
  const ratio = rates.filtered.cpu.total / rates.plain.cpu.total;
  const cpuRounds = (r: Rates) => r.cpu.rounds.map((v) => v.toFixed(1)).join(', ');

  console.log(`## Payload filters

${note}

Publishing 300-byte \`order.created\` events from ${publishers} publishers into SQLite (\`synchronous=NORMAL\`, so the disk's
fsync does not hide the cost) while a listener on the bus calls \`registry.match(event, '${transportName}')\` for every
event, against ${formatCount(subscriptions)} subscriptions to \`order.created\`, each for its own consumer: without filters,
and with a two-clause filter each (\`{"data.total": {"$gte": i % 100}, "data.region": <one of 4>}\`). Every event is
matched against all ${formatCount(subscriptions)} of them, so every filter runs for every event: the worst case. Each variant
first runs ${warmupMilliseconds / 1000} s unmeasured; then ${schedule.rounds} rounds of ${schedule.slices} alternating turns of
${schedule.sliceMilliseconds} ms each. "CPU µs/event" is this process's CPU time per published event. "One match alone" times
\`registry.match\` by itself (no log), after checking its results against counts worked out without the filter code.

${markdownTable(
  ['subscriptions', 'events/s', 'CPU µs/event', 'per round', 'one match alone', 'matches per event'],
  [
    ['10,000 without filters', formatCount(rates.plain.total), rates.plain.cpu.total.toFixed(1), cpuRounds(rates.plain), formatDuration(alonePlain), formatCount(subscriptions)],
    ['10,000 with two-clause filters', formatCount(rates.filtered.total), rates.filtered.cpu.total.toFixed(1), cpuRounds(rates.filtered), formatDuration(aloneFiltered), formatCount(avgExpected())],
  ],
)}

${markdownTable(
  ['ratio', 'value', 'per round', 'goal', ''],
  [
    ['CPU time per event, with filters ÷ without', formatRatio(ratio), roundRatios(rates.filtered.cpu, rates.plain.cpu).map(formatRatio).join(', '), formatGoal(goal), verdict(ratio, goal)],
    ['one match alone, with filters ÷ without', formatRatio(aloneFiltered / alonePlain), '', '', ''],
  ],
)}
`);
}

/** The mean number of subscriptions an event's filters let through, over the 400 events the totals and regions cycle through. */
function avgExpected(): number {
  let sum = 0;
  for (let n = 0; n < 400; n++) sum += expectedMatches(n);
  return sum / 400;
}

await main();
