import { sse } from '@herald/sse';
import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { envConfiguredNode, spawnHeraldNode } from '../../packages/testkit/src/herald-node.test-support.js';
import { websocket } from '@herald/websocket';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';

/** An SSE stream of `app`'s, open or refused: its status, `Retry-After` and problem; closed when the test finishes. */
async function openStream(app: { baseUrl: string }, key: string) {
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  const response = await fetch(`${app.baseUrl}/v1/stream?types=order.*`, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal });
  const problem = response.status === 200 ? undefined : await response.json();
  return { status: response.status, retryAfter: response.headers.get('retry-after'), connection: response.headers.get('connection'), problem, close: () => abort.abort() };
}

/** A WebSocket with `bearer` on the upgrade or `token` in an auth message: ready, refused (status, `Retry-After`), or closed. */
function openSocket(app: TestApp, credential: { bearer?: string; token?: string }) {
  return new Promise<{ ready?: true; refused?: number; retryAfter?: string; connectionHeaders?: number; closed?: { code: number; reason: string } }>((resolve) => {
    const socket = new WebSocket(`${app.baseUrl.replace(/^http/, 'ws')}/v1/ws`, 'herald.v1', credential.bearer ? { headers: { authorization: `Bearer ${credential.bearer}` } } : {});
    onTestFinished(() => socket.terminate());
    socket.on('unexpected-response', (_request, response) => {
      response.resume();
      const connectionHeaders = response.rawHeaders.filter((field, n) => n % 2 === 0 && field.toLowerCase() === 'connection').length;
      resolve({ refused: response.statusCode ?? 0, retryAfter: String(response.headers['retry-after']), connectionHeaders });
    });
    socket.on('error', () => {});
    socket.on('open', () => credential.token && socket.send(JSON.stringify({ type: 'auth', token: credential.token })));
    socket.on('message', (data) => JSON.parse(String(data)).type === 'ready' && resolve({ ready: true }));
    socket.on('close', (code, reason) => resolve({ closed: { code, reason: String(reason) } }));
  });
}

describe('the connections a node holds in all (maxConnections, HERALD_MAX_CONNECTIONS)', () => {
  it('refuses one more, whatever its key and transport, with 503 and Retry-After, until one closes', async () => {
    const app = await startTestApp([websocket(), sse()], { env: { HERALD_MAX_CONNECTIONS: '2' } });
    onTestFinished(() => app.close());
    const [a, b, c] = [await app.consumerKey('a'), await app.consumerKey('b'), await app.consumerKey('c')];
    const first = await openStream(app, a);
    expect(first.status).toBe(200);
    expect(await openSocket(app, { bearer: b })).toEqual({ ready: true });

    const refused = await openStream(app, c);
    // Its connection closes with the answer: a refused client does not keep one of the server's files.
    expect(refused).toMatchObject({ status: 503, retryAfter: '5', connection: 'close', problem: { type: 'urn:herald:problem:node-at-capacity', status: 503 } });
    expect(refused.problem.detail).toBe('This server holds as many open connections as it allows (2); try again later, or another node');
    expect(await openSocket(app, { bearer: c })).toEqual({ refused: 503, retryAfter: '5', connectionHeaders: 1 });
    expect(await openSocket(app, { token: c })).toEqual({ closed: { code: 1013, reason: refused.problem.detail } });
    // The REST API is not a long-lived connection: it answers.
    expect((await app.api('GET', '/v1/subscriptions', undefined, c)).status).toBe(200);

    first.close();
    await waitFor(async () => (await openStream(app, c)).status === 200, 'a slot once the first stream closed');
  });

  it("holds, unless told, as many as the process's open-files limit leaves room for: one more is told to come back, not dropped", async () => {
    const adminKey = 'connection-limit-test-admin-key-0123456789';
    const env = { HERALD_DATABASE: ':memory:', HERALD_ADMIN_KEY: adminKey, HERALD_LOG_LEVEL: 'warn', HERALD_MAX_CONNECTIONS_PER_KEY: '1000' };
    // 300 open files leave room for 200 connections: the other 100 for the process's own files and the requests of the moment.
    const node = await spawnHeraldNode(envConfiguredNode, [], env, { openFiles: 300 }).started;
    const key = await node.consumerKey('acme');
    const streams = [];
    for (let n = 0; n < 200; n++) streams.push(await openStream(node, key));
    expect(streams.filter((stream) => stream.status === 200)).toHaveLength(200);
    const refused = await openStream(node, key);
    expect(refused).toMatchObject({ status: 503, retryAfter: '5', problem: { type: 'urn:herald:problem:node-at-capacity' } });
    expect(refused.problem.detail).toBe('This server holds as many open connections as it allows (200); try again later, or another node');
    streams[0]?.close();
    await waitFor(async () => (await openStream(node, key)).status === 200, 'a slot once a stream closed');
  }, 30_000);

  it('holds no other limit in all unless told, and refuses one that is not a whole number of at least 1', async () => {
    const app = await startTestApp([sse()], { maxConnectionsPerKey: 5 });
    onTestFinished(() => app.close());
    const streams = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map(async (consumer) => openStream(app, await app.consumerKey(consumer))));
    expect(streams.map((stream) => stream.status)).toEqual([200, 200, 200, 200, 200, 200]);
    for (const value of ['0', 'many', '2.5']) await expect(startTestApp([], { env: { HERALD_MAX_CONNECTIONS: value } })).rejects.toThrow(/HERALD_MAX_CONNECTIONS/);
  });
});
