/**
 * A Herald node (core and the webhook transport) for the durability tests, run as its own process:
 * `node --conditions=herald-source --import tsx webhook-node.test-support.ts '<json>'`.
 * It delivers webhooks from the SQLite file it is given, prints `ready <pid>`, then `acked <event id>`
 * for each event it published (when asked to publish) and `attempt <outcome>` after each attempt. A line
 * `replay` on its stdin starts a replay of its first subscription from the start of the log, as the
 * admin's `POST /v1/subscriptions/:id/replay` does, and prints `replaying`. SIGTERM closes it gracefully.
 */
import { createInterface } from 'node:readline';
import { EventBus, EventCatalog, eventTypeFromJsonSchema, memoryBroker, type RouteDefinition, SubscriptionRegistry, silentLogger, sqliteStore } from '@herald/core';
import { webhook } from './webhook-transport.js';

interface NodeArguments {
  database: string;
  /** Events to publish, in batches of 50. @default 0 */
  publish?: number;
  lease: number;
  timeout: number;
}

const args = JSON.parse(process.argv[2] as string) as NodeArguments;
// Composed from @herald/core without the HTTP server, which the outbox does not need: the node starts faster.
const store = sqliteStore({ path: args.database });
await store.init();
const broker = memoryBroker();
const catalog = new EventCatalog();
catalog.add(eventTypeFromJsonSchema('load.tick', { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }), 'api');
const bus = new EventBus({ store, broker, catalog, pollInterval: 100 });
const subscriptions = new SubscriptionRegistry(store, broker);
await subscriptions.start();
await bus.start();
/** The transport's routes, which no HTTP server serves here: `replay` calls one directly. */
const routes: RouteDefinition[] = [];
const transport = webhook({
  concurrency: 8,
  timeout: args.timeout,
  lease: args.lease,
  pollInterval: 100,
  retrySchedule: [0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
  onAttempt: (attempt) => process.stdout.write(`attempt ${attempt.outcome}\n`),
});
await transport.start({
  store,
  bus,
  catalog,
  subscriptions,
  logger: silentLogger,
  http: { route: (route) => void routes.push(route as RouteDefinition), upgrade() {} },
  authenticate: () => Promise.reject(new Error('no HTTP here')),
  onKeyRevoked: () => () => {},
  env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' },
  signal: new AbortController().signal,
  metrics: { delivered() {}, backlog() {} },
  connections: { acquire: () => () => {} },
});
const herald = {
  bus,
  async close() {
    await transport.stop();
    await bus.stop();
    await subscriptions.stop();
    await store.close();
  },
};
process.on('SIGTERM', () => {
  void herald.close().then(() => process.exit(0));
});
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'replay') return;
  void (async () => {
    const [subscription] = await store.subscriptions.list();
    const route = routes.find((candidate) => candidate.method === 'POST' && candidate.path === '/v1/subscriptions/:id/replay');
    if (!subscription || !route) throw new Error('nothing to replay');
    const principal = { keyId: 'key_node', role: 'admin' as const };
    await route.handle({ principal, params: { id: subscription.id }, body: { after: 0 }, query: {}, raw: { headers: {} }, response: undefined } as never);
    process.stdout.write('replaying\n');
  })();
});
process.stdout.write(`ready ${process.pid}\n`);
setInterval(() => {}, 1 << 30);

for (let n = 0; n < (args.publish ?? 0); n += 50) {
  const batch = Array.from({ length: Math.min(50, (args.publish ?? 0) - n) }, (_, i) => ({ type: 'load.tick', data: { n: n + i } }));
  const results = await herald.bus.publishMany(batch);
  // Pipes are synchronous on Linux: a line written here survives SIGKILL.
  process.stdout.write(results.map(({ event }) => `acked ${event.id}\n`).join(''));
}
