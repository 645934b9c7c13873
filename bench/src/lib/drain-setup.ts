import { defineEventType, type EventBus, sqliteStore, type Transport } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { tempDirectory } from './temp-directory.js';

/** The admin key of the benches' Herald nodes. */
const adminKey = 'bench-admin-key-0123456789abcdef0123';

/** The event the drain benches publish, its `data` padded with {@link pad}. */
const benchEvent = defineEventType('bench.event', z.object({ n: z.number(), pad: z.string() }));

/** Pads `data` so that the envelope is about 250 bytes of JSON, like the raw loop's body. */
export const pad = 'x'.repeat(48);

/** A silent Herald node on the SQLite file `database`, knowing the bench event, with `transports`. */
export function drainNode(database: string, transports: Transport[]) {
  return createHerald({ store: sqliteStore({ path: database }), adminKey, logLevel: 'silent', env: {}, eventTypes: [benchEvent], transports });
}

/** Publishes `events` bench events, 500 to a batch. */
export async function publishBatches(herald: { bus: EventBus }, events: number): Promise<void> {
  for (let n = 0; n < events; n += 500) {
    await herald.bus.publishMany(Array.from({ length: Math.min(500, events - n) }, (_, i) => ({ type: 'bench.event', data: { n: n + i, pad } })));
  }
}

/** POSTs `body` as the admin to `path` of the node at `url`, and fails unless it answers `expected`; returns the answer's JSON. */
export async function adminPost<T = unknown>(url: string, path: string, body: unknown, expected: number): Promise<T> {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== expected) throw new Error(`POST ${path} answered ${response.status}`);
  return (await response.json()) as T;
}

/**
 * Runs `work` on a fresh SQLite file in which a node of `start` (closed before `work`) made `subscription`
 * through the API; `work` gets the file and the subscription's id. The file is deleted after.
 */
export async function withSubscription<T>(
  start: (database: string) => Pick<Herald, 'listen' | 'close'>,
  subscription: Record<string, unknown>,
  work: (database: string, subscriptionId: string) => Promise<T>,
): Promise<T> {
  const dir = tempDirectory();
  try {
    const database = dir.file('herald.db');
    const herald = start(database);
    const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
    const { id } = await adminPost<{ id: string }>(url, '/v1/subscriptions', subscription, 201);
    await herald.close();
    return await work(database, id);
  } finally {
    dir.remove();
  }
}

/** Waits for `condition`, checked every 5 ms; throws, naming `what`, after `timeout` ms. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeout = 120_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Waits for `promise`; throws, naming `what`, after `timeout` ms. */
export async function within<T>(promise: Promise<T>, what: string, timeout = 120_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeout);
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `use` on a connection of its own to the SQLite file `database` (opened with `options`), closed after. */
export function onSqlite<T>(database: string, use: (sqlite: Database.Database) => T, options?: Database.Options): T {
  const sqlite = new Database(database, options);
  try {
    return use(sqlite);
  } finally {
    sqlite.close();
  }
}

/** Makes every pending delivery in `database` due now, as if its retry's wait had passed; throws unless there are `expected` of them. */
export function makeRetriesDue(database: string, expected: number): void {
  const due = onSqlite(database, (sqlite) => sqlite.prepare(`UPDATE herald_deliveries SET next_attempt_at = ? WHERE status = 'pending'`).run(Date.now()).changes);
  if (due < expected) throw new Error(`only ${due} of ${expected} deliveries are waiting for a retry`);
}
