/**
 * The shop of transactional-orders.ts with Herald (webhooks and WebSocket) as its own process, for
 * transactional-publish.test.ts. Configured by the environment (`HERALD_DATABASE`, `HERALD_ADMIN_KEY`);
 * prints `worker <id>` and `listening <port>` (multi-node-cluster.ts's `startNode`). With
 * `SHOP_ORDER_THEN_KILL=<order id>`, it commits that order instead, prints `committed <event id>`, and
 * kills itself with SIGKILL before anything else can run.
 */
import { createHerald } from '@herald/server';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { createShopTables, type ShopTables, shopApp, shopEventTypes } from './transactional-orders.js';

const env = process.env;
const hooks = webhook({ allowPrivate: true, pollInterval: 200, retrySchedule: [0, 0.5, 1, 1, 1] });
const herald = createHerald({ transports: [hooks, websocket()], eventTypes: shopEventTypes, logLevel: env.HERALD_LOG_LEVEL ?? 'warn', env });
await herald.ready;
await createShopTables(herald);
const db = herald.database.withTables<ShopTables>();
await db.insertInto('stock').values({ sku: 'A', available: 5 }).onConflict((oc) => oc.column('sku').doNothing()).execute();

const orderThenKill = env.SHOP_ORDER_THEN_KILL;
if (orderThenKill) {
  const { event } = await db.transaction().execute(async (trx) => {
    await trx.insertInto('orders').values({ id: orderThenKill, sku: 'A', quantity: 1, total: 10 }).execute();
    return herald.publish({ type: 'order.created', data: { orderId: orderThenKill, sku: 'A', quantity: 1, total: 10 } }, { transaction: trx });
  });
  // Pipes are synchronous on Linux: the line is out before the process dies.
  process.stdout.write(`committed ${event.id}\n`);
  process.kill(process.pid, 'SIGKILL');
}

const app = shopApp(herald);
app.use(herald.app);
const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handler: app });
process.stdout.write(`worker ${hooks.workerId}\nlistening ${port}\n`);
