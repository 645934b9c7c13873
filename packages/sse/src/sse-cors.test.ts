import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { HeraldOptions } from '@herald/server';
import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sse } from './sse-transport.js';
import { streamEventTypes } from './stream-app.test-support.js';

const allowed = 'https://app.example.com';
const other = 'https://evil.example.com';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

type App = TestApp<typeof streamEventTypes>;

async function start(options: Partial<HeraldOptions<typeof streamEventTypes>> = {}): Promise<App> {
  const app = await startTestApp([sse({ cors: { origins: [allowed] } })], { eventTypes: streamEventTypes, ...options });
  onTestFinished(() => app.close());
  return app;
}

/** The status and headers of one request on a connection of its own; a stream is cut once its headers are in. */
function ask(url: string, headers: Record<string, string>, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sent = request(url, { method, headers, agent: false }, (response) => {
      const answer = { status: response.statusCode ?? 0, headers: response.headers, body: '' };
      if (response.headers['content-type']?.startsWith('text/event-stream')) {
        sent.destroy();
        resolve(answer);
        return;
      }
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        answer.body += chunk;
      });
      response.on('end', () => resolve(answer));
    });
    sent.on('error', reject);
    sent.end();
  });
}

const corsHeaders = (answer: Answer) => Object.keys(answer.headers).filter((name) => name.startsWith('access-control-'));

function expectCors(answer: Answer, status: number, code?: string): void {
  expect({ status: answer.status, code: problemCode(answer) }).toEqual({ status, code });
  expect(answer.headers['access-control-allow-origin']).toBe(allowed);
  expect(answer.headers.vary).toMatch(/\bOrigin\b/);
}

function expectNoCors(answer: Answer, status: number, code?: string): void {
  expect({ status: answer.status, code: problemCode(answer) }).toEqual({ status, code });
  expect(corsHeaders(answer)).toEqual([]);
}

function problemCode(answer: Answer): string | undefined {
  if (!answer.headers['content-type']?.startsWith('application/problem+json')) return undefined;
  return (JSON.parse(answer.body) as { type: string }).type.replace('urn:herald:problem:', '');
}

/** Asks `path` from the allowed origin and from another one, by GET and HEAD, on the route express serves and the one it does not. */
async function expectEveryAnswer(app: App, path: string, headers: Record<string, string>, status: number, code?: string): Promise<void> {
  // A trailing slash leaves the request to express rather than to the server's direct route.
  const urls = [`${app.baseUrl}${path}`, `${app.baseUrl}${path.replace('/v1/stream', '/v1/stream/')}`];
  for (const url of urls) {
    expectCors(await ask(url, { ...headers, origin: allowed }), status, code);
    expectNoCors(await ask(url, { ...headers, origin: other }), status, code);
    const head = await ask(url, { ...headers, origin: allowed }, 'HEAD');
    expect(head.status).toBe(status);
    expect(head.headers['access-control-allow-origin']).toBe(allowed);
  }
}

/** Opens a connection and sends a request's first line, holding back the rest; `finish` sends it and resolves with the raw answer. */
async function heldRequest(app: App, path: string): Promise<{ finish(headers: Record<string, string>): Promise<string> }> {
  const { port } = new URL(app.baseUrl);
  const socket: Socket = connect(Number(port), '127.0.0.1');
  onTestFinished(() => {
    socket.destroy();
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
  return {
    finish(headers) {
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
      });
      const answered = waitFor(() => text.endsWith('\r\n0\r\n\r\n'), 'the whole answer').then(() => text);
      socket.write(`${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`);
      return answered;
    },
  };
}

