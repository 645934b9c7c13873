/**
 * What the multi-node tests run on: a fresh PostgreSQL database, Redis (the machine's, or a
 * redis-server of the test's own that it can kill and restart), and Herald nodes as child processes.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HeraldEvent } from '@herald/core';
import { waitFor as waitUntil } from '@herald/testkit';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';

const here = import.meta.dirname;
/** tsx's loader: the node is `node --import <loader>`, one process, so a signal hits the node itself. */
const tsxLoader = pathToFileURL(createRequire(resolve(here, '../package.json')).resolve('tsx')).href;
const nodeScript = resolve(here, 'multi-node-node.ts');

/** The machine's Redis. */
export const machineRedisUrl = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** testkit's `waitFor`, with room for three processes on a loaded machine. */
export const waitFor = (condition: () => boolean | Promise<boolean>, what: string, timeout = 30_000) => waitUntil(condition, what, timeout);

// A database of its own on the machine's PostgreSQL, shared with packages/core's tests (by path, as the redis-server below).
export { freshDatabase } from '../../packages/core/src/sql/postgres.test-support.js';

/** Fails loudly when the machine's Redis does not answer a PING. */
export async function checkMachineRedis(): Promise<void> {
  const { hostname, port } = new URL(machineRedisUrl);
  await new Promise<void>((done, fail) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) });
    const failed = (error: Error) => {
      socket.destroy();
      fail(new Error(`Redis is not reachable at ${machineRedisUrl}: ${error.message}`, { cause: error }));
    };
    socket.setTimeout(5_000, () => failed(new Error('no answer within 5 s')));
    socket.once('error', failed);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      if (data.toString().startsWith('+PONG')) done();
      else failed(new Error(`it answered ${JSON.stringify(data.toString())}`));
    });
  });
}

// Its own redis-server, shared with packages/redis's tests (by path: a test-support file is no package export).
export { freePort } from '../../packages/testkit/src/free-port.test-support.js';
export { type OwnRedis, ownRedis } from '../../packages/redis/src/own-redis.test-support.js';

/** A Herald node running as a child process. */
export interface NodeProcess {
  name: string;
  url: string;
  pid: number;
  /** Its webhook worker's id, as stored in the leases it takes. */
  workerId: string;
  /** The `application_name` of its PostgreSQL sessions (`pg_stat_activity`). */
  applicationName: string;
  /** Webhook attempts it reported, in order. */
  readonly attempts: readonly { deliveryId: string; outcome: string }[];
  /** What it printed on stderr, for failure messages. */
  readonly errors: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, and SIGKILL when it has not exited after `grace` ms. */
  stop(grace?: number): Promise<void>;
}

/** Starts a node; resolves once it listens. `env` configures it (see multi-node-node.ts); `script`: another node of the same protocol. */
export async function startNode(name: string, env: Record<string, string>, script = nodeScript): Promise<NodeProcess> {
  const applicationName = `herald-node-${name}-${randomBytes(4).toString('hex')}`;
  const child = spawn(process.execPath, ['--conditions=herald-source', '--import', tsxLoader, script], {
    cwd: here,
    env: { ...process.env, HERALD_LOG_LEVEL: process.env.HERALD_TEST_LOG_LEVEL ?? 'warn', PGAPPNAME: applicationName, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const attempts: { deliveryId: string; outcome: string }[] = [];
  let workerId = '';
  let output = '';
  let pending = '';
  const port = await new Promise<number>((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`node ${name} did not start within 90 s:\n${output}\n${errors}`));
    }, 90_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() as string;
      for (const line of lines) {
        const [what, first, second] = line.split(' ');
        if (what === 'attempt') attempts.push({ deliveryId: first as string, outcome: second as string });
        else if (what === 'worker') workerId = first as string;
        else if (what === 'listening') {
          clearTimeout(timer);
          done(Number(first));
        } else output += `${line}\n`;
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`node ${name} exited (${code ?? signal}) before listening:\n${output}\n${errors}`));
    });
  });
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    workerId,
    applicationName,
    attempts,
    get errors() {
      return errors;
    },
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    async stop(grace = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), grace);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** An HTTP endpoint on 127.0.0.1 that answers webhooks with 200 and records each request's `webhook-id` and arrival time. */
export interface WebhookReceiver {
  url: string;
  /** Arrival times (ms) of the requests for each webhook id. */
  readonly received: Map<string, number[]>;
  /** Requests received in all. */
  readonly requests: number;
  close(): Promise<void>;
}

/** `delay` ms before each answer, so that deliveries stay in flight for a while. */
export async function webhookReceiver(delay = 0): Promise<WebhookReceiver> {
  const received = new Map<string, number[]>();
  let requests = 0;
  const server = createHttpServer((request, response) => {
    const id = request.headers['webhook-id'];
    if (typeof id !== 'string') {
      response.writeHead(400).end();
      return;
    }
    requests++;
    const times = received.get(id) ?? [];
    times.push(Date.now());
    received.set(id, times);
    request.resume();
    request.on('end', () => setTimeout(() => response.writeHead(200).end(), delay));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** Starts the named nodes at once, in order; when one fails to start, stops the others and throws. */
export async function startNodes(named: readonly [name: string, env: Record<string, string>][]): Promise<NodeProcess[]> {
  const started = await Promise.allSettled(named.map(([name, env]) => startNode(name, env)));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)));
    throw failed.reason;
  }
  return started.map((result) => (result as PromiseFulfilledResult<NodeProcess>).value);
}

