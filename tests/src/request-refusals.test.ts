import { connect } from 'node:net';
import { poll } from '@herald/poll';
import { sse } from '@herald/sse';
import { startTestApp, type TestApp } from '@herald/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp([sse(), poll()]);
});
afterAll(() => app.close());

const problemOf = async (response: Response) => {
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await response.json()) as { type: string; status: number; detail?: string; errors?: { path: unknown[]; message: string }[] };
};

describe('the credential of a request', () => {
  it.each(['/v1/stream?types=order.*', '/v1/poll?types=order.*&wait=0', '/v1/events'])('given twice as ?access_token= on %s is refused 401 saying so', async (path) => {
    const token = await app.streamToken(app.adminKey);
    const response = await fetch(`${app.baseUrl}${path}${path.includes('?') ? '&' : '?'}access_token=${token}&access_token=${token}`);
    expect(response.status).toBe(401);
    const detail = (await problemOf(response)).detail;
    // /v1/events takes no ?access_token=: there, it is the missing Authorization header.
    if (path === '/v1/events') expect(detail).toBe('A valid API key is required: Authorization: Bearer <key>');
    else expect(detail).toBe('access_token was given more than once: give it once');
  });

  it('missing on a route that takes ?access_token=, is asked for both ways', async () => {
    for (const path of ['/v1/stream?types=order.*', '/v1/poll?types=order.*&wait=0']) {
      const response = await fetch(`${app.baseUrl}${path}`);
      expect(response.status).toBe(401);
      expect((await problemOf(response)).detail).toBe('A valid API key or stream token is required: Authorization: Bearer <key>, or ?access_token=<stream token>');
    }
  });
});

describe('types in the query of GET /v1/events', () => {
  const read = (query: string) => fetch(`${app.baseUrl}/v1/events?after=0&limit=1000&${query}`, { headers: { authorization: `Bearer ${app.adminKey}` } });

  it('refuses types[]=, which would read every type, as poll and SSE do', async () => {
    await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 1 } });
    for (const url of [`${app.baseUrl}/v1/events?types[]=order.created`, `${app.baseUrl}/v1/poll?types[]=order.created&wait=0`, `${app.baseUrl}/v1/stream?types[]=order.created`]) {
      const response = await fetch(url, { headers: { authorization: `Bearer ${app.adminKey}` } });
      expect(response.status, url).toBe(422);
      expect((await problemOf(response)).errors).toEqual([
        { path: ['types[]'], message: 'is not a parameter: give types comma-separated (types=a,b) or repeated (types=a&types=b)', code: 'custom' },
      ]);
    }
  });

  it('takes types repeated as it takes them comma-separated', async () => {
    for (const type of ['order.created', 'order.shipped', 'invoice.paid']) await app.api('POST', '/v1/events', { type, data: { n: 2 } });
    const typesOf = async (response: Response) => {
      expect(response.status).toBe(200);
      return new Set(((await response.json()) as { data: { type: string }[] }).data.map((event) => event.type));
    };
    const repeated = await typesOf(await read('types=order.created&types=invoice.paid'));
    expect(repeated).toEqual(new Set(['order.created', 'invoice.paid']));
    expect(await typesOf(await read('types=order.created,invoice.paid'))).toEqual(repeated);
    expect(await typesOf(await read('types=order.created&types=order.shipped,invoice.paid'))).toEqual(new Set(['order.created', 'order.shipped', 'invoice.paid']));
  });
});

describe('POST /v1/stream-tokens', () => {
  it('refuses types that match no event type, as subscribing to them would be, and takes them once they are registered', async () => {
    const refused = await fetch(`${app.baseUrl}/v1/stream-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ types: ['order.*', 'nope.*'] }),
    });
    expect(refused.status).toBe(422);
    const problem = await problemOf(refused);
    expect(problem.type).toBe('urn:herald:problem:unknown-event-type');
    expect(problem.errors).toEqual([{ path: ['types', 1], message: 'nope.* matches no event type in the catalog' }]);

    expect((await app.api('POST', '/v1/event-types', { name: 'nope.registered' })).status).toBe(201);
    expect((await app.api('POST', '/v1/stream-tokens', { types: ['order.*', 'nope.*'] })).status).toBe(201);
  });
});

describe("requests Node's parser refuses, on listen()'s server", () => {
  /** What the server answers to `raw`, written as is to a new connection, and whether it then closed the connection. */
  const rawAnswer = (raw: string) =>
    new Promise<{ head: string; body: string }>((resolve, reject) => {
      const socket = connect(Number(new URL(app.baseUrl).port), '127.0.0.1', () => socket.write(raw));
      let received = '';
      socket.on('data', (chunk) => (received += chunk));
      socket.on('error', reject);
      socket.on('close', () => {
        const [head = '', body = ''] = received.split('\r\n\r\n');
        resolve({ head, body });
      });
    });

  it('answers an over-long URL 431 as problem+json, and closes the connection', async () => {
    const filter = encodeURIComponent(JSON.stringify({ n: { $in: Array.from({ length: 5000 }, (_, i) => i) } }));
    const response = await fetch(`${app.baseUrl}/v1/events?types=order.created&filter=${filter}`, { headers: { authorization: `Bearer ${app.adminKey}` } });
    expect(response.status).toBe(431);
    expect(response.headers.get('connection')).toBe('close');
    expect(await problemOf(response)).toMatchObject({ type: 'urn:herald:problem:headers-too-large', status: 431, detail: expect.stringContaining('limit') });

    const { head } = await rawAnswer(`GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(head).toMatch(/^HTTP\/1\.1 431 /);
    expect(head).toMatch(/\r\nConnection: close\r\n/);
  });

  it('answers a request it cannot read 400 as problem+json', async () => {
    const { head, body } = await rawAnswer('NOT HTTP AT ALL\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/\r\nContent-Type: application\/problem\+json/);
    expect(JSON.parse(body)).toEqual({ type: 'urn:herald:problem:malformed-request', title: 'Malformed request', status: 400, detail: 'The request could not be read as HTTP' });
    // And the server goes on.
    expect((await fetch(`${app.baseUrl}/healthz`)).status).toBe(200);
  });
});
