import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { linger, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDatabase } from '../../packages/core/src/temp-folder.test-support.js';

/** A webhook endpoint that answers 200 but never echoes the verification challenge: it stays unverified. */
interface Inbox {
  url: string;
  /** The `type` of every request body it received. */
  types: string[];
  close(): Promise<void>;
}

async function startInbox(): Promise<Inbox> {
  const types: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      types.push((JSON.parse(body) as { type: string }).type);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, types, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let app: TestApp;
let inbox: Inbox;
let key: string;

beforeAll(async () => {
  inbox = await startInbox();
  app = await startTestApp([webhook({ verifyEndpoints: true, pollInterval: 50 })], { env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' } });
  key = await app.consumerKey('acme');
});
afterAll(async () => {
  await app.close();
  await inbox.close();
});

describe('a pending subscription (issue 13)', () => {
  it('becomes active only by verification: no PATCH moves it, for consumers and admins alike, and nothing is delivered', async () => {
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config: { url: inbox.url } }, key);
    expect(created.body).toMatchObject({ status: 'pending', config: { verification: 'pending' } });
    const { id } = created.body;
    await waitFor(() => inbox.types.length >= 1, 'the first challenge');

    const before = (await app.api('GET', `/v1/subscriptions/${id}`)).body;
    const changes = [
      { status: 'active' },
      { status: 'paused' },
      { status: 'disabled' },
      { status: 'active', types: ['order.*'] },
      // The config change keeps it pending; the status that comes with it must not sneak past.
      { status: 'active', config: { headers: { 'x-tenant': 'acme' } } },
    ];
    for (const change of changes) {
      for (const as of [key, app.adminKey]) {
        const answer = await app.api('PATCH', `/v1/subscriptions/${id}`, change, as);
        expect({ change, status: answer.status, type: answer.body.type }).toEqual({
          change,
          status: 409,
          type: 'urn:herald:problem:subscription-pending',
        });
      }
    }
    expect((await app.api('GET', `/v1/subscriptions/${id}`)).body).toEqual(before);

    // What a pending subscription may change (types, config) leaves it pending.
    const retyped = await app.api('PATCH', `/v1/subscriptions/${id}`, { types: ['order.*'], config: { headers: { 'x-tenant': 'acme' } } }, key);
    expect(retyped.status).toBe(200);
    expect(retyped.body).toMatchObject({ status: 'pending', types: ['order.*'], config: { verification: 'pending', headers: { 'x-tenant': 'acme' } } });

    await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 } });
    await linger(300);
    expect(inbox.types.filter((type) => type !== 'herald.endpoint.verification')).toEqual([]);
    expect((await app.api('GET', `/v1/subscriptions/${id}`)).body.status).toBe('pending');
  });

  it('stays pending when its transport stops verifying: a config change that names no status keeps it pending', async () => {
    const database = tempDatabase();
    const allowPrivate = { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' };
    const verifying = await startTestApp([webhook({ verifyEndpoints: true })], { database, env: allowPrivate });
    const created = await verifying.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], consumer: 'acme', config: { url: inbox.url } });
    expect(created.body.status).toBe('pending');
    await verifying.close();
    // The same stored subscription, on a server whose webhook transport no longer verifies endpoints.
    const relaxed = await startTestApp([webhook()], { database, env: allowPrivate });
    try {
      const acme = await relaxed.consumerKey('acme');
      const sneaky = await relaxed.api('PATCH', `/v1/subscriptions/${created.body.id}`, { status: 'active', config: { url: inbox.url } }, acme);
      expect(sneaky.status).toBe(409);
      const changed = await relaxed.api('PATCH', `/v1/subscriptions/${created.body.id}`, { config: { url: `${inbox.url}?v=2` } }, acme);
      expect(changed.status).toBe(200);
      expect(changed.body.status).toBe('pending');
    } finally {
      await relaxed.close();
    }
  });
});
