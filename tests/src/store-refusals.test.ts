import { randomBytes } from 'node:crypto';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineEventType, sqliteStore } from '@herald/core';
import { createHerald, type HeraldOptions } from '@herald/server';
import { recordingLogger, restClient, testEventTypes, waitFor } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket } from 'ws';
import { z } from 'zod';
// By path: core's test support (which has better-sqlite3 at hand).
import { freshDatabase } from '../../packages/core/src/sql/postgres.test-support.js';
import { holdSqliteLock, openSqlite } from '../../packages/core/src/sql/sqlite.test-support.js';
import { cpuWaitMs } from '../../packages/core/src/stall.test-support.js';
import { tempDatabase } from '../../packages/core/src/temp-folder.test-support.js';

const blobType = defineEventType('blob.stored', z.object({ text: z.string() }));

async function start(options: Partial<HeraldOptions>) {
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const herald = createHerald({ adminKey, env: {}, eventTypes: [...testEventTypes, blobType], ...options });
  onTestFinished(() => herald.close());
  const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const baseUrl = `http://127.0.0.1:${port}`;
  return { baseUrl, adminKey, ...restClient(baseUrl, adminKey) };
}

/** A webhook receiver that answers 200, or holds its answers back while `holding`. */
async function startReceiver() {
  const ids: string[] = [];
  const held: ServerResponse[] = [];
  let holding = false;
  const server = createServer((req, res) => {
    req.resume().on('end', () => {
      ids.push(String(req.headers['webhook-id']));
      if (holding) held.push(res);
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    ids,
    hold() {
      holding = true;
    },
    answerHeld() {
      holding = false;
      for (const res of held.splice(0)) res.end();
    },
    held: () => held.length,
  };
}

async function timed<T>(work: () => Promise<T>): Promise<T & { took: number }> {
  const started = performance.now();
  const result = await work();
  return { ...result, took: performance.now() - started };
}

describe('the server while another process holds the SQLite write lock (issue 13)', () => {
  it('answers /healthz within 100 ms throughout, refuses writes with 503 and Retry-After, keeps reading, and loses or repeats nothing after', async () => {
    const path = tempDatabase();
    const logger = recordingLogger();
    const receiver = await startReceiver();
    const { baseUrl, api, request } = await start({ database: path, logger, transports: [webhook({ allowPrivate: true })] });
    const publish = (n: number, id?: string) => request('POST', '/v1/events', { type: 'order.created', data: { n }, ...(id ? { id } : {}) });
    const subscribed = await api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], consumer: 'acme', config: { url: receiver.url } });
    expect(subscribed.status).toBe(201);
    const delivered = async () =>
      (await api('GET', `/v1/subscriptions/${subscribed.body.id}/deliveries?limit=100`)).body.data.filter((d: { status: string }) => d.status === 'delivered').length;

    const acked: string[] = [];
    for (let n = 0; n < 5; n++) {
      const { status, body } = await publish(n);
      expect(status).toBe(202);
      acked.push(body.id);
    }
    await waitFor(async () => (await delivered()) === 5, 'the first deliveries');
    // Attempts in flight as the lock is taken: their outcomes are committed while it is held.
    receiver.hold();
    for (let n = 5; n < 10; n++) acked.push((await publish(n)).body.id);
    await waitFor(() => receiver.held() === 5, 'the held deliveries');

    const holder = await holdSqliteLock(path);
    onTestFinished(() => holder.kill());
    const lockedAt = performance.now();
    receiver.answerHeld();

    // How long each /healthz took, less the time the process waited for a CPU meanwhile (the machine's delay, not Herald's).
    const healthz: number[] = [];
    let slowestAsMeasured = 0;
    const sampling = (async () => {
      while (performance.now() - lockedAt < 10_000) {
        const waited = cpuWaitMs();
        const { status, took } = await timed(async () => ({ status: (await fetch(`${baseUrl}/healthz`)).status }));
        expect(status).toBe(200);
        healthz.push(took - (cpuWaitMs() - waited));
        slowestAsMeasured = Math.max(slowestAsMeasured, took);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    const refused: string[] = [];
    const refusals: { status: number; type: string; retryAfter: string | null; took: number }[] = [];
    while (performance.now() - lockedAt < 9_000) {
      const id = `evt_refused_${refused.length}`;
      refused.push(id);
      const { status, headers, body, took } = await timed(() => publish(100, id));
      refusals.push({ status, type: body.type, retryAfter: headers.get('retry-after'), took });
      // The other writes are refused as well; reads go on (WAL).
      const writes = await Promise.all([
        api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], consumer: 'other', config: { url: receiver.url } }),
        api('POST', '/v1/keys', { role: 'consumer', consumer: 'other' }),
      ]);
      expect(writes.map((write) => write.status)).toEqual([503, 503]);
      const read = await api('GET', '/v1/events?after=0&limit=100');
      expect(read.status).toBe(200);
      expect(read.body.data.map((event: { id: string }) => event.id)).toEqual(acked);
      expect((await fetch(`${baseUrl}/readyz`)).status).toBe(503);
      // The webhook outbox cannot record the attempts answered during the lock, and keeps them.
      expect(await delivered()).toBe(5);
    }
    await sampling;
    await holder.release();

    expect(refusals.length).toBeGreaterThanOrEqual(3);
    for (const refusal of refusals) {
      expect(refusal).toMatchObject({ status: 503, type: 'urn:herald:problem:store-locked', retryAfter: '1' });
      // It waited for the lock (1 s by default) and then answered: never for seconds.
      expect(refusal.took).toBeLessThan(2_500);
    }
    expect(healthz.length).toBeGreaterThanOrEqual(100);
    expect(Math.max(...healthz), `the slowest of ${healthz.length} /healthz answers, in ms (${slowestAsMeasured} as measured)`).toBeLessThan(100);
    const storeLog = logger.entries.filter((line) => line.message?.startsWith('the store refuses writes'));
    expect(storeLog[0]).toMatchObject({ level: 'warn', fields: { refusal: 'locked', err: { code: 'SQLITE_BUSY' } } });

    // Once the lock is gone: ready, publishing works, every event is delivered, nothing twice.
    await waitFor(async () => (await fetch(`${baseUrl}/readyz`)).status === 200, '/readyz to be ready again');
    for (let n = 10; n < 15; n++) {
      const { status, body } = await publish(n);
      expect(status).toBe(202);
      acked.push(body.id);
    }
    const retried = await publish(100, refused[0]);
    expect(retried.status).toBe(202);
    acked.push(retried.body.id);
    await waitFor(() => receiver.ids.length >= acked.length, 'every delivery', 15_000);
    const log = await api('GET', '/v1/events?after=0&limit=100');
    expect(log.body.data.map((event: { id: string }) => event.id)).toEqual(acked);
    expect(receiver.ids.sort()).toEqual([...acked].sort());
    await waitFor(async () => (await delivered()) === acked.length, 'every delivery recorded');
  }, 60_000);
});

