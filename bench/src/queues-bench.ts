/**
 * @herald/amqp and @herald/nats: deliveries per second through the durable outbox against a raw client
 * loop with the same number in flight: amqplib publishing persistent messages on a confirm channel, and
 * the `nats` client's JetStream publish with `Nats-Msg-Id`, each awaiting its confirm or PubAck. Against
 * the machine's RabbitMQ (127.0.0.1:5672) and NATS (127.0.0.1:4222). Prints a markdown section. Run
 * alone: `pnpm bench queues`.
 */
import { amqp } from '@herald/amqp';
import type { Transport } from '@herald/core';
import { nats } from '@herald/nats';
import { connect as amqpConnect } from 'amqplib';
import { headers, connect as natsConnect } from 'nats';
import { now } from './lib/client-groups.js';
import { drainNode, pad, publishBatches, until, withSubscription } from './lib/drain-setup.js';
import { markdownTable } from './lib/markdown.js';
import { envNumber, progress } from './lib/rounds.js';
import { best, formatCount, formatGoal, formatRatio, type Goal, median, roundRatios, verdict } from './lib/stats.js';

const inFlight = envNumber('BENCH_QUEUE_IN_FLIGHT', 32);
const events = envNumber('BENCH_QUEUE_EVENTS', 10_000);
const rounds = envNumber('BENCH_ROUNDS', 3);
const brokerUrl = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const natsServer = process.env.BENCH_NATS_SERVER ?? '127.0.0.1:4222';
const goal: Goal = { atLeast: 0.5 };

/** An envelope of the size Herald sends, for the raw loops. */
const envelope = Buffer.from(
  JSON.stringify({ specversion: '1.0', id: 'evt_0', seq: 1, type: 'bench.event', source: '/herald', time: new Date().toISOString(), datacontenttype: 'application/json', data: { n: 0, pad } }),
);
const suffix = `${process.pid}-${Date.now().toString(36)}`;

/** Runs `count` tasks, `inFlight` at a time; resolves with tasks per second. */
async function loop(count: number, task: (n: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await task(next++);
    }),
  );
  return count / ((now() - started) / 1000);
}

// ---------------------------------------------------------------------------------------------
// The destinations: an exchange with a queue bound to it, and a stream, made for this run and removed after.

