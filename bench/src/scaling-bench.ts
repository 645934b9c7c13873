/**
 * Beyond one machine: publishing into the PostgreSQL log against the SQLite log (in process, through
 * the EventBus), and WebSocket fan-out with the clients spread over two nodes against one node (nodes
 * are child processes on PostgreSQL and Redis). Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/scaling-bench.ts`.
 * Needs the machine's PostgreSQL (`BENCH_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/test,
 * a database in which it may create and drop databases) and Redis (`BENCH_REDIS_URL`, default redis://127.0.0.1:6379).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { defineEventType, EventBus, EventCatalog, memoryBroker, postgresStore, type Store, sqliteStore } from '@herald/core';
import { redisBroker } from '@herald/redis';
import { createHerald } from '@herald/server';
import { websocket } from '@herald/websocket';
import autocannon from 'autocannon';
import pg from 'pg';
import WebSocket from 'ws';
import { z } from 'zod';
import { limitCpu } from './lib/cpu-limit.js';
import { markdownTable } from './lib/markdown.js';
import { procCpuSeconds } from './lib/proc-cpu.js';
import { type AlternateOptions, alternate, envNumber, progress, type Workload } from './lib/rounds.js';
import { formatCount, formatRatio, roundRatios } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const postgresAdminUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** `BENCH_NODE_CPU`: the cores each node may use (0.5: half a core, a cgroup's quota), as under a container's CPU limit; unset: no limit. */
const nodeCores = envNumber('BENCH_NODE_CPU', 0);
const eventType = defineEventType('bench.event', z.object({ payload: z.string() }));
/** 1,024 bytes of JSON, as in the core benchmark. */
const data = { payload: 'x'.repeat(1024 - '{"payload":""}'.length) };

// ---------------------------------------------------------------------------------------------
// A node: this same file, started with `--node`, serving the WebSocket transport.

