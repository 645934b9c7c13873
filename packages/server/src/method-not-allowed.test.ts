import type { AddressInfo } from 'node:net';
import { defineRoute, type Transport } from '@herald/core';
import express from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createHerald } from './create-herald.js';

const origin = 'http://app.example';

/** A transport with routes of its own: `GET /v1/test-json`, and `GET /v1/test-cors`, whose CORS preflight it answers itself. */
const jsonTransport: Transport = {
  name: 'json',
  async start(context) {
    context.http.route(defineRoute({ method: 'GET', path: '/v1/test-json', handle: () => ({ body: { ok: true } }) }));
    context.http.route(defineRoute({ method: 'GET', path: '/v1/test-cors', handle: () => ({ body: { ok: true } }) }));
    context.http.preflight?.('/v1/test-cors', (_request, response) => {
      response.writeHead(204, { 'access-control-allow-origin': origin, 'access-control-allow-methods': 'GET', 'access-control-max-age': '600' }).end();
    });
  },
  async stop() {},
};

async function start() {
  const herald = createHerald({ database: ':memory:', logLevel: 'silent', env: {}, transports: [jsonTransport] });
  onTestFinished(() => herald.close());
  const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  return { url, herald };
}

async function ask(url: string, method: string) {
  const response = await fetch(url, { method });
  const text = await response.text();
  return { status: response.status, allow: response.headers.get('allow'), type: text ? (JSON.parse(text) as { type?: string }).type : undefined };
}

describe('a request with a method its path is not served with', () => {
  it('is answered 405 with the methods it is served with in Allow, on every kind of route; a path not served is 404', async () => {
    const { url } = await start();
    const refused = (allow: string) => ({ status: 405, allow, type: 'urn:herald:problem:method-not-allowed' });
    expect(await ask(`${url}/v1/events`, 'PUT')).toEqual(refused('GET, HEAD, OPTIONS, POST'));
    expect(await ask(`${url}/v1/subscriptions/sub_x`, 'POST')).toEqual(refused('DELETE, GET, HEAD, OPTIONS, PATCH'));
    expect(await ask(`${url}/v1/stream-tokens`, 'GET')).toEqual(refused('OPTIONS, POST'));
    expect(await ask(`${url}/v1/test-json`, 'DELETE')).toEqual(refused('GET, HEAD, OPTIONS'));
    expect(await ask(`${url}/healthz`, 'POST')).toEqual(refused('GET, HEAD, OPTIONS'));
    expect(await ask(`${url}/openapi.json`, 'PATCH')).toEqual(refused('GET, HEAD, OPTIONS'));
    expect(await ask(`${url}/v1/nothing-here`, 'POST')).toEqual({ status: 404, allow: null, type: 'urn:herald:problem:not-found' });
    expect(await ask(`${url}/v1/subscriptions/sub_x/nothing`, 'GET')).toMatchObject({ status: 404 });
  });

  it('but OPTIONS is answered 204 on every path served, with its methods in Allow; a CORS preflight by its transport, as before', async () => {
    const { url } = await start();
    const answered = (allow: string) => ({ status: 204, allow, type: undefined });
    expect(await ask(`${url}/healthz`, 'OPTIONS')).toEqual(answered('GET, HEAD, OPTIONS'));
    expect(await ask(`${url}/docs`, 'OPTIONS')).toEqual(answered('GET, HEAD, OPTIONS'));
    expect(await ask(`${url}/v1/events`, 'OPTIONS')).toEqual(answered('GET, HEAD, OPTIONS, POST'));
    expect(await ask(`${url}/v1/subscriptions/sub_x`, 'OPTIONS')).toEqual(answered('DELETE, GET, HEAD, OPTIONS, PATCH'));
    expect(await ask(`${url}/v1/test-json`, 'OPTIONS')).toEqual(answered('GET, HEAD, OPTIONS'));
    expect(await ask(`${url}/v1/nothing-here`, 'OPTIONS')).toEqual({ status: 404, allow: null, type: 'urn:herald:problem:not-found' });

    const preflight = await fetch(`${url}/v1/test-cors`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } });
    const names = ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-max-age', 'allow'];
    expect({ status: preflight.status, headers: Object.fromEntries(names.map((name) => [name, preflight.headers.get(name)])) }).toEqual({
      status: 204,
      headers: { 'access-control-allow-origin': origin, 'access-control-allow-methods': 'GET', 'access-control-max-age': '600', allow: null },
    });
  });

  it('is handed on, as a path not served is, by Herald mounted in an app of yours', async () => {
    const { herald } = await start();
    const app = express();
    app.use('/events', herald.app);
    app.use((_req, res) => {
      res.status(418).end();
    });
    const server = app.listen(0, '127.0.0.1');
    onTestFinished(() => {
      server.closeAllConnections();
      server.close();
    });
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
    expect((await ask(`${url}/v1/events`, 'PUT')).status).toBe(418);
    expect((await ask(`${url}/healthz`, 'GET')).status).toBe(200);
  });
});