interface Destination {
  /** The raw loop: `count` publishes, each awaiting its confirm. */
  raw(count: number): Promise<number>;
  /** The subscription config for Herald, and its transport. */
  config: Record<string, unknown>;
  transport(onDelivered: () => void): Transport;
  /** Empties what the last round left. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

async function rabbitmq(): Promise<Destination> {
  const model = await amqpConnect(brokerUrl);
  const admin = await model.createChannel();
  const exchange = `herald-bench.${suffix}`;
  await admin.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
  const { queue } = await admin.assertQueue(`herald-bench.${suffix}`, { durable: false, exclusive: true });
  await admin.bindQueue(queue, exchange, '#');
  const channel = await model.createConfirmChannel();
  return {
    config: { url: brokerUrl, exchange },
    transport: (onDelivered) => amqp({ allowPrivate: true, concurrency: inFlight, onAttempt: (attempt) => attempt.outcome === 'succeeded' && onDelivered() }),
    raw: (count) =>
      loop(
        count,
        (n) =>
          new Promise<void>((resolve, reject) => {
            const properties = { persistent: true, contentType: 'application/cloudevents+json', messageId: `raw_${n}`, type: 'bench.event', timestamp: 0, headers: { 'herald-seq': n } };
            channel.publish(exchange, 'bench.event', envelope, properties, (error) => (error ? reject(error) : resolve()));
          }),
      ),
    reset: async () => {
      await admin.purgeQueue(queue);
    },
    close: async () => {
      await admin.deleteExchange(exchange);
      await model.close();
    },
  };
}

async function jetstream(): Promise<Destination> {
  const connection = await natsConnect({ servers: natsServer });
  const manager = await connection.jetstreamManager();
  const stream = `herald_bench_${suffix.replace(/\W/g, '_')}`;
  const prefix = `herald-bench.${stream}`;
  await manager.streams.add({ name: stream, subjects: [`${prefix}.>`] });
  const js = connection.jetstream();
  let round = 0;
  return {
    config: { servers: natsServer, subject: `${prefix}.{type}` },
    transport: (onDelivered) => nats({ allowPrivate: true, concurrency: inFlight, onAttempt: (attempt) => attempt.outcome === 'succeeded' && onDelivered() }),
    raw: (count) => {
      round += 1;
      return loop(count, async (n) => {
        const meta = headers();
        meta.set('Herald-Seq', String(n));
        await js.publish(`${prefix}.bench.event`, envelope, { msgID: `raw_${round}_${n}`, headers: meta });
      });
    },
    reset: async () => {
      await manager.streams.purge(stream);
    },
    close: async () => {
      await manager.streams.delete(stream);
      await connection.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Herald: `events` published while no node delivers, then a node drains the outbox.

/** Deliveries/s of a node draining `events` from the outbox, from its start to the last confirm. */
function outboxDrain(destination: Destination, name: string): Promise<number> {
  const subscription = { transport: name, types: ['bench.*'], consumer: 'bench', config: destination.config };
  return withSubscription((database) => drainNode(database, [destination.transport(() => {})]), subscription, async (database) => {
    // Published by a Herald without the transport, so that nothing is delivered before the node starts.
    const publisher = drainNode(database, []);
    await publishBatches(publisher, events);
    await publisher.close();

    let delivered = 0;
    const started = now();
    const node = drainNode(database, [destination.transport(() => (delivered += 1))]);
    await until(() => delivered >= events, `${name}: every delivery`);
    const rate = events / ((now() - started) / 1000);
    await node.close();
    return rate;
  });
}

interface Result {
  raw: number[];
  outbox: number[];
}

async function measure(name: string, destination: Destination): Promise<Result> {
  progress(`${name}: warming up`);
  await destination.raw(1_000);
  await destination.reset();
  const result: Result = { raw: [], outbox: [] };
  for (let round = 1; round <= rounds; round++) {
    result.raw.push(await destination.raw(events));
    await destination.reset();
    result.outbox.push(await outboxDrain(destination, name));
    await destination.reset();
    progress(`${name} round ${round}/${rounds}: raw ${formatCount(result.raw.at(-1) as number)}/s, outbox ${formatCount(result.outbox.at(-1) as number)}/s`);
  }
  return result;
}

function rows(label: string, raw: string, outbox: string, result: Result): string[][] {
  const ratio = best(result.outbox) / best(result.raw);
  // Each drain against the raw loop run just before it.
  const paired = roundRatios({ rounds: result.outbox }, { rounds: result.raw });
  return [
    [raw, formatCount(best(result.raw)), '1.00', ''],
    [outbox, formatCount(best(result.outbox)), `${formatRatio(ratio)} (${verdict(ratio, goal)})`, `${paired.map(formatRatio).join(', ')} (median ${formatRatio(median(paired))})`],
  ].map((row) => [label, ...row]);
}

async function main(): Promise<void> {
  const rabbit = await rabbitmq();
  let amqpResult: Result;
  try {
    amqpResult = await measure('amqp', rabbit);
  } finally {
    await rabbit.close();
  }
  const stream = await jetstream();
  let natsResult: Result;
  try {
    natsResult = await measure('nats', stream);
  } finally {
    await stream.close();
  }
  const lines = [
    '## Queues: AMQP and NATS JetStream',
    '',
    `\`pnpm bench queues\` (\`bench/src/queues-bench.ts\`). One subscription, ${inFlight} publishes in flight, against the machine's RabbitMQ (a topic exchange with one queue bound, purged between runs) and NATS JetStream (a file stream). The raw loops publish the same envelope with the same properties and wait for each confirm (amqplib's confirm channel) or PubAck (the \`nats\` client), nothing else. The outbox runs drain ${formatCount(events)} events published before the node starts: fan-out under a lease, the publish, the delivery and attempt recorded in SQLite. Each rate is the best of ${rounds} rounds; ratios come from the same run.`,
    '',
    markdownTable(
      ['broker', 'what', 'deliveries/s', `ratio to raw (goal ${formatGoal(goal)})`, "each round's ratio"],
      [
        ...rows('RabbitMQ', `raw amqplib confirm-publish loop, ${inFlight} at a time`, '@herald/amqp draining the outbox', amqpResult),
        ...rows('NATS', `raw JetStream publish loop, ${inFlight} at a time`, '@herald/nats draining the outbox', natsResult),
      ],
    ),
    '',
  ];
  console.log(lines.join('\n'));
}

await main();