describe('the server on a full SQLite database (issue 13)', () => {
  it("answers publish with 503 and Retry-After, is not ready until writes succeed again, and logs SQLite's error", async () => {
    const path = tempDatabase();
    const database = openSqlite(path);
    const logger = recordingLogger();
    const { baseUrl, api, request } = await start({ store: sqliteStore({ database, logger }), logger });
    const publish = (text: string) => request('POST', '/v1/events', { type: 'blob.stored', data: { text } });
    const acked = [(await publish('a')).body.id, (await publish('b')).body.id];
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);

    // Genuinely full: SQLite may not grow the file past the pages it has now.
    const pages = database.pragma('page_count', { simple: true }) as number;
    database.pragma(`max_page_count = ${pages}`);
    const big = 'x'.repeat(32 * 1024);
    const refused = await publish(big);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toMatchObject({ type: 'urn:herald:problem:store-full', status: 503 });
    expect(JSON.stringify(refused.body)).not.toMatch(/SQLITE|sqlite/);
    const logged = logger.entries.filter((line) => line.level === 'error');
    expect(logged).toEqual([expect.objectContaining({ fields: expect.objectContaining({ err: expect.objectContaining({ code: 'SQLITE_FULL', message: 'database or disk is full' }) }) })]);

    for (let i = 0; i < 3; i++) {
      const ready = await fetch(`${baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ type: 'urn:herald:problem:not-ready' });
    }
    expect((await api('GET', '/v1/events?after=0')).body.data.map((event: { id: string }) => event.id)).toEqual(acked);

    database.pragma(`max_page_count = ${pages * 100}`);
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
    const stored = await publish(big);
    expect(stored.status).toBe(202);
    expect((await api('GET', '/v1/events?after=0')).body.data.map((event: { id: string }) => event.id)).toEqual([...acked, stored.body.id]);
  });
});

describe('the server on PostgreSQL when a read loses its connection', () => {
  it('answers the read with 503 and Retry-After, refuses a WebSocket subscribe as unavailable, stays ready, and reads again after', async () => {
    const database = await freshDatabase();
    onTestFinished(() => database.drop());
    const logger = recordingLogger();
    const { baseUrl, adminKey, api, request } = await start({ database: database.url, logger, transports: [websocket()] });
    const subscription = await api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'], consumer: 'acme' });
    expect(subscription.status).toBe(201);
    const published = await api('POST', '/v1/events', { type: 'order.created', data: { n: 1 } });
    expect(published.status).toBe(202);
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    onTestFinished(() => admin.end());

    // `read` waits for a lock another session holds on `table`, and PostgreSQL ends the connections waiting for it.
    const endedUnder = async <T>(table: string, read: () => Promise<T>): Promise<T> => {
      await admin.query('begin');
      await admin.query(`lock table ${table} in access exclusive mode`);
      const reading = read();
      // pg_locks, not pg_stat_activity, whose figures stay as first read for the rest of a transaction.
      const waiting = 'select pid from pg_locks where not granted and relation = $1::regclass';
      await waitFor(async () => ((await admin.query(waiting, [table])).rowCount ?? 0) > 0, `a read waiting for ${table}`);
      await admin.query(`select pg_terminate_backend(pid) from (${waiting}) as waiting`, [table]);
      const answer = await reading;
      await admin.query('rollback');
      return answer;
    };
    for (const [table, path] of [
      ['herald_subscriptions', '/v1/subscriptions'],
      ['herald_events', '/v1/events?after=0'],
    ] as const) {
      const refused = await endedUnder(table, () => request('GET', path));
      expect(refused.status, path).toBe(503);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.body).toMatchObject({ type: 'urn:herald:problem:store-unavailable', status: 503 });
      expect(JSON.stringify(refused.body)).not.toMatch(/terminat|57P01/);
    }

    const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${adminKey}` } });
    onTestFinished(() => socket.close());
    const messages: { type: string; id?: string; code?: string }[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    await waitFor(() => messages.some((message) => message.type === 'ready'), 'the WebSocket to be ready');
    const subscribe = (id: string) => socket.send(JSON.stringify({ type: 'subscribe', id, subscription: subscription.body.id }));
    const answerTo = async (id: string) => {
      await waitFor(() => messages.some((message) => message.id === id && message.type !== 'event'), `the answer to subscribe ${id}`);
      return messages.find((message) => message.id === id && message.type !== 'event');
    };
    const refused = await endedUnder('herald_subscriptions', () => {
      subscribe('s1');
      return answerTo('s1');
    });
    expect(refused).toMatchObject({ type: 'error', code: 'unavailable' });
    expect(socket.readyState).toBe(WebSocket.OPEN);

    // Nothing was lost or changed, the store takes writes all along, and the same reads answer.
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
    // A refused read is answered, not logged as an error (as a 500 is), and is no refused write.
    expect(logger.entries.filter((line) => line.level === 'error' || line.message?.startsWith('the store refuses writes'))).toEqual([]);
    expect((await api('GET', '/v1/subscriptions')).body.data.map((found: { id: string }) => found.id)).toEqual([subscription.body.id]);
    expect((await api('GET', '/v1/events?after=0')).body.data.map((event: { id: string }) => event.id)).toEqual([published.body.id]);
    subscribe('s2');
    expect(await answerTo('s2')).toMatchObject({ type: 'subscribed' });
    // Each ended connection is logged as a warning with PostgreSQL's error, and then once as the next statements succeed.
    const refusedLine = { level: 'warn', message: 'the database refused a statement', fields: { component: 'store', err: { code: '57P01' } } };
    const worksAgainLine = { level: 'info', message: expect.stringMatching(/^the database refused a statement (once|\d+ times); it works again$/) };
    const refusedStatements = logger.entries.filter((line) => line.message?.startsWith('the database refused a statement'));
    expect(refusedStatements.length).toBeGreaterThanOrEqual(2);
    expect(refusedStatements.length % 2).toBe(0);
    for (const [at, line] of refusedStatements.entries()) expect(line).toMatchObject(at % 2 === 0 ? refusedLine : worksAgainLine);
  });
});