if (process.argv.includes('--node')) {
  const env = process.env;
  const database = env.BENCH_NODE_DATABASE as string;
  const herald = createHerald({
    // A SQLite file is one node alone, with the memory broker; PostgreSQL nodes share the log and ring one another over Redis.
    store: database.startsWith('postgres')
      ? postgresStore({ url: database, maxConnections: Number(env.BENCH_NODE_POOL ?? 4) })
      : sqliteStore({ path: database }),
    broker: env.BENCH_NODE_PREFIX ? redisBroker({ url: redisUrl, prefix: env.BENCH_NODE_PREFIX }) : memoryBroker(),
    transports: [websocket({ maxBufferedAmount: 64 * 1024 * 1024 })],
    eventTypes: [eventType],
    adminKey: env.BENCH_NODE_ADMIN_KEY as string,
    logLevel: 'warn',
    env: {},
  });
  const { port } = await herald.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(`listening ${port}\n`);
} else {
  await main();
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL databases of the benchmark's own.

async function postgresAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresAdminUrl });
  await client.connect().catch((error: Error) => {
    throw new Error(`PostgreSQL is not reachable at ${postgresAdminUrl}: ${error.message}`);
  });
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `herald_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  await postgresAdmin((client) => client.query(`create database ${name}`));
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return { url: url.href, drop: () => postgresAdmin(async (client) => void (await client.query(`drop database if exists ${name} with (force)`))) };
}

/** A subject's rate against its baseline's, round by round, as a table cell. */
function ratiosPerRound(subject: { rounds: number[] }, baseline: { rounds: number[] }): string {
  return roundRatios(subject, baseline).map(formatRatio).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Publish throughput: EventBus.publish from 64 concurrent loops, as in the core benchmark.

interface OpenWorkload {
  run: Workload;
  close(): Promise<void>;
}

/** `publishers` loops publishing through one EventBus per store; several stores on one database are several nodes. */
async function publishing(stores: Store[], publishers: number, cleanup: () => Promise<void> | void): Promise<OpenWorkload> {
  const buses = await Promise.all(
    stores.map(async (store) => {
      await store.init();
      const bus = new EventBus({ store, broker: memoryBroker(), catalog: new EventCatalog([eventType]) });
      await bus.start();
      return bus;
    }),
  );
  let published = 0;
  return {
    async run(milliseconds) {
      const before = published;
      const deadline = performance.now() + milliseconds;
      await Promise.all(
        Array.from({ length: publishers }, async (_, loop) => {
          const bus = buses[loop % buses.length] as EventBus;
          while (performance.now() < deadline) {
            await bus.publish({ type: eventType.name, data });
            published++;
          }
        }),
      );
      return published - before;
    },
    async close() {
      for (const bus of buses) await bus.stop();
      for (const store of stores) await store.close();
      await cleanup();
    },
  };
}

async function publishThroughput(): Promise<string> {
  const publishers = 64;
  const schedule: AlternateOptions = {
    rounds: envNumber('BENCH_ROUNDS', 3),
    slices: envNumber('BENCH_SCALING_SLICES', 4),
    sliceMilliseconds: envNumber('BENCH_SCALING_SLICE_MS', 400),
  };
  const dir = tempDirectory();
  const [one, two] = await Promise.all([freshDatabase(), freshDatabase()]);
  const workloads = {
    sqlite: await publishing([sqliteStore({ path: dir.file('herald.db') })], publishers, () => dir.remove()),
    postgres: await publishing([postgresStore({ url: one.url })], publishers, () => one.drop()),
    postgresTwoNodes: await publishing([postgresStore({ url: two.url }), postgresStore({ url: two.url })], publishers, () => two.drop()),
  };
  try {
    for (const workload of Object.values(workloads)) await workload.run(200);
    progress(`publishing: ${schedule.rounds} rounds of ${schedule.slices} × ${schedule.sliceMilliseconds} ms each`);
    const rates = await alternate(schedule, {
      sqlite: workloads.sqlite.run,
      postgres: workloads.postgres.run,
      postgresTwoNodes: workloads.postgresTwoNodes.run,
    });
    const perRound = (subject: 'postgres' | 'postgresTwoNodes') =>
      ratiosPerRound(rates[subject], rates.sqlite);
    return [
      `### Publish throughput: PostgreSQL against SQLite`,
      '',
      `\`EventBus.publish\` of 1 KiB events from ${publishers} concurrent loops in one process, group commit on; SQLite is a`,
      'file in WAL mode with `synchronous=FULL`, PostgreSQL the machine\'s server (`synchronous_commit=on`) over loopback,',
      'each append transaction drawing its seqs with a ticket (no lock held to the commit). "2 nodes" is two stores (two',
      `pools) on one database, half the loops each, committing side by side. ${schedule.rounds} rounds, alternating.`,
      '',
      markdownTable(
        ['store', 'events/s', 'vs SQLite', 'per round', 'vs 1 node', 'per round'],
        [
          ['SQLite (one node only)', formatCount(rates.sqlite.total), '1.00', '', '', ''],
          ['PostgreSQL, 1 node', formatCount(rates.postgres.total), formatRatio(rates.postgres.total / rates.sqlite.total), perRound('postgres'), '1.00', ''],
          [
            'PostgreSQL, 2 nodes',
            formatCount(rates.postgresTwoNodes.total),
            formatRatio(rates.postgresTwoNodes.total / rates.sqlite.total),
            perRound('postgresTwoNodes'),
            formatRatio(rates.postgresTwoNodes.total / rates.postgres.total),
            ratiosPerRound(rates.postgresTwoNodes, rates.postgres),
          ],
        ],
      ),
    ].join('\n');
  } finally {
    for (const workload of Object.values(workloads)) await workload.close();
  }
}

// ---------------------------------------------------------------------------------------------
// WebSocket fan-out: the same clients on one node, or spread over two.

