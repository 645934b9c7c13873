/**
 * A Herald with one push transport in a process of its own (see push-node-process.test-support.ts):
 * `node … push-node-process-main.test-support.ts <module URL> <factory name>`. It listens on 127.0.0.1 with an
 * ephemeral port, takes `HERALD_ALLOW_PRIVATE` from its environment, prints `{"baseUrl":...,"adminKey":...}` as one
 * line once it is ready, and closes on SIGTERM.
 */
import type { Transport } from '@herald/core';
import { startTestApp } from './test-app.js';

const [module, factoryName] = process.argv.slice(2) as [string, string];
const factory = (await import(module))[factoryName] as (options: object) => Transport;
// One attempt at once, the next a minute later: a failed attempt stays the only one while a test looks at it.
const app = await startTestApp([factory({ pollInterval: 50, timeout: 3_000, retrySchedule: [0, 60] })], {
  env: { HERALD_ALLOW_PRIVATE: process.env.HERALD_ALLOW_PRIVATE },
});
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
process.stdout.write(`${JSON.stringify({ baseUrl: app.baseUrl, adminKey: app.adminKey })}\n`);
