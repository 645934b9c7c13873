/**
 * Publishing in the app's own transaction (issue 22): an app transaction that inserts an order, with
 * and without `bus.publish(..., { transaction })` in it, on SQLite (Herald's own connection, as
 * `herald.database` hands it out) and on PostgreSQL (the app's own pool). Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/transactional-publish-bench.ts`.
 * Needs the machine's PostgreSQL (`BENCH_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/test).
 */
import { randomBytes } from 'node:crypto';
import { defineEventType, EventBus, EventCatalog, memoryBroker, postgresStore, type SqlStore, sqliteStore } from '@herald/core';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { z } from 'zod';
import { markdownTable } from './lib/markdown.js';
import { type AlternateOptions, alternate, envNumber, progress, type Workload } from './lib/rounds.js';
import { formatCount, formatRatio, roundRatios } from './lib/stats.js';
import { tempDirectory } from './lib/temp-directory.js';

const postgresAdminUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const orderCreated = defineEventType('order.created', z.object({ orderId: z.string(), total: z.number() }));

type Orders = { orders: { id: string; total: number } };

/** Order ids, unique across the workloads that share a table. */
let orders = 0;

/** An app transaction per call: it inserts an order, and publishes `order.created` in it when `publish`. */
function ordering(app: Kysely<Orders>, bus: EventBus, publish: boolean): Workload {
  return async (milliseconds) => {
    const deadline = performance.now() + milliseconds;
    let done = 0;
    while (performance.now() < deadline) {
      const id = `ord_${orders++}`;
      await app.transaction().execute(async (trx) => {
        await trx.insertInto('orders').values({ id, total: 10 }).execute();
        if (publish) await bus.publish({ type: 'order.created', data: { orderId: id, total: 10 } }, { transaction: trx });
      });
      done++;
    }
    return done;
  };
}

async function setUp(store: SqlStore, app: Kysely<Orders>): Promise<EventBus> {
  await store.init();
  await app.schema.createTable('orders').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('total', 'real').execute();
  const bus = new EventBus({ store, broker: memoryBroker(), catalog: new EventCatalog([orderCreated]) });
  await bus.start();
  return bus;
}

async function main(): Promise<void> {
  const schedule: AlternateOptions = {
    rounds: envNumber('BENCH_ROUNDS', 3),
    slices: envNumber('BENCH_TX_SLICES', 4),
    sliceMilliseconds: envNumber('BENCH_TX_SLICE_MS', 300),
  };
  const dir = tempDirectory();
  const sqlite = sqliteStore({ path: dir.file('shop.db') });
  const sqliteApp = sqlite.database.withTables<Orders>();
  const sqliteBus = await setUp(sqlite, sqliteApp);

  const name = `herald_bench_tx_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  const postgres = postgresStore({ url: url.href });
  const postgresApp = new Kysely<Orders>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url.href, max: 2 }) }) });
  const postgresBus = await setUp(postgres, postgresApp);

  try {
    const workloads = {
      sqlite: ordering(sqliteApp, sqliteBus, false),
      sqlitePublishing: ordering(sqliteApp, sqliteBus, true),
      postgres: ordering(postgresApp, postgresBus, false),
      postgresPublishing: ordering(postgresApp, postgresBus, true),
    };
    for (const workload of Object.values(workloads)) await workload(200);
    progress(`transactional publish: ${schedule.rounds} rounds of ${schedule.slices} × ${schedule.sliceMilliseconds} ms each`);
    const rates = await alternate(schedule, workloads);
    const row = (label: string, without: keyof typeof rates, within: keyof typeof rates) => {
      const [plain, publishing] = [rates[without].total, rates[within].total];
      return [
        label,
        formatCount(plain),
        formatCount(publishing),
        `${Math.round(1e6 / plain)} µs`,
        `${Math.round(1e6 / publishing)} µs`,
        `+${Math.round(1e6 / publishing - 1e6 / plain)} µs`,
        formatRatio(publishing / plain),
        roundRatios(rates[within], rates[without])
          .map((ratio) => formatRatio(ratio))
          .join(', '),
      ];
    };
    console.log(
      [
        '## Publishing in the app’s transaction',
        '',
        'One loop of app transactions, one after another: each inserts a row into an `orders` table, and, in the',
        'publishing column, also publishes `order.created` in the same transaction (`bus.publish(input, { transaction })`:',
        'validation, then the event row). SQLite: a file in WAL mode with `synchronous=FULL`, the app on Herald’s own',
        'connection (`herald.database`); PostgreSQL: the machine’s server over loopback, the app on its own pool.',
        `${schedule.rounds} rounds, alternating.`,
        '',
        markdownTable(
          ['database', 'transactions/s without', 'with the publish', 'time without', 'time with', 'added', 'rate ratio', 'per round'],
          [row('SQLite', 'sqlite', 'sqlitePublishing'), row('PostgreSQL', 'postgres', 'postgresPublishing')],
        ),
        '',
      ].join('\n'),
    );
  } finally {
    await sqliteBus.stop();
    await postgresBus.stop();
    await sqlite.close();
    await postgresApp.destroy();
    await postgres.close();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
    dir.remove();
  }
}

await main();