interface BenchNode {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** A node in a process of its own; `prefix`: its Redis ring's (empty: the memory broker, one node alone). */
async function startNode(database: string, prefix: string, adminKey: string, pool = 4): Promise<BenchNode> {
  // BENCH_NODE_ARGS: more node flags for the nodes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile them.
  const extra = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, ...extra, fileURLToPath(import.meta.url), '--node'], {
    env: { ...process.env, BENCH_NODE_DATABASE: database, BENCH_NODE_PREFIX: prefix, BENCH_NODE_ADMIN_KEY: adminKey, BENCH_NODE_POOL: String(pool) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((done) => child.once('exit', done));
  const limit = nodeCores > 0 ? limitCpu(child.pid as number, nodeCores, `herald-bench-${child.pid}`) : undefined;
  const port = await new Promise<number>((done, fail) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const found = /listening (\d+)/.exec(output);
      if (found) done(Number(found[1]));
    });
    void exited.then(() => fail(new Error(`a node exited before listening: ${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      limit?.release();
    },
  };
}

interface Cluster {
  nodes: BenchNode[];
  adminKey: string;
  close(): Promise<void>;
}

async function cluster(size: number): Promise<Cluster> {
  const database = await freshDatabase();
  const adminKey = `bench-${randomBytes(16).toString('hex')}`;
  const prefix = `bench-${process.pid}-${randomBytes(4).toString('hex')}:`;
  // The first node migrates the database alone; the others start on the migrated schema.
  const first = await startNode(database.url, prefix, adminKey);
  const others = await Promise.all(Array.from({ length: size - 1 }, () => startNode(database.url, prefix, adminKey)));
  const nodes = [first, ...others];
  return {
    nodes,
    adminKey,
    async close() {
      await Promise.all(nodes.map((node) => node.stop()));
      await database.drop();
    },
  };
}

/** A client subscribed to `bench.*` that counts the events it receives. */
interface CountingClient {
  received: number;
  close(): void;
}

async function countingClient(node: BenchNode, key: string): Promise<CountingClient> {
  const socket = new WebSocket(`${node.url.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
  const client: CountingClient = { received: 0, close: () => socket.close() };
  await new Promise<void>((done, fail) => {
    socket.once('error', fail);
    socket.on('message', (raw) => {
      const message = JSON.parse(raw.toString()) as { type: string };
      if (message.type === 'event') client.received++;
      else if (message.type === 'ready') socket.send(JSON.stringify({ type: 'subscribe', id: 's', types: ['bench.*'] }));
      else if (message.type === 'subscribed') done();
    });
  });
  return client;
}

/** A fan-out setup: its clients spread over its nodes; each run publishes a burst to the first node and waits for every delivery. */
async function fanOutWorkload(size: number, clients: number, burst: number): Promise<OpenWorkload & { deliveries: number[] }> {
  const running = await cluster(size);
  const connected: CountingClient[] = [];
  for (let i = 0; i < clients; i++) connected.push(await countingClient(running.nodes[i % size] as BenchNode, running.adminKey));
  const publisher = running.nodes[0] as BenchNode;
  const deliveries: number[] = [];
  const publishOne = async () => {
    const response = await fetch(`${publisher.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${running.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: eventType.name, data }),
    });
    if (response.status !== 202) throw new Error(`publishing answered ${response.status}`);
  };
  return {
    deliveries,
    async run() {
      const expected = connected.reduce((sum, client) => sum + client.received, 0) + clients * burst;
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next++ < burst) await publishOne();
        }),
      );
      const deadline = performance.now() + 60_000;
      while (connected.reduce((sum, client) => sum + client.received, 0) < expected) {
        if (performance.now() > deadline) throw new Error('fan-out: not every client received every event within 60 s');
        await new Promise((done) => setTimeout(done, 5));
      }
      deliveries.push(clients * burst);
      return clients * burst;
    },
    async close() {
      for (const client of connected) client.close();
      await running.close();
    },
  };
}

async function fanOut(): Promise<string> {
  const clients = envNumber('BENCH_SCALING_CLIENTS', 200);
  const burst = envNumber('BENCH_SCALING_BURST', 100);
  const schedule: AlternateOptions = { rounds: envNumber('BENCH_ROUNDS', 3), slices: envNumber('BENCH_SCALING_FANOUT_SLICES', 2), sliceMilliseconds: 0 };
  progress(`fan-out: starting 1 + 2 nodes, ${clients} clients each setup`);
  const single = await fanOutWorkload(1, clients, burst);
  const spread = await fanOutWorkload(2, clients, burst);
  try {
    await single.run(0);
    await spread.run(0);
    const rates = await alternate(schedule, { oneNode: single.run, twoNodes: spread.run });
    const perRound = ratiosPerRound(rates.twoNodes, rates.oneNode);
    return [
      `### WebSocket fan-out: clients spread over 2 nodes against 1 node`,
      '',
      `${clients} WebSocket clients subscribed to \`bench.*\`; each turn publishes ${burst} 1 KiB events over REST to the first`,
      `node and waits until every client has every event (${formatCount(clients * burst)} deliveries). One node: all clients on it.`,
      'Two nodes: half the clients on each; the second node learns of the events by the Redis ring and reads them from',
      'PostgreSQL. Nodes are separate processes; the clients run in the benchmark process, on the same 2 cores.',
      '',
      markdownTable(
        ['setup', 'deliveries/s', 'vs 1 node', 'per round'],
        [
          ['one node', formatCount(rates.oneNode.total), '1.00', ''],
          ['two nodes', formatCount(rates.twoNodes.total), formatRatio(rates.twoNodes.total / rates.oneNode.total), perRound],
        ],
      ),
    ].join('\n');
  } finally {
    await single.close();
    await spread.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Publishing over HTTP to nodes in processes of their own, loaded by autocannon from this process.

/** CPU seconds (user + system) a process has used, from /proc (Linux); 0 once it is gone. */
const cpuSeconds = (pid: number) => procCpuSeconds(`/proc/${pid}/stat`) ?? 0;

/** What PostgreSQL did for one database: its backends' CPU seconds, and its transactions committed. */
async function postgresWork(database: string): Promise<{ cpu: Map<number, number>; commits: number }> {
  return postgresAdmin(async (client) => {
    const backends = await client.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [database]);
    const stats = await client.query<{ commits: string }>('select xact_commit as commits from pg_stat_database where datname = $1', [database]);
    return { cpu: new Map(backends.rows.map((row) => [row.pid, cpuSeconds(row.pid)])), commits: Number(stats.rows[0]?.commits ?? 0) };
  });
}

interface HttpSetup {
  nodes: BenchNode[];
  adminKey: string;
  /** The PostgreSQL database's name, none for SQLite. */
  database?: string;
  close(): Promise<void>;
  /** Per publish, over the measured turns: the nodes' CPU µs, PostgreSQL's backends' CPU µs, PostgreSQL's transactions. */
  tally: { publishes: number; nodeCpu: number; postgresCpu: number; commits: number };
}

async function httpSetup(kind: 'sqlite' | 'postgres', size: number, pool: number): Promise<HttpSetup> {
  const adminKey = `bench-${randomBytes(16).toString('hex')}`;
  const tally = { publishes: 0, nodeCpu: 0, postgresCpu: 0, commits: 0 };
  if (kind === 'sqlite') {
    const dir = tempDirectory();
    const node = await startNode(dir.file('herald.db'), '', adminKey);
    const close = async () => {
      await node.stop();
      dir.remove();
    };
    return { nodes: [node], adminKey, tally, close };
  }
  const database = await freshDatabase();
  const prefix = `bench-${process.pid}-${randomBytes(4).toString('hex')}:`;
  // The first node migrates the database alone; the others start on the migrated schema.
  const first = await startNode(database.url, prefix, adminKey, pool);
  const others = await Promise.all(Array.from({ length: size - 1 }, () => startNode(database.url, prefix, adminKey, pool)));
  const nodes = [first, ...others];
  return {
    nodes,
    adminKey,
    database: new URL(database.url).pathname.slice(1),
    tally,
    async close() {
      await Promise.all(nodes.map((node) => node.stop()));
      await database.drop();
    },
  };
}

/** Publishes for `seconds` over `connections` split between the setup's nodes; returns the publishes answered 202. */
async function httpLoad(setup: HttpSetup, connections: number, seconds: number, measured = true): Promise<number> {
  const nodeCpu = () => setup.nodes.reduce((sum, node) => sum + cpuSeconds(node.pid), 0);
  const cpuBefore = nodeCpu();
  const postgresBefore = setup.database ? await postgresWork(setup.database) : undefined;
  const results = await Promise.all(
    setup.nodes.map((node) =>
      autocannon({
        url: `${node.url}/v1/events`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${setup.adminKey}` },
        body: JSON.stringify({ type: eventType.name, data }),
        connections: Math.max(1, Math.round(connections / setup.nodes.length)),
        duration: seconds,
      }),
    ),
  );
  const cpu = nodeCpu() - cpuBefore;
  let postgresCpu = 0;
  let commits = 0;
  if (setup.database && postgresBefore) {
    const after = await postgresWork(setup.database);
    for (const [pid, seconds] of after.cpu) postgresCpu += seconds - (postgresBefore.cpu.get(pid) ?? 0);
    commits = after.commits - postgresBefore.commits;
  }
  let published = 0;
  for (const result of results) {
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`publishing: ${result.non2xx} answers were not 2xx and ${result.errors} requests failed`);
    published += result['2xx'];
  }
  if (measured) {
    setup.tally.publishes += published;
    setup.tally.nodeCpu += cpu;
    setup.tally.postgresCpu += postgresCpu;
    setup.tally.commits += commits;
  }
  return published;
}

async function httpPublishThroughput(): Promise<string> {
  const connections = envNumber('BENCH_SCALING_CONNECTIONS', 64);
  const pool = envNumber('BENCH_SCALING_POOL', 4);
  const schedule: AlternateOptions = {
    rounds: envNumber('BENCH_ROUNDS', 3),
    slices: envNumber('BENCH_SCALING_HTTP_SLICES', 2),
    sliceMilliseconds: envNumber('BENCH_SCALING_HTTP_SLICE_MS', 2000),
  };
  const limited = nodeCores > 0 ? `, each node held to ${nodeCores} of a core` : '';
  progress(`publishing over HTTP: SQLite, PostgreSQL 1 node, 2 nodes (each a process${limited}), ${connections} connections, pool ${pool}`);
  const setups = {
    sqlite: await httpSetup('sqlite', 1, pool),
    postgres: await httpSetup('postgres', 1, pool),
    postgresTwoNodes: await httpSetup('postgres', 2, pool),
  };
  try {
    for (const setup of Object.values(setups)) await httpLoad(setup, connections, 1, false);
    const load = (setup: HttpSetup) => (milliseconds: number) => httpLoad(setup, connections, milliseconds / 1000);
    const rates = await alternate(schedule, {
      sqlite: load(setups.sqlite),
      postgres: load(setups.postgres),
      postgresTwoNodes: load(setups.postgresTwoNodes),
    });
    const perPublish = (setup: HttpSetup, value: number, scale = 1e6) => (setup.tally.publishes > 0 ? (value * scale) / setup.tally.publishes : 0);
    const row = (name: string, key: keyof typeof setups, vsOne: string, vsOneRounds: string) => {
      const setup = setups[key];
      return [
        name,
        formatCount(rates[key].total),
        formatRatio(rates[key].total / rates.sqlite.total),
        ratiosPerRound(rates[key], rates.sqlite),
        vsOne,
        vsOneRounds,
        formatCount(perPublish(setup, setup.tally.nodeCpu)),
        setup.database ? formatCount(perPublish(setup, setup.tally.postgresCpu)) : '',
        setup.database ? formatRatio(perPublish(setup, setup.tally.commits, 1)) : '',
      ];
    };
    return [
      `### Publish throughput over HTTP, each node a process of its own`,
      '',
      `\`POST /v1/events\` of 1 KiB events from autocannon in the benchmark's process, ${connections} connections split between`,
      `the setup's nodes; each node is a process of its own (a Herald server on an ephemeral port, pool of ${pool}`,
      'PostgreSQL connections, Redis ring between PostgreSQL nodes). SQLite: one node on a file (WAL, `synchronous=FULL`).',
      ...(nodeCores > 0 ? [`Each node's process is held to ${nodeCores} of a core by a cgroup's CPU quota (\`BENCH_NODE_CPU\`), as a container's CPU limit would.`] : []),
      `${schedule.rounds} rounds of ${schedule.slices} × ${schedule.sliceMilliseconds / 1000} s per setup, alternating. CPU per publish: the nodes'`,
      "processes (user + system, from /proc), and the PostgreSQL backends serving the benchmark's database; PostgreSQL",
      "transactions per publish: `pg_stat_database.xact_commit` of that database (appends and every node's reads).",
      '',
      markdownTable(
        ['setup', 'publishes/s', 'vs SQLite', 'per round', 'vs 1 node', 'per round', 'node CPU µs/publish', 'PostgreSQL CPU µs/publish', 'PG transactions/publish'],
        [
          row('SQLite, 1 node', 'sqlite', '', ''),
          row('PostgreSQL, 1 node', 'postgres', '1.00', ''),
          row(
            'PostgreSQL, 2 nodes',
            'postgresTwoNodes',
            formatRatio(rates.postgresTwoNodes.total / rates.postgres.total),
            ratiosPerRound(rates.postgresTwoNodes, rates.postgres),
          ),
        ],
      ),
    ].join('\n');
  } finally {
    for (const setup of Object.values(setups)) await setup.close();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  // `--http-publish-only`: publishing over HTTP to nodes in processes of their own, alone (about a minute).
  if (process.argv.includes('--http-publish-only')) {
    console.log(['## Scaling', '', await httpPublishThroughput(), ''].join('\n'));
    progress(`scaling: ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return;
  }
  const publish = await publishThroughput();
  // `--publish-only`: the publish throughput alone, about 30 s.
  const publishOnly = process.argv.includes('--publish-only');
  const http = publishOnly ? '' : await httpPublishThroughput();
  const fan = publishOnly ? '' : await fanOut();
  console.log(['## Scaling', '', publish, '', http, '', fan, ''].join('\n'));
  progress(`scaling: ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
