import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineEventType, type HeraldEvent } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import { sse } from '@herald/sse';
import { startTestApp, waitFor } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import { freshDatabase } from '../../packages/core/src/sql/postgres.test-support.js';

const adminKey = `admin-${'r'.repeat(40)}`;

/**
 * The machine's PostgreSQL (a fresh database), or SQLite in memory. PostgreSQL prunes a partition at a time:
 * with partitions of 1,000 seqs, the limits of these tests fall on their ends.
 */
const databases: [string, () => Promise<{ database: string; logPartitionSize?: number }>][] = [
  ['SQLite', async () => ({ database: ':memory:' })],
  [
    'PostgreSQL',
    async () => {
      const { url, drop } = await freshDatabase();
      onTestFinished(drop);
      return { database: url, logPartitionSize: 1000 };
    },
  ],
];

/** An endpoint that answers 503 while it is `down`, and records the seqs it took once up. */
async function endpoint(): Promise<{ url: string; received: Set<number>; down: boolean }> {
  const state = { url: '', received: new Set<number>(), down: true };
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      if (state.down) return void response.writeHead(503).end();
      state.received.add((JSON.parse(body) as HeraldEvent).seq);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return state;
}

async function started(herald: Pick<Herald, 'listen' | 'close'>): Promise<string> {
  onTestFinished(() => herald.close());
  const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  return url;
}

async function api(url: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> & { data: HeraldEvent[] } };
}

