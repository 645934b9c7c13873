import { type WebSocketTransport, websocket } from '@herald/websocket';
import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { EventSource } from 'eventsource';
import { expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { type SseTransport, sse } from './sse-transport.js';
import { eventSourceWithKey, opened } from './stream-app.test-support.js';

/** A WebSocket with `herald.v1`: resolves once open, or with the HTTP status that refused the upgrade. */
function openSocket(url: string, key?: string): Promise<{ ws: WebSocket } | { refused: number }> {
  const ws = new WebSocket(url, 'herald.v1', key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } });
  onTestFinished(() => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_request, response) => resolve({ refused: response.statusCode ?? 0 }));
    ws.once('error', reject);
  });
}

function openStream(app: TestApp, key: string): EventSource {
  const source = eventSourceWithKey(`${app.baseUrl}/v1/stream?types=order.*`, key);
  onTestFinished(() => source.close());
  return source;
}

it('counts WebSocket and SSE connections of one key against one limit, and frees a slot on close (issue 13)', async () => {
  const streams = sse();
  const sockets: WebSocketTransport = websocket();
  const sseStreams = 3;
  // 1 WebSocket + 3 streams: the limit, set through createHerald.
  const app = await startTestApp([streams as SseTransport, sockets], { maxConnectionsPerKey: sseStreams + 1 });
  onTestFinished(() => app.close());
  const wsUrl = `${app.baseUrl.replace(/^http/, 'ws')}/v1/ws`;
  const key = await app.consumerKey('acme');

  const first = await openSocket(wsUrl, key);
  expect(first).toHaveProperty('ws');
  const sources = Array.from({ length: sseStreams }, () => openStream(app, key));
  await Promise.all(sources.map(opened));

  // One more of either kind is refused.
  const overStream = await fetch(`${app.baseUrl}/v1/stream?types=order.*`, { headers: { authorization: `Bearer ${key}` } });
  expect(overStream.status).toBe(429);
  expect(overStream.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(await overStream.json()).toMatchObject({ type: 'urn:herald:problem:too-many-connections', status: 429 });
  const overSource = openStream(app, key);
  const failed = await new Promise<{ code?: number }>((resolve) => overSource.addEventListener('error', (error) => resolve(error as { code?: number })));
  expect(failed.code).toBe(429);
  expect(overSource.readyState).toBe(EventSource.CLOSED);
  expect(await openSocket(wsUrl, key)).toEqual({ refused: 429 });
  // A browser authenticates after the upgrade: then the connection is closed with 1013 (try again later).
  const late = await openSocket(wsUrl);
  if (!('ws' in late)) throw new Error(`the upgrade was refused with ${late.refused}`);
  const closed = new Promise<number>((resolve) => late.ws.once('close', (code) => resolve(code)));
  late.ws.send(JSON.stringify({ type: 'auth', token: key }));
  expect(await closed).toBe(1013);
  // Another key has its own count.
  expect(await openSocket(wsUrl, await app.consumerKey('globex'))).toHaveProperty('ws');

  // Closing a stream frees a slot, for a WebSocket too; closing the WebSocket frees one for a stream.
  sources[0]?.close();
  await waitFor(() => streams.connections === sseStreams - 1, 'the server to see the stream closed');
  expect(await openSocket(wsUrl, key)).toHaveProperty('ws');
  expect(await openSocket(wsUrl, key)).toEqual({ refused: 429 });
  if ('ws' in first) first.ws.close();
  await waitFor(() => sockets.stats().connections === 2, 'the server to see the WebSocket closed');
  await opened(openStream(app, key));
});
