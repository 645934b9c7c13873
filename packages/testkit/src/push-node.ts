/**
 * A Herald with one push transport, run by the push cases of the transport suite as a process of its
 * own: `node <arguments> push-node.js '<json>'`. It delivers from the database it is given and prints
 * `ready <pid>`; each line `publish <n>` on its stdin publishes n events, in batches of 50, each followed
 * by `acked <event id>` once its publish returned. SIGTERM closes it gracefully.
 */
import { createInterface } from 'node:readline';
import type { Transport } from '@herald/core';
import { createHerald } from '@herald/server';
import { testEventTypes } from './test-app.js';

interface PushNodeArguments {
  /** The module whose `transport()` makes the transport. */
  module: string;
  database: string;
  env: Record<string, string | undefined>;
}

const args = JSON.parse(process.argv[2] as string) as PushNodeArguments;
const { transport } = (await import(args.module)) as { transport: () => Transport };
const herald = createHerald({
  database: args.database,
  env: args.env,
  logLevel: process.env.HERALD_TEST_LOG_LEVEL ?? 'silent',
  eventTypes: testEventTypes,
  transports: [transport()],
});
await herald.ready;
process.on('SIGTERM', () => {
  void herald.close().then(() => process.exit(0));
});

let published = 0;
let publishing = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  const count = Number(line.replace(/^publish /, ''));
  publishing = publishing.then(async () => {
    for (let n = 0; n < count; n += 50) {
      const batch = Array.from({ length: Math.min(50, count - n) }, () => ({ type: 'order.created', data: { n: published++ } }));
      const results = await herald.bus.publishMany(batch);
      // Pipes are synchronous on Linux: a line written here survives SIGKILL.
      process.stdout.write(results.map(({ event }) => `acked ${event.id}\n`).join(''));
    }
  });
});
process.stdout.write(`ready ${process.pid}\n`);
