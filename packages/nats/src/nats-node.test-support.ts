/**
 * A Herald with the NATS transport in a process of its own, for what Node reads only when a process starts, such
 * as `NODE_EXTRA_CA_CERTS`: `node --conditions=herald-source --import tsx nats-node.test-support.ts`. It listens on
 * 127.0.0.1 with an ephemeral port, takes `HERALD_ALLOW_PRIVATE` from its environment, prints
 * `{"baseUrl":...,"adminKey":...}` as one line once it is ready, and closes on SIGTERM.
 */
import { startTestApp } from '@herald/testkit';
import { nats } from './nats-transport.js';

// One attempt at once, the next a minute later: a failed attempt stays the only one while a test looks at it.
const app = await startTestApp([nats({ pollInterval: 50, timeout: 3_000, retrySchedule: [0, 60] })], {
  env: { HERALD_ALLOW_PRIVATE: process.env.HERALD_ALLOW_PRIVATE },
});
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
process.stdout.write(`${JSON.stringify({ baseUrl: app.baseUrl, adminKey: app.adminKey })}\n`);