/** Calls the REST API of a node. */
export async function api(node: NodeProcess, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** What a publisher was told: the event's id and seq. */
export interface Published {
  id: string;
  seq: number;
}

/**
 * Publishes `count` events on `node` through the REST API, `concurrency` at a time, and returns what
 * each publish answered. Any publish that does not succeed fails the whole call.
 */
export async function publishMany(
  node: NodeProcess,
  adminKey: string,
  {
    count,
    concurrency = 8,
    type = 'order.created',
    into = [],
  }: { count: number; concurrency?: number; type?: string; /** Filled as publishes succeed, to watch progress. */ into?: Published[] },
): Promise<Published[]> {
  const published = into;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const n = next++;
      const id = `evt_${node.name}_${n}_${randomBytes(4).toString('hex')}`;
      const response = await api(node, adminKey, 'POST', '/v1/events', { type, id, data: { node: node.name, n } });
      if (response.status !== 202) throw new Error(`publishing ${id} on ${node.name} answered ${response.status}: ${JSON.stringify(response.body)}`);
      published.push({ id: response.body.id, seq: response.body.seq });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return published;
}

/** A WebSocket client speaking herald.v1 with one subscription, collecting the events it receives. */
export interface SocketClient {
  events: HeraldEvent[];
  close(): void;
}

/** `after`: resume after that `seq`, as a client does on another node when its own is gone. */
export async function socketClient(node: NodeProcess, key: string, types: string[], after?: number): Promise<SocketClient> {
  const socket = new WebSocket(`${node.url.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
  const events: HeraldEvent[] = [];
  await new Promise<void>((done, fail) => {
    socket.once('error', fail);
    socket.once('close', (code, reason) => fail(new Error(`the WebSocket closed with ${code} ${reason.toString()}`)));
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; event?: HeraldEvent };
      if (message.type === 'ready') socket.send(JSON.stringify({ type: 'subscribe', id: 'multi-node', types, ...(after !== undefined ? { after } : {}) }));
      else if (message.type === 'subscribed') done();
      else if (message.type === 'event') events.push(message.event as HeraldEvent);
      else if (message.type === 'ping') socket.send(JSON.stringify({ type: 'pong' }));
    });
  });
  return { events, close: () => socket.close() };
}

/** An EventSource on the SSE stream, collecting the events it receives. */
export interface StreamClient {
  events: HeraldEvent[];
  close(): void;
}

/** `after`: resume after that `seq` (as `Last-Event-ID`), as a client does on another node when its own is gone. */
export async function streamClient(node: NodeProcess, key: string, types: string[], after?: number): Promise<StreamClient> {
  const resume: Record<string, string> = after !== undefined ? { 'last-event-id': String(after) } : {};
  const source = new EventSource(`${node.url}/v1/stream?types=${encodeURIComponent(types.join(','))}`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${key}`, ...resume } }),
  });
  const events: HeraldEvent[] = [];
  const take = (message: MessageEvent) => events.push(JSON.parse(message.data as string) as HeraldEvent);
  for (const type of ['order.created', 'order.paid']) source.addEventListener(type, take);
  await new Promise<void>((done, fail) => {
    source.addEventListener('open', () => done(), { once: true });
    source.addEventListener('error', (error) => fail(new Error(`the EventSource failed: ${(error as { message?: string }).message}`)), { once: true });
  });
  return { events, close: () => source.close() };
}

/** Checks that `received` holds every published event exactly once, in `seq` order; returns what is wrong, or nothing. */
export function exactlyOnceInOrder(received: readonly HeraldEvent[], published: readonly Published[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  for (const event of received) seen.set(event.id, (seen.get(event.id) ?? 0) + 1);
  const duplicates = [...seen].filter(([, times]) => times > 1);
  if (duplicates.length > 0) problems.push(`${duplicates.length} events received more than once, e.g. ${duplicates[0]?.[0]}`);
  const missing = published.filter((event) => !seen.has(event.id));
  if (missing.length > 0) problems.push(`${missing.length} events never received, e.g. ${missing[0]?.id} (seq ${missing[0]?.seq})`);
  const seqOf = new Map(published.map((event) => [event.id, event.seq]));
  const wrongSeq = received.filter((event) => seqOf.has(event.id) && seqOf.get(event.id) !== event.seq);
  if (wrongSeq.length > 0) problems.push(`${wrongSeq.length} events arrived with another seq than publishing returned`);
  for (let i = 1; i < received.length; i++) {
    if ((received[i]?.seq as number) <= (received[i - 1]?.seq as number)) {
      problems.push(`seq ${received[i]?.seq} arrived after ${received[i - 1]?.seq}`);
      break;
    }
  }
  return problems;
}
