import { get, type IncomingMessage } from 'node:http';
import { waitFor } from '@herald/testkit';
import { describe, expect, it } from 'vitest';
import { type SseOptions, sse } from './sse-transport.js';
import { closedAfterEach, type StreamApp } from './stream-app.test-support.js';

/** A stream read with node:http, every byte kept as text. */
interface RawStream {
  response: IncomingMessage;
  readonly text: string;
  close(): void;
}

function openRaw(url: string, headers: Record<string, string>): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const request = get(url, { headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      resolve({
        response,
        get text() {
          return text;
        },
        close: () => request.destroy(),
      });
    });
    request.on('error', reject);
  });
}

const { start: startApp, track, forget } = closedAfterEach();

async function start(options: SseOptions): Promise<{ app: StreamApp; key: string }> {
  const app = await startApp(options);
  return { app, key: await app.consumerKey('acme') };
}

async function raw(url: string, headers: Record<string, string>): Promise<RawStream> {
  return track(await openRaw(url, headers));
}

describe('the stream on the wire', () => {
  it('sends the headers, a retry hint, the ready frame, events framed by the spec, and keep-alive comments', async () => {
    const { app, key } = await start({ retry: 1234, keepAlive: 50 });
    await app.herald.publish({ type: 'invoice.paid', data: { n: 0 } });
    await waitFor(() => app.herald.bus.latest === 1, 'the bus to hand the event on');
    const stream = await raw(`${app.baseUrl}/v1/stream?types=order.created`, { authorization: `Bearer ${key}` });
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers).toMatchObject({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    expect(stream.response.headers['content-encoding']).toBeUndefined();
    await waitFor(() => stream.text.includes('\n\n'), 'the first frame');
    expect(stream.text.startsWith('retry: 1234\nid: 1\nevent: ready\ndata: {"after":1}\n\n')).toBe(true);

    const { event } = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => stream.text.includes('event: order.created'), 'the event frame');
    expect(stream.text).toContain(`id: 2\nevent: order.created\ndata: ${JSON.stringify(event)}\n\n`);
    await waitFor(() => stream.text.includes(': keep-alive\n\n'), 'a keep-alive comment');
  });

  it('sends plain message events with named=false, and answers HEAD without a stream', async () => {
    const { app, key } = await start({});
    const stream = await raw(`${app.baseUrl}/v1/stream?types=order.*&named=false`, { authorization: `Bearer ${key}` });
    const { event } = await app.herald.publish({ type: 'order.shipped', data: { n: 1 } });
    await waitFor(() => stream.text.includes(`id: ${event.seq}\n`), 'the event frame');
    expect(stream.text).toContain(`id: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`);
    expect(stream.text).not.toContain('event: order.shipped');

    const head = await fetch(`${app.baseUrl}/v1/stream?types=order.*`, { method: 'HEAD', headers: { authorization: `Bearer ${key}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await waitFor(() => app.sse.connections === 1, 'only the GET stream to stay open');
  });

  it('lets a consumer see only its own and broadcast events, and an admin everything', async () => {
    const { app, key } = await start({});
    const consumer = await raw(`${app.baseUrl}/v1/stream?types=order.created&named=false`, { authorization: `Bearer ${key}` });
    const admin = await raw(`${app.baseUrl}/v1/stream?types=order.created&named=false`, { authorization: `Bearer ${app.adminKey}` });
    const mine = await app.herald.publish({ type: 'order.created', data: { n: 1 }, consumer: 'acme' });
    const theirs = await app.herald.publish({ type: 'order.created', data: { n: 2 }, consumer: 'beta' });
    const everyone = await app.herald.publish({ type: 'order.created', data: { n: 3 } });
    const ids = (stream: RawStream) => [...stream.text.matchAll(/^id: (\d+)\ndata: /gm)].map((match) => Number(match[1]));
    await waitFor(() => ids(admin).length === 3 && ids(consumer).length === 2, 'the events');
    expect(ids(consumer)).toEqual([mine.event.seq, everyone.event.seq]);
    expect(ids(admin)).toEqual([mine.event.seq, theirs.event.seq, everyone.event.seq]);
  });

  it('ends every stream with an `end` frame when the server stops', async () => {
    const { app, key } = await start({});
    const stream = await raw(`${app.baseUrl}/v1/stream?types=order.created`, { authorization: `Bearer ${key}` });
    await waitFor(() => stream.text.includes('event: ready'), 'the ready frame');
    const ended = new Promise((resolve) => stream.response.once('end', resolve));
    forget();
    await app.close();
    await ended;
    expect(stream.text.endsWith('event: end\ndata: {"reason":"stopping","message":"the server is stopping: reconnect"}\n\n')).toBe(true);
  });
});

describe('CORS', () => {
  const origin = 'http://app.example';

  it('allows the configured origins, with credentials, on streams, problems and preflights', async () => {
    const { app, key } = await start({ cors: { origins: [origin], credentials: true } });
    const stream = await raw(`${app.baseUrl}/v1/stream?types=order.created`, { authorization: `Bearer ${key}`, origin });
    expect(stream.response.headers).toMatchObject({
      'access-control-allow-origin': origin,
      'access-control-allow-credentials': 'true',
      vary: 'Origin',
    });
    const other = await raw(`${app.baseUrl}/v1/stream?types=order.created`, { authorization: `Bearer ${key}`, origin: 'http://evil.example' });
    expect(other.response.headers['access-control-allow-origin']).toBeUndefined();

    const problem = await fetch(`${app.baseUrl}/v1/stream?types=nope.x`, { headers: { authorization: `Bearer ${key}`, origin } });
    expect(problem.status).toBe(422);
    expect(problem.headers.get('access-control-allow-origin')).toBe(origin);

    const preflight = await fetch(`${app.baseUrl}/v1/stream?types=order.created`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'last-event-id,authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET');
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('last-event-id');
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');

    const refused = await fetch(`${app.baseUrl}/v1/stream`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' },
    });
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers any origin with * when credentials are off', async () => {
    const { app, key } = await start({ cors: { origins: '*' } });
    const stream = await raw(`${app.baseUrl}/v1/stream?types=order.created`, { authorization: `Bearer ${key}`, origin });
    expect(stream.response.headers['access-control-allow-origin']).toBe('*');
    expect(stream.response.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('sends no CORS headers when CORS is not configured', async () => {
    const { app, key } = await start({});
    const stream = await raw(`${app.baseUrl}/v1/stream?types=order.created`, { authorization: `Bearer ${key}`, origin });
    expect(stream.response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses origins that are not origins, and options that make no sense', () => {
    expect(() => sse({ cors: { origins: ['http://app.example/path'] } })).toThrow(/not an origin/);
    expect(() => sse({ keepAlive: -1 })).toThrow(/keepAlive/);
    expect(() => sse({ maxBufferedBytes: 0 })).toThrow(/maxBufferedBytes/);
    expect(() => sse({ path: 'stream' })).toThrow(/path/);
  });
});