describe('the server on a SQLite file damaged under it', () => {
  it.each([
    ['cut to its first page', 1],
    ['emptied', 0],
  ])('answers reads of a file %s with 503 and Retry-After, stays live, and reads as before once the file is back', async (_, pages) => {
    const path = tempDatabase();
    const logger = recordingLogger();
    const { baseUrl, api, request } = await start({ database: path, logger, transports: [websocket()] });
    for (let n = 0; n < 3; n++) expect((await api('POST', '/v1/events', { type: 'order.created', data: { n } })).status).toBe(202);
    const subscription = await api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'], consumer: 'acme' });
    expect(subscription.status).toBe(201);
    const reads = ['/v1/events?after=0', '/v1/subscriptions', `/v1/subscriptions/${subscription.body.id}`];
    const readAll = () => Promise.all(reads.map((read) => api('GET', read)));
    const before = await readAll();
    expect(before.map((read) => read.status)).toEqual([200, 200, 200]);
    expect(before[0]?.body.data).toHaveLength(3);

    // As core's test of the store does: another connection moves the WAL into the file (so the server's
    // connection reads the file, not the pages it has cached), and then the file loses its pages.
    const other = openSqlite(path);
    onTestFinished(() => void other.close());
    other.pragma('wal_checkpoint(TRUNCATE)');
    const whole = readFileSync(path);
    truncateSync(path, pages * (other.pragma('page_size', { simple: true }) as number));
    const damaged = readFileSync(path);

    for (const read of reads) {
      const refused = await request('GET', read);
      expect({ read, status: refused.status, retryAfter: refused.headers.get('retry-after') }).toEqual({ read, status: 503, retryAfter: '1' });
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.body).toMatchObject({ type: 'urn:herald:problem:store-unavailable', status: 503 });
      expect(JSON.stringify(refused.body)).not.toMatch(/SQLITE|sqlite|malformed/);
    }
    // Live, and ready (a refused read is no refused write); the refusals are answered, not logged as errors
    // (a 500 logs "unexpected error").
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
    expect(logger.entries.filter((line) => line.level === 'error')).toEqual([]);
    // Logged once as a warning, with SQLite's error, however many reads (and readiness checks) come after.
    const refusedStatements = () => logger.entries.filter((line) => line.message?.startsWith('the database refused a statement'));
    const sqliteError = { code: expect.stringMatching(/^SQLITE_(CORRUPT|NOTADB)/) };
    expect(refusedStatements()).toMatchObject([{ level: 'warn', message: 'the database refused a statement', fields: { component: 'store', err: sqliteError } }]);
    // Nothing was written to the damaged file.
    expect(readFileSync(path).equals(damaged)).toBe(true);

    // The file back as it was, and a checkpoint of the other connection's, by whose WAL index the server's
    // connection knows its cache is stale: the same reads answer as before.
    writeFileSync(path, whole);
    other.pragma('wal_checkpoint(TRUNCATE)');
    expect(await readAll()).toEqual(before);
    expect(other.pragma('integrity_check', { simple: true })).toBe('ok');
    // And once when the database takes statements again.
    expect(refusedStatements().map(({ level, message }) => ({ level, message }))).toEqual([
      { level: 'warn', message: 'the database refused a statement' },
      { level: 'info', message: expect.stringMatching(/^the database refused a statement \d+ times; it works again$/) },
    ]);
  });
});
