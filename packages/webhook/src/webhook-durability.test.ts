import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defineEventType } from '@herald/core';
import { sqlOutbox } from '@herald/outbox';
import { createHerald } from '@herald/server';
import { waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { openStore, startReceiver } from './test-receiver.test-support.js';
import { webhook } from './webhook-transport.js';

const nodeScript = fileURLToPath(new URL('./webhook-node.test-support.ts', import.meta.url));
/** tsx as a loader of this very process (`node --import`), so that SIGKILL hits the Herald node itself. */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const loadTick = defineEventType('load.tick', z.object({ n: z.number() }));

interface Node {
  process: ChildProcess;
  /** Starts a replay of its subscription from the start of the log; resolves once it runs. */
  replay(): Promise<void>;
  acked: string[];
  attempts: number;
  failedAttempts: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Starts a Herald node process on the database and waits for it to be ready. */
/**
 * A node. The SIGKILL test wants a short lease, so that the killed node's claims come back soon; the
 * timeout stays long enough that a loaded machine does not turn slow answers into retries.
 */
async function startNode(database: string, { publish = 0, timeout = 3_000, lease = 8_000 } = {}): Promise<Node> {
  const child = spawn(
    process.execPath,
    ['--conditions=herald-source', '--import', tsxLoader, nodeScript, JSON.stringify({ database, publish, timeout, lease })],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let replaying = false;
  const node: Node = {
    process: child,
    async replay() {
      child.stdin?.write('replay\n');
      await waitFor(() => replaying, 'the replay to start');
    },
    acked: [],
    attempts: 0,
    failedAttempts: 0,
    // 'close' rather than 'exit': the attempts it reported last are counted by then.
    exited: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal }))),
    stderr: () => stderr,
  };
  let stderr = '';
  let pending = '';
  let ready = false;
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() as string;
    for (const line of lines) {
      if (line === `ready ${child.pid}`) ready = true;
      else if (line === 'replaying') replaying = true;
      else if (line.startsWith('acked ')) node.acked.push(line.slice(6));
      else if (line.startsWith('attempt ')) {
        node.attempts += 1;
        if (line !== 'attempt succeeded') node.failedAttempts += 1;
      }
    }
  });
  await waitFor(() => ready || child.exitCode !== null, 'the node to start', 30_000);
  if (!ready) throw new Error(`the node did not start: ${stderr}`);
  return node;
}