/** The first message of type `reset` a WebSocket subscription `after` gets. */
async function websocketReset(url: string, after: number): Promise<Record<string, unknown>> {
  const socket = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${adminKey}` } });
  onTestFinished(() => socket.terminate());
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Record<string, unknown>;
      if (message.type === 'ready') socket.send(JSON.stringify({ type: 'subscribe', id: 's1', types: ['order.*'], after }));
      if (message.type === 'reset') resolve(message);
    });
  });
}

/** The `reset` frame of an SSE stream opened with `Last-Event-ID`, and the id of the first event after it. */
async function sseReset(url: string, lastEventId: number): Promise<{ reset: string; firstEventId: string }> {
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  const response = await fetch(`${url}/v1/stream?types=order.*`, {
    headers: { authorization: `Bearer ${adminKey}`, 'last-event-id': String(lastEventId) },
    signal: abort.signal,
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const frames = text.split('\n\n');
    const reset = frames.find((frame) => frame.includes('event: reset'));
    const firstEvent = frames.slice(frames.indexOf(reset as string) + 1, -1).find((frame) => frame.includes('event: order.'));
    if (reset && firstEvent) return { reset, firstEventId: /^id: (\d+)/m.exec(firstEvent)?.[1] as string };
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
}

describe.each(databases)('the log kept in bounds (issue 16, %s)', (_name, database) => {
  it('with HERALD_LOG_MAX_EVENTS=1000 after 3,000 publishes: reads start after 2,000, resumes reset, and a webhook that was down gets all it was owed', async () => {
    const hook = await endpoint();
    const herald = createHerald({
      ...(await database()),
      adminKey,
      logLevel: 'silent',
      env: { HERALD_LOG_MAX_EVENTS: '1000', HERALD_WEBHOOK_ALLOW_PRIVATE: '1', HERALD_WEBHOOK_RETRY_SCHEDULE: ['0', ...Array(120).fill('1')].join(',') },
      eventTypes: [defineEventType('order.created', z.object({ n: z.number() })), defineEventType('invoice.paid', z.object({ n: z.number() }))],
      transports: [webhook({ pollInterval: 50 }), websocket(), sse()],
    });
    const url = await started(herald);
    const subscribed = await api(url, 'POST', '/v1/subscriptions', { transport: 'webhook', types: ['invoice.paid'], consumer: 'acme', config: { url: hook.url } });
    expect(subscribed.status).toBe(201);

    // Orders, and among them an invoice every 100 events for the webhook.
    const owed: number[] = [];
    const publish = async (from: number, to: number) => {
      for (let n = from; n < to; n += 100) {
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) => herald.bus.publish({ type: i === 0 ? 'invoice.paid' : 'order.created', data: { n: n + i } })),
        );
        owed.push(results[0]?.event.seq as number);
      }
    };
    // The first 1,000 while the endpoint is up; the other 2,000 while it is down.
    hook.down = false;
    await publish(0, 1000);
    await waitFor(() => hook.received.size === 10, 'the first 10 invoices delivered', 30_000);
    hook.down = true;
    await publish(1000, 3000);
    expect(herald.bus.latest).toBe(3000);

    // The pruner would keep the newest 1,000, but it keeps every event from the first one the endpoint is owed.
    await waitFor(async () => (await herald.store.bounds()).oldest === 1001, 'pruning up to the first owed event', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect((await herald.store.bounds()).oldest).toBe(1001);

    // The endpoint comes back: it gets every event it was owed, then the log is pruned to its newest 1,000.
    hook.down = false;
    await waitFor(() => hook.received.size === owed.length, `${owed.length} webhook deliveries (got ${hook.received.size})`, 90_000);
    expect([...hook.received].sort((a, b) => a - b)).toEqual(owed);
    await waitFor(async () => (await herald.store.bounds()).oldest === 2001, 'pruning to the newest 1,000', 20_000);

    const page = await api(url, 'GET', '/v1/events?after=0&limit=10');
    expect(page.body.oldest).toBe(2001);
    expect(page.body.data[0]?.seq).toBe(2001);

    expect(await websocketReset(url, 1)).toEqual({ type: 'reset', id: 's1', reason: 'expired', after: 1, oldest: 2001 });
    const { reset, firstEventId } = await sseReset(url, 1);
    expect(reset).toContain('data: {"reason":"expired","latest":1,"oldest":2001}');
    expect(Number(firstEventId)).toBeGreaterThanOrEqual(2001);

    const metrics = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })).text();
    expect(metrics).toMatch(/^herald_log_oldest_seq 2001$/m);
    expect(metrics).toMatch(/^herald_log_events 1000$/m);
    expect(metrics).toMatch(/^herald_log_bytes [1-9]\d*$/m);
    expect(metrics).toMatch(/^herald_log_pruned_events_total 2000$/m);
  }, 180_000);

  it('compaction: 100 subjects × 50 updates each, then a replay from 0 holds exactly the 100 newest', async () => {
    const herald = createHerald({
      ...(await database()),
      adminKey,
      logLevel: 'silent',
      env: { HERALD_LOG_MAX_EVENTS: '10' },
      eventTypes: [defineEventType('order.created', z.object({ n: z.number() }))],
    });
    const url = await started(herald);
    const registered = await api(url, 'POST', '/v1/event-types', { name: 'account.updated', retention: '1h', compaction: 'subject' });
    expect(registered.status).toBe(201);
    expect(registered.body).toMatchObject({ name: 'account.updated', retention: '1h', compaction: 'subject' });
    const newest = new Map<string, number>();
    for (let round = 0; round < 50; round++) {
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, s) => herald.bus.publish({ type: 'account.updated', subject: `acct-${s}`, data: { round } })),
      );
      for (const { event } of results) newest.set(event.subject as string, event.seq);
    }
    for (let n = 0; n < 20; n++) await herald.publish({ type: 'order.created', data: { n } });
    await waitFor(async () => (await api(url, 'GET', '/v1/events?after=0&types=account.updated&limit=1000')).body.data.length === 100, 'compaction', 30_000);
    const replay = await api(url, 'GET', '/v1/events?after=0&types=account.updated&limit=1000');
    expect(replay.body.data.map((event) => event.seq)).toEqual([...newest.values()].sort((a, b) => a - b));
    expect(replay.body.data.every((event) => (event.data as { round: number }).round === 49)).toBe(true);
  }, 120_000);
});

describe('bad retention input (issue 16)', () => {
  it.each(['0', '-1d', 'abc', '1.5h', '30'])('HERALD_LOG_RETENTION=%s fails the start with a clear error', (value) => {
    expect(() => createHerald({ database: ':memory:', env: { HERALD_LOG_RETENTION: value } })).toThrow(/HERALD_LOG_RETENTION must be a whole number/);
  });

  it.each(['0', '999', '1.5', 'abc', '100000001'])('HERALD_LOG_PARTITION_SIZE=%s fails the start with a clear error', (value) => {
    expect(() => createHerald({ database: ':memory:', env: { HERALD_LOG_PARTITION_SIZE: value } })).toThrow(/HERALD_LOG_PARTITION_SIZE must be a/);
  });

  it.each(['0', '-1', 'abc'])('HERALD_LOG_MAX_EVENTS=%s fails the start with a clear error', (value) => {
    expect(() => createHerald({ database: ':memory:', env: { HERALD_LOG_MAX_EVENTS: value } })).toThrow(/HERALD_LOG_MAX_EVENTS must be a positive whole number/);
  });

  it('a type defined in code with a bad retention or compaction throws', () => {
    expect(() => defineEventType('a.b', z.unknown(), { retention: '0' })).toThrow(/retention/);
    expect(() => defineEventType('a.b', z.unknown(), { compaction: 'latest' as never })).toThrow(/compaction/);
  });

  it('POST /v1/event-types answers 422 for a bad retention or compaction, and registers nothing', async () => {
    const app = await startTestApp([]);
    onTestFinished(() => app.close());
    for (const [field, value] of [
      ['retention', '0'],
      ['retention', '-1d'],
      ['retention', 'abc'],
      ['compaction', 'latest'],
    ] as const) {
      const answer = await app.api('POST', '/v1/event-types', { name: 'bad.type', [field]: value });
      expect(answer.status, JSON.stringify(answer.body)).toBe(422);
      expect(answer.body.errors).toEqual([expect.objectContaining({ path: [field] })]);
    }
    expect((await app.api('GET', '/v1/event-types/bad.type')).status).toBe(404);
  });
});
