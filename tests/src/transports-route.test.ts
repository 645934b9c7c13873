import { defineRoute, type Transport } from '@herald/core';
import { sse } from '@herald/sse';
import { memoryTransport, startTestApp, type TestApp } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The smallest pull transport: one long-poll route that answers at once with nothing. */
const pullTransport: Transport = {
  name: 'ask',
  kind: 'pull',
  async start(context) {
    context.http.route(defineRoute({ method: 'GET', path: '/v1/ask', longPoll: true, handle: () => ({ body: { data: [] } }) }));
  },
  async stop() {},
};

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp([webhook({ pollInterval: 50 }), sse(), websocket(), pullTransport, memoryTransport()]);
});
afterAll(() => app.close());

describe('GET /v1/transports', () => {
  it('lists the mounted transports in the order given, each with its kind', async () => {
    const answer = await app.api('GET', '/v1/transports');
    expect(answer).toEqual({
      status: 200,
      body: {
        data: [
          { name: 'webhook', kind: 'push' },
          { name: 'sse', kind: 'stream' },
          { name: 'websocket', kind: 'stream' },
          { name: 'ask', kind: 'pull' },
          // A transport that does not say is taken for a stream.
          { name: 'memory', kind: 'stream' },
        ],
      },
    });
  });

  it('answers consumer keys and portal tokens alike, refuses stream tokens and anonymous callers', async () => {
    const admin = await app.api('GET', '/v1/transports');
    const consumerKey = await app.consumerKey('alpha');
    expect(await app.api('GET', '/v1/transports', undefined, consumerKey)).toEqual(admin);
    const portal = await app.api('POST', '/v1/portal-sessions', { consumer: 'alpha' });
    expect(await app.api('GET', '/v1/transports', undefined, portal.body.token)).toEqual(admin);
    const streamToken = await app.streamToken(consumerKey);
    expect((await app.api('GET', '/v1/transports', undefined, streamToken)).status).toBe(403);
    expect((await fetch(`${app.baseUrl}/v1/transports`)).status).toBe(401);
  });

  it('is in /openapi.json', async () => {
    const document = await (await fetch(`${app.baseUrl}/openapi.json`)).json();
    const listed = document.paths['/v1/transports'].get.responses['200'].content['application/json'].schema;
    expect(JSON.stringify(listed)).toContain('"pull"');
  });
});