/** A SQLite file with one webhook subscription to `url`, made by a Herald that is closed again. */
async function prepareDatabase(url: string): Promise<{ database: string; adminKey: string }> {
  const database = tempDatabase();
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const herald = createHerald({
    database,
    adminKey,
    logLevel: 'silent',
    env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' },
    eventTypes: [loadTick],
    transports: [webhook()],
  });
  const { url: base } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const response = await fetch(`${base}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ transport: 'webhook', types: ['load.*'], consumer: 'acme', config: { url } }),
  });
  expect(response.status).toBe(201);
  await herald.close();
  return { database, adminKey };
}

/** The ids of the events the outbox of `database` records as delivered. */
async function deliveredInOutbox(database: string): Promise<Set<string>> {
  const store = await openStore(database);
  const [subscription] = await store.subscriptions.list();
  const delivered = await (await sqlOutbox(store)).list(subscription?.id as string, { status: 'delivered', limit: 10_000 });
  return new Set(delivered.map((delivery) => delivery.eventId));
}

describe('the durable outbox', () => {
  it('delivers every acknowledged event after a SIGKILL in the middle of delivering 1,000 events and a restart', async () => {
    const inbox = await startReceiver(() => ({ status: 200, delay: 5 }));
    const { database } = await prepareDatabase(inbox.url);

    const first = await startNode(database, { publish: 1000 });
    await waitFor(() => inbox.ids().size >= 300, '300 deliveries before the kill', 30_000);
    first.process.kill('SIGKILL');
    expect(await first.exited, first.stderr()).toEqual({ code: null, signal: 'SIGKILL' });
    // Requests the killed node wrote just before it died may still be arriving.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const receivedAtKill = inbox.ids();
    const requestsAtKill = inbox.requests.length;
    const recordedAtKill = await deliveredInOutbox(database);
    // Killed in the middle: publishing had finished, delivering had not.
    expect(first.acked).toHaveLength(1000);
    expect(receivedAtKill.size).toBeLessThan(1000);

    const second = await startNode(database);
    await waitFor(() => first.acked.every((id) => inbox.ids().has(id)), 'every acknowledged event after the restart', 40_000);
    second.process.kill('SIGTERM');
    expect(await second.exited, second.stderr()).toEqual({ code: 0, signal: null });

    const unique = inbox.ids();
    expect(unique.size).toBe(1000);
    expect([...unique].sort()).toEqual([...first.acked].sort());
    // At least once: only what the killed node sent (and had not recorded) may come again, and only once.
    const afterKill = inbox.requests.slice(requestsAtKill).map((request) => String(request.headers['webhook-id']));
    // (A second send after the restart comes only from an attempt that failed, e.g. timed out on a loaded machine.)
    expect(afterKill.length - new Set(afterKill).size).toBeLessThanOrEqual(second.failedAttempts);
    // What the killed node had recorded as delivered is never sent again; only its unrecorded sends may be.
    expect(afterKill.filter((id) => recordedAtKill.has(id))).toEqual([]);
    expect(recordedAtKill.size).toBeGreaterThan(0);
  }, 90_000);

  it("goes on with a replay whose node was killed with SIGKILL, and sends again what it held unsent, once their leases end", async () => {
    let stalled = false;
    const inbox = await startReceiver(() => (stalled ? { hang: true } : { status: 200 }));
    const { database } = await prepareDatabase(inbox.url);
    const first = await startNode(database, { publish: 1_500 });
    await waitFor(async () => (await deliveredInOutbox(database)).size === 1_500, 'every event delivered and recorded', 30_000);
    const before = inbox.requests.length;

    // The replay hands the node what it has room for, their rows left delivered; the endpoint takes nothing now.
    // It makes two batches of 500 and waits for the first to leave; the third (seq 1,001 on) only a node that takes it over makes.
    stalled = true;
    await first.replay();
    await waitFor(() => inbox.requests.length >= before + 8, 'replayed attempts in flight');
    first.process.kill('SIGKILL');
    expect(await first.exited, first.stderr()).toEqual({ code: null, signal: 'SIGKILL' });
    stalled = false;

    const second = await startNode(database);
    const replayed = () => new Set(inbox.requests.slice(before).map((request) => String(request.headers['webhook-id'])));
    await waitFor(() => first.acked.every((id) => replayed().has(id)), 'every event replayed after the kill', 40_000);
    second.process.kill('SIGTERM');
    expect(await second.exited, second.stderr()).toEqual({ code: 0, signal: null });
  }, 90_000);

  it('sends no attempt twice with two worker processes on one database', async () => {
    const inbox = await startReceiver(() => ({ status: 200 }));
    const { database, adminKey } = await prepareDatabase(inbox.url);
    // A lease far longer than any attempt, however loaded the machine: in normal operation none runs out.
    const workers = await Promise.all([startNode(database, { timeout: 10_000, lease: 30_000 }), startNode(database, { timeout: 10_000, lease: 30_000 })]);

    const publisher = createHerald({ database, adminKey, logLevel: 'silent', eventTypes: [loadTick] });
    onTestFinished(() => publisher.close());
    const published: string[] = [];
    for (let n = 0; n < 1000; n += 20) {
      const results = await publisher.bus.publishMany(Array.from({ length: 20 }, (_, i) => ({ type: 'load.tick', data: { n: n + i } })));
      published.push(...results.map(({ event }) => event.id));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(() => inbox.ids().size === 1000, 'every event delivered', 40_000);
    for (const worker of workers) worker.process.kill('SIGTERM');
    for (const worker of workers) expect(await worker.exited, worker.stderr()).toEqual({ code: 0, signal: null });

    expect([...inbox.ids()].sort()).toEqual(published.sort());
    // Every attempt succeeded (none was retried), and none was sent twice.
    expect(workers.map((worker) => worker.failedAttempts)).toEqual([0, 0]);
    expect(inbox.requests.length - inbox.ids().size).toBe(0);
    // Both processes did part of the work.
    expect(workers.map((worker) => worker.attempts > 0)).toEqual([true, true]);
    expect(workers[0]?.attempts + (workers[1]?.attempts as number)).toBe(1000);
  }, 90_000);
});
