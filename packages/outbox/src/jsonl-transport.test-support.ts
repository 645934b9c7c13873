import { appendFile, mkdir, rename } from 'node:fs/promises';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HeraldEvent, Transport } from '@herald/core';
import type { Receiver, TestApp, TransportHarness } from '../../testkit/src/index.js';
import { z } from 'zod';
import type { PushOptions } from './push-options.js';
import { definePushTransport, pushConfigFields } from './push-transport.js';

/**
 * A push transport that is not HTTP: it appends each delivery to a file, as a line of JSON. Its
 * durability, retries, attempts and replay are all `definePushTransport`'s.
 */
export function jsonlTransport(options: PushOptions = {}, name = 'jsonl') {
  return definePushTransport({
    name,
    configSchema: z.strictObject({ path: z.string().min(1), ...pushConfigFields }),
    options,
    async send({ body, subscription }) {
      // Fails while the file's folder is missing: the destination is down.
      await appendFile(subscription.config.path, `${body}\n`);
      return { delivered: true };
    },
  });
}

/** The same destination, written at most once: straight from the bus, no outbox, nothing retried (what the suite must fail). */
export function atMostOnceJsonlTransport(name = 'jsonl'): Transport {
  let stop: (() => void) | undefined;
  return {
    name,
    configSchema: z.strictObject({ path: z.string().min(1), ...pushConfigFields }),
    async start(context) {
      stop = context.bus.onEvents((events) => {
        for (const event of events) {
          for (const subscription of context.subscriptions.match(event, name)) {
            appendFile(String(subscription.config.path), `${JSON.stringify(event)}\n`).catch(() => {});
          }
        }
      });
    },
    async stop() {
      stop?.();
    },
  };
}

/** The options of the jsonl transports the tests run: quick retries, and a lease short enough for a killed process's deliveries to come back soon. */
export const quickDelivery: PushOptions = { timeout: 1_000, lease: 4_000, pollInterval: 100, retrySchedule: [0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4] };

/** A consumer's file: its events as they were appended; failing, its folder is moved away. */
export async function jsonlReceiver(app: TestApp, { consumer, types }: { consumer: string; types: string[] }, transport = 'jsonl'): Promise<Receiver> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-jsonl-'));
  const inbox = join(dir, 'inbox');
  await mkdir(inbox);
  const path = join(inbox, 'events.jsonl');
  const key = await app.consumerKey(consumer);
  // Ordered: the suite checks that events arrive in seq order, which push transports promise only when ordered.
  const { status, body } = await app.api('POST', '/v1/subscriptions', { transport, types, config: { path, ordered: true } }, key);
  if (status !== 201) throw new Error(`creating a ${transport} subscription answered ${status}: ${JSON.stringify(body)}`);
  return {
    subscriptionId: body.id,
    get events(): HeraldEvent[] {
      if (!existsSync(path)) return [];
      return readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as HeraldEvent);
    },
    async fail(failing) {
      if (failing) await rename(inbox, `${inbox}-away`);
      else await rename(`${inbox}-away`, inbox);
    },
    async close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The transport suite's harness for a jsonl transport; `module` runs it in a process of its own. */
export function jsonlHarness(transport: () => Transport, module: URL, recoveryTime?: number): TransportHarness {
  return {
    transport,
    receive: (app, input) => jsonlReceiver(app, input),
    subscriptionRoutes: [
      { method: 'GET', path: '/v1/subscriptions/:id/deliveries' },
      { method: 'POST', path: '/v1/subscriptions/:id/replay', body: { after: 0 } },
      { method: 'GET', path: '/v1/subscriptions/:id/replay' },
    ],
    push: { module, ...(recoveryTime !== undefined ? { recoveryTime } : {}) },
  };
}
