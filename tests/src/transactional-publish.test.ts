/**
 * Issue 22: publishing in the app's own transaction, end to end, on SQLite and on PostgreSQL. The shop
 * of transactional-orders.ts runs with Herald in a process of its own; a WebSocket client and a webhook
 * endpoint receive what it publishes.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HeraldSocket } from '@herald/client';
import type { HeraldEvent } from '@herald/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { tempFolder } from '../../packages/core/src/temp-folder.test-support.js';
import { api, freshDatabase, type NodeProcess, startNode, waitFor, webhookReceiver } from './multi-node-cluster.js';

const here = import.meta.dirname;
const shopNode = resolve(here, 'transactional-orders-node.ts');
const tsxLoader = pathToFileURL(createRequire(resolve(here, '../package.json')).resolve('tsx')).href;

const backends: { name: string; database(): Promise<string> }[] = [
  {
    name: 'SQLite',
    async database() {
      const dir = tempFolder();
      return join(dir, 'shop.db');
    },
  },
  {
    name: 'PostgreSQL',
    async database() {
      const { url, drop } = await freshDatabase();
      onTestFinished(drop);
      return url;
    },
  },
];

async function shop(env: Record<string, string>): Promise<NodeProcess> {
  const node = await startNode('shop', env, shopNode);
  onTestFinished(() => node.stop());
  return node;
}

async function order(node: NodeProcess, body: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const response = await fetch(`${node.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

/** Runs the shop with `SHOP_ORDER_THEN_KILL`: the id of the event it committed, once it has died of SIGKILL. */
async function orderThenKill(env: Record<string, string>, orderId: string): Promise<string> {
  const child = spawn(process.execPath, ['--conditions=herald-source', '--import', tsxLoader, shopNode], {
    cwd: here,
    env: { ...process.env, HERALD_LOG_LEVEL: 'warn', ...env, SHOP_ORDER_THEN_KILL: orderId },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const signal = await new Promise<NodeJS.Signals | null>((done) => child.once('exit', (_code, signal) => done(signal)));
  expect(signal, output).toBe('SIGKILL');
  const committed = /^committed (\S+)$/m.exec(output);
  expect(committed, output).not.toBeNull();
  return committed?.[1] as string;
}

describe.each(backends)('an order and its event in one transaction, on $name', ({ database }) => {
  it(
    'commit delivers over WebSocket and webhook; a rollback or invalid data stores and delivers nothing; kill -9 after the commit delivers on restart',
    async () => {
      const adminKey = `hk_admin_${randomBytes(12).toString('hex')}`;
      const env = { HERALD_DATABASE: await database(), HERALD_ADMIN_KEY: adminKey };
      const receiver = await webhookReceiver();
      onTestFinished(() => receiver.close());
      const node = await shop(env);

      const key = await api(node, adminKey, 'POST', '/v1/keys', { role: 'consumer', consumer: 'shop-ui' });
      expect(key.status).toBe(201);
      const subscription = await api(node, adminKey, 'POST', '/v1/subscriptions', {
        transport: 'webhook',
        types: ['order.*'],
        config: { url: receiver.url },
        consumer: 'shop-ui',
      });
      expect(subscription.status).toBe(201);
      const socket = new HeraldSocket({ url: `${node.url}/v1/ws`, token: key.body.key as string, WebSocket });
      onTestFinished(() => socket.close());
      const overSocket: HeraldEvent[] = [];
      socket.subscribe(['order.created'], (event) => void overSocket.push(event as HeraldEvent), { after: 0 });
      // A first order, to see both receivers working.
      const probe = await order(node, { orderId: 'probe', sku: 'A', quantity: 1, total: 1 });
      expect(probe.status).toBe(201);
      await waitFor(() => overSocket.length === 1 && receiver.received.has(probe.body.eventId), 'the probe order over WebSocket and webhook');

      // Commit: the order and its event.
      const placed = await order(node, { orderId: 'o1', sku: 'A', quantity: 2, total: 20 });
      expect(placed.status).toBe(201);
      // Rolled back after the publish: out of stock.
      const refused = await order(node, { orderId: 'o2', sku: 'A', quantity: 50, total: 500 });
      expect(refused).toEqual({ status: 409, body: { title: 'Out of stock', orderId: 'o2', sku: 'A' } });
      // An order id already placed: turned down, the stored order unchanged.
      expect(await order(node, { orderId: 'o1', sku: 'A', quantity: 1, total: 99 })).toEqual({ status: 409, body: { title: 'Order already placed', orderId: 'o1', sku: 'A' } });
      // Invalid event data: the publish throws, the transaction rolls back.
      const invalid = await order(node, { orderId: 'o3', sku: 'A', quantity: 1, total: -1 });
      expect(invalid.status).toBe(422);
      expect(invalid.body.type).toBe('urn:herald:problem:validation-failed');
      expect(invalid.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: ['data', 'total'] })]));
      const last = await order(node, { orderId: 'o4', sku: 'A', quantity: 1, total: 10 });
      expect(last.status).toBe(201);

      await waitFor(() => overSocket.length === 3 && receiver.received.has(last.body.eventId), 'o1 and o4 over WebSocket and webhook');
      expect(overSocket.map((event) => (event.data as { orderId: string }).orderId)).toEqual(['probe', 'o1', 'o4']);
      expect(overSocket.map((event) => event.id)).toEqual([probe.body.eventId, placed.body.eventId, last.body.eventId]);
      expect([...receiver.received.keys()].sort()).toEqual([probe.body.eventId, placed.body.eventId, last.body.eventId].sort());
      const orders = await fetch(`${node.url}/orders`).then((response) => response.json());
      expect(orders.map((row: { id: string }) => row.id)).toEqual(['o1', 'o4', 'probe']);
      expect(orders[0]).toMatchObject({ id: 'o1', total: 20 });
      const log = await api(node, adminKey, 'GET', '/v1/events?after=0');
      expect(log.body.data.map((event: HeraldEvent) => (event.data as { orderId: string }).orderId)).toEqual(['probe', 'o1', 'o4']);

      // kill -9 right after a commit: the event is in the log, and delivered once the shop is back.
      await node.stop();
      const killedEvent = await orderThenKill(env, 'o5');
      expect(receiver.received.has(killedEvent)).toBe(false);
      const restarted = await shop(env);
      await waitFor(() => receiver.received.has(killedEvent), 'the event committed before kill -9, by webhook after the restart');
      const after = await fetch(`${restarted.url}/orders`).then((response) => response.json());
      expect(after.map((row: { id: string }) => row.id)).toContain('o5');
      expect(receiver.received.get(placed.body.eventId)).toHaveLength(1);
    },
    180_000,
  );
});

