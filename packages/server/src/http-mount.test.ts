import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineRoute, type Transport } from '@herald/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { createHerald } from './create-herald.js';

/** What the test stream's handler saw of each request it answered. */
interface Seen {
  expressRequest: boolean;
  expressResponse: boolean;
  query: unknown;
}

/** A transport with a `text/event-stream` route (a test stream) and a JSON route, which record what they were given. */
function recordingTransport(seen: Seen[]): Transport {
  return {
    name: 'recording',
    async start(context) {
      context.http.route(
        defineRoute({
          method: 'GET',
          path: '/v1/test-stream',
          queryToken: true,
          query: z.object({ n: z.coerce.number().int().positive(), types: z.union([z.string(), z.array(z.string())]).optional(), fail: z.literal('yes').optional() }),
          response: { mediaType: 'text/event-stream' },
          handle({ raw, response, query }) {
            seen.push({
              expressRequest: Object.getPrototypeOf(raw) !== IncomingMessage.prototype,
              expressResponse: Object.getPrototypeOf(response) !== ServerResponse.prototype,
              query,
            });
            if (query.fail) throw new Error('an unexpected failure');
            response.writeHead(200, { 'content-type': 'text/event-stream' });
            response.write(`data: ${query.n}\n\n`);
            return undefined;
          },
        }),
      );
      context.http.route(defineRoute({ method: 'GET', path: '/v1/test-json', handle: () => ({ status: 201, body: { ok: true } }) }));
    },
    async stop() {},
  };
}

async function start(seen: Seen[], errors: unknown[] = []) {
  const herald = createHerald({
    database: ':memory:',
    logLevel: 'silent',
    env: {},
    transports: [recordingTransport(seen)],
    authFailureLimit: { requests: 4, window: 60 },
  });
  const { logger } = herald;
  const error = logger.error.bind(logger);
  logger.error = ((...args: unknown[]) => {
    errors.push(args[0]);
    return (error as (...a: unknown[]) => void)(...args);
  }) as typeof logger.error;
  onTestFinished(() => herald.close());
  const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const { key } = await herald.keys.create('consumer', 'acme');
  return { url, key, herald };
}

/** GETs `url`, reading the first chunk of a stream (then dropping it) or the whole of any other answer. */
async function get(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const reader = response.body?.getReader();
  const first = await reader?.read();
  const text = first?.value ? Buffer.from(first.value).toString() : '';
  controller.abort();
  return { status: response.status, headers: response.headers, text };
}

describe('a streaming route', () => {
  it('is answered without express: the handler gets node’s own request and response', async () => {
    const seen: Seen[] = [];
    const { url, key } = await start(seen);
    const stream = await get(`${url}/v1/test-stream?n=7&types=a,b&types=c`, { authorization: `Bearer ${key}` });
    expect(stream).toMatchObject({ status: 200, text: 'data: 7\n\n' });
    expect(stream.headers.get('ratelimit')).toMatch(/^"key";r=\d+;t=\d+$/);
    expect(seen).toEqual([{ expressRequest: false, expressResponse: false, query: { n: 7, types: ['a,b', 'c'] } }]);
    // With the credential in the query, as a browser EventSource sends it.
    expect(await get(`${url}/v1/test-stream?n=8&access_token=${key}`)).toMatchObject({ status: 200, text: 'data: 8\n\n' });
    // The other routes, and the requests the direct path leaves alone, go through express.
    expect(await get(`${url}/v1/test-json`, { authorization: `Bearer ${key}` })).toMatchObject({ status: 201, text: '{"ok":true}' });
    expect(await get(`${url}/v1/test-stream/?n=9`, { authorization: `Bearer ${key}` })).toMatchObject({ status: 200, text: 'data: 9\n\n' });
    expect(seen.map(({ expressRequest, expressResponse }) => [expressRequest, expressResponse])).toEqual([
      [false, false],
      [false, false],
      [true, true],
    ]);
  });

  it('answers bad requests with the very problem+json express gives them, 500 with no internals included', async () => {
    const seen: Seen[] = [];
    const errors: unknown[] = [];
    const { url, key } = await start(seen, errors);
    const cases: [query: string, headers: Record<string, string>, status: number][] = [
      ['n=0', { authorization: `Bearer ${key}` }, 422],
      ['n=1&fail=yes', { authorization: `Bearer ${key}` }, 500],
      ['n=1', {}, 401],
      ['n=1', { authorization: 'Bearer hk_not-a-key' }, 401],
    ];
    for (const [query, headers, status] of cases) {
      if (status === 500) {
        const problem = JSON.parse((await get(`${url}/v1/test-stream?${query}`, headers)).text);
        expect(problem).toEqual({ type: 'urn:herald:problem:internal', title: 'Internal Server Error', status: 500 });
      }
      const direct = await get(`${url}/v1/test-stream?${query}`, headers);
      const throughExpress = await get(`${url}/v1/test-stream/?${query}`, headers);
      expect(direct.status, query).toBe(status);
      expect(direct.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
      expect(throughExpress.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
      expect(JSON.parse(direct.text)).toEqual(JSON.parse(throughExpress.text));
      expect(direct.headers.get('www-authenticate')).toBe(throughExpress.headers.get('www-authenticate'));
    }
    expect(errors.filter((error) => (error as { err?: Error }).err?.message === 'an unexpected failure')).toHaveLength(3);
    // Four failed authentications from this address per window, two of them on the direct path: the next is refused.
    const limited = await get(`${url}/v1/test-stream?n=1`, { authorization: 'Bearer hk_not-a-key' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('goes through express when the app trusts a proxy, and under an attached base path is answered directly', async () => {
    const seen: Seen[] = [];
    const { url, key, herald } = await start(seen);
    const { app } = herald;
    app.set('trust proxy', 'loopback');
    expect(await get(`${url}/v1/test-stream?n=1`, { authorization: `Bearer ${key}` })).toMatchObject({ status: 200 });
    app.set('trust proxy', false);
    const server = createServer((_request, response) => response.writeHead(418).end());
    onTestFinished(() => {
      server.closeAllConnections();
      server.close();
    });
    await herald.attach(server, { basePath: '/events' });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const attached = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(await get(`${attached}/events/v1/test-stream?n=2`, { authorization: `Bearer ${key}` })).toMatchObject({ status: 200, text: 'data: 2\n\n' });
    expect((await get(`${attached}/elsewhere`)).status).toBe(418);
    expect(seen.map(({ expressRequest }) => expressRequest)).toEqual([true, false]);
  });
});