describe('CORS on every answer of the stream', () => {
  it('a stream, and every refusal of the route and of its handler', async () => {
    const app = await start();
    const key = await app.consumerKey('acme');
    const bearer = { authorization: `Bearer ${key}` };
    const token = await app.streamToken(key, { types: ['order.*'] });

    await expectEveryAnswer(app, '/v1/stream?types=order.created', bearer, 200);
    await expectEveryAnswer(app, '/v1/stream?types=order.created', { authorization: `Bearer ${token}` }, 200);
    await expectEveryAnswer(app, `/v1/stream?types=order.created&access_token=${token}`, {}, 200);

    await expectEveryAnswer(app, '/v1/stream?types=order.created', {}, 401, 'unauthorized');
    await expectEveryAnswer(app, '/v1/stream?types=order.created', { authorization: 'Bearer hk_x_y' }, 401, 'unauthorized');
    await expectEveryAnswer(app, '/v1/stream?types=order.created', { authorization: 'Bearer hs_x_y' }, 401, 'unauthorized');
    await expectEveryAnswer(app, '/v1/stream?types=order.created&access_token=hs_x_y', {}, 401, 'unauthorized');

    for (const query of ['types=', 'types=order.created&subscription=sub_x', '', 'types=order.created&named=x', 'types=order.created&filter=%7Bnot-json']) {
      await expectEveryAnswer(app, `/v1/stream?${query}`, bearer, 422, 'validation-failed');
    }
    await expectEveryAnswer(app, '/v1/stream?types=order.created', { ...bearer, 'last-event-id': 'x' }, 400, 'malformed-last-event-id');
    await expectEveryAnswer(app, '/v1/stream?types=invoice.paid', { authorization: `Bearer ${token}` }, 403, 'forbidden');
    await expectEveryAnswer(app, '/v1/stream?subscription=sub_00000000000000000000000000', bearer, 404, 'not-found');
    await expectEveryAnswer(app, '/v1/stream?types=nope.x', bearer, 422, 'unknown-event-type');
    const filter = encodeURIComponent(JSON.stringify({ 'data.nope': 1 }));
    await expectEveryAnswer(app, `/v1/stream?types=order.created&filter=${filter}`, bearer, 422, 'invalid-filter');
  });

  it('429 past the connections of a key', async () => {
    const app = await start({ maxConnectionsPerKey: 1 });
    const key = await app.consumerKey('acme');
    const open = request(`${app.baseUrl}/v1/stream?types=order.created`, { headers: { authorization: `Bearer ${key}` }, agent: false });
    onTestFinished(() => {
      open.destroy();
    });
    await new Promise((resolve) => open.once('response', resolve).end());
    await expectEveryAnswer(app, '/v1/stream?types=order.created', { authorization: `Bearer ${key}` }, 429, 'too-many-connections');
  });

  it("429 past a key's requests", async () => {
    const app = await start({ rateLimit: { requests: 1, window: 60 } });
    const key = await app.consumerKey('acme');
    expect((await ask(`${app.baseUrl}/v1/stream?types=nope.x`, { authorization: `Bearer ${key}` })).status).toBe(422);
    await expectEveryAnswer(app, '/v1/stream?types=order.created', { authorization: `Bearer ${key}` }, 429, 'rate-limited');
  });

  it("429 past an address's failed authentications", async () => {
    const app = await start({ authFailureLimit: { requests: 1, window: 60 } });
    expect((await ask(`${app.baseUrl}/v1/stream?types=order.created`, { authorization: 'Bearer hk_x_y' })).status).toBe(401);
    await expectEveryAnswer(app, '/v1/stream?types=order.created', { authorization: 'Bearer hk_x_y' }, 429, 'rate-limited');
  });

  it('503 while the server stops', async () => {
    const app = await start({ shutdownTimeout: 1_000 });
    const key = await app.consumerKey('acme');
    const path = '/v1/stream?types=order.created';
    const [fromAllowed, fromOther] = [await heldRequest(app, path), await heldRequest(app, path)];
    let streamed = '';
    const stream = request(`${app.baseUrl}${path}`, { headers: { authorization: `Bearer ${key}` }, agent: false });
    onTestFinished(() => {
      stream.destroy();
    });
    stream.end();
    const response = await new Promise<IncomingMessage>((resolve) => stream.once('response', resolve));
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      streamed += chunk;
    });
    await waitFor(() => streamed.includes('event: ready'), 'the stream');
    const closed = app.close();
    // The stream's `end` frame says the transport is stopping; the held connections are still being served.
    await waitFor(() => streamed.includes('event: end'), 'the end of the stream');
    const allowedAnswer = await fromAllowed.finish({ authorization: `Bearer ${key}`, origin: allowed });
    const otherAnswer = await fromOther.finish({ authorization: `Bearer ${key}`, origin: other });
    await closed;
    expect(allowedAnswer).toMatch(/^HTTP\/1\.1 503 /);
    expect(allowedAnswer).toMatch(new RegExp(`\r\nAccess-Control-Allow-Origin: ${allowed}\r\n`, 'i'));
    expect(otherAnswer).toMatch(/^HTTP\/1\.1 503 /);
    expect(otherAnswer).not.toMatch(/\r\nAccess-Control-/i);
  });
});