/** An app's own connection to Herald's SQLite file, in another process, set up as the guide says (busy_timeout, `begin immediate`): it restocks. */
const restocker = `
const Database = require(process.argv[1]);
const db = new Database(process.argv[2]);
db.pragma('busy_timeout = 10000');
const restock = db.prepare("update stock set available = available + 1 where sku = 'A'");
let restocked = 0;
for (let n = 1; n <= Number(process.argv[3]); n++) {
  db.exec('begin immediate');
  restocked += restock.run().changes;
  db.exec('commit');
}
process.stdout.write(String(restocked));
db.close();
`;

describe('SQLite: an app connection of its own, from another process (docs/guides/transactional-publish.md)', () => {
  it('writes while Herald and the app’s transactions on herald.database publish, and neither gets "database is locked"', async () => {
    const database = (await backends[0]?.database()) as string;
    const adminKey = `hk_admin_${randomBytes(12).toString('hex')}`;
    const node = await shop({ HERALD_DATABASE: database, HERALD_ADMIN_KEY: adminKey });
    const betterSqlite3 = createRequire(resolve(here, '../../packages/core/package.json')).resolve('better-sqlite3');

    const writer = spawn(process.execPath, ['-e', restocker, betterSqlite3, database, '400'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let restocked = '';
    let failure = '';
    writer.stdout.on('data', (chunk: Buffer) => (restocked += chunk.toString()));
    writer.stderr.on('data', (chunk: Buffer) => (failure += chunk.toString()));
    // 'close' rather than 'exit': what it printed last is read by then.
    const exited = new Promise<number | null>((done) => writer.once('close', done));

    // Each order is a transaction of the app's on herald.database that publishes; the stock may run out (409) if the restocker falls behind.
    const placed: { status: number; body: any }[] = [];
    for (let n = 0; n < 60; n++) placed.push(await order(node, { orderId: `o${n}`, sku: 'A', quantity: 1, total: 1 }));
    expect(await exited, failure).toBe(0);
    expect(restocked).toBe('400');
    expect(placed.filter((answer) => answer.status !== 201 && answer.status !== 409)).toEqual([]);
    const published = placed.filter((answer) => answer.status === 201).map((answer) => answer.body.eventId);
    expect(published.length).toBeGreaterThan(5);
    const log = await api(node, adminKey, 'GET', '/v1/events?after=0&limit=1000');
    expect(log.body.data.map((event: HeraldEvent) => event.id).sort()).toEqual(published.sort());
  }, 120_000);
});
