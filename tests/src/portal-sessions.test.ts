import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHerald } from '@herald/server';
import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let app: TestApp;
let receiver: Server;
let hookUrl: string;
let alphaKey: string;

beforeAll(async () => {
  receiver = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  app = await startTestApp([webhook({ pollInterval: 50 })], { env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' } });
  alphaKey = await app.consumerKey('alpha');
});
afterAll(async () => {
  await app.close();
  await new Promise((resolve) => receiver.close(resolve));
});

const session = async (consumer: string, key?: string) => {
  const answer = await app.api('POST', '/v1/portal-sessions', { consumer }, key);
  expect(answer.status).toBe(201);
  return answer.body as { url: string; token: string; expiresAt: string; consumer: string };
};

describe('portal sessions (issue 19)', () => {
  it('are opened by an admin only, for an hour by default, with the token in the url fragment', async () => {
    const opened = await session('alpha');
    expect(opened.token).toMatch(/^hp_[0-9a-f]{20}_[0-9a-f]{64}$/);
    expect(opened.url).toBe(`${app.baseUrl}/portal#token=${opened.token}`);
    expect(opened.consumer).toBe('alpha');
    const lifetime = Date.parse(opened.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(3_500_000);
    expect(lifetime).toBeLessThanOrEqual(3_600_000);
    const short = await app.api('POST', '/v1/portal-sessions', { consumer: 'alpha', ttl: 120 });
    expect(Date.parse(short.body.expiresAt) - Date.now()).toBeLessThanOrEqual(120_000);

    expect((await app.api('POST', '/v1/portal-sessions', { consumer: 'alpha' }, alphaKey)).status).toBe(403);
    expect((await app.api('POST', '/v1/portal-sessions', { consumer: 'alpha' }, opened.token)).body.type).toBe(
      'urn:herald:problem:portal-token-forbidden',
    );
    expect((await fetch(`${app.baseUrl}/v1/portal-sessions`, { method: 'POST' })).status).toBe(401);
  });

  it('open at HERALD_PORTAL_URL when it is set, such as a page of the provider’s dashboard behind its proxy', async () => {
    const proxied = await startTestApp([], { env: { HERALD_PORTAL_URL: 'https://dashboard.example.com/developers/events' } });
    try {
      const opened = (await proxied.api('POST', '/v1/portal-sessions', { consumer: 'alpha' })).body;
      expect(opened.url).toBe(`https://dashboard.example.com/developers/events#token=${opened.token}`);
      // The token it carries works against the API.
      expect((await proxied.api('GET', '/v1/subscriptions', undefined, opened.token)).status).toBe(200);
    } finally {
      await proxied.close();
    }
    for (const bad of ['/portal', 'ftp://example.com/portal', 'https://example.com/portal#x', 'not a url']) {
      expect(() => createHerald({ database: ':memory:', env: { HERALD_PORTAL_URL: bad } }), bad).toThrow(/HERALD_PORTAL_URL must be an absolute http\(s\) URL/);
    }
  });

  it('refuse bad input with 422 and store nothing', async () => {
    const keysBefore = (await app.api('GET', '/v1/keys')).body.data.length;
    for (const body of [{}, { consumer: '' }, { consumer: 'alpha', ttl: 59 }, { consumer: 'alpha', ttl: 86_401 }, { consumer: 'alpha', ttl: 1.5 }, { consumer: 'alpha', extra: 1 }]) {
      const answer = await app.api('POST', '/v1/portal-sessions', body);
      expect({ body, status: answer.status, type: answer.body.type }).toEqual({ body, status: 422, type: 'urn:herald:problem:validation-failed' });
    }
    expect((await app.api('GET', '/v1/keys')).body.data.length).toBe(keysBefore);
  });

  it('act as their consumer only: A manages its own subscriptions and deliveries and never sees B’s', async () => {
    const alpha = (await session('alpha')).token;
    const beta = (await session('beta')).token;
    const mine = await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], config: { url: hookUrl } }, alpha);
    expect(mine.status).toBe(201);
    expect(mine.body).toMatchObject({ consumer: 'alpha', config: { secret: expect.stringMatching(/^whsec_/) } });
    const theirs = (await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], config: { url: hookUrl } }, beta)).body;
    expect((await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], config: { url: hookUrl }, consumer: 'beta' }, alpha)).status).toBe(403);

    const listed = (await app.api('GET', '/v1/subscriptions', undefined, alpha)).body.data.map((s: { id: string }) => s.id);
    expect(listed).toContain(mine.body.id);
    expect(listed).not.toContain(theirs.id);
    for (const [method, path, body] of [
      ['GET', `/v1/subscriptions/${theirs.id}`, undefined],
      ['PATCH', `/v1/subscriptions/${theirs.id}`, { status: 'paused' }],
      ['GET', `/v1/subscriptions/${theirs.id}/deliveries`, undefined],
      ['POST', `/v1/subscriptions/${theirs.id}/secret/rotate`, {}],
      ['DELETE', `/v1/subscriptions/${theirs.id}`, undefined],
    ] as const) {
      expect({ path, method, status: (await app.api(method, path, body, alpha)).status }).toEqual({ path, method, status: 404 });
    }

    expect((await app.api('PATCH', `/v1/subscriptions/${mine.body.id}`, { status: 'paused' }, alpha)).body.status).toBe('paused');
    expect((await app.api('PATCH', `/v1/subscriptions/${mine.body.id}`, { status: 'active' }, alpha)).body.status).toBe('active');
    const rotated = await app.api('POST', `/v1/subscriptions/${mine.body.id}/secret/rotate`, {}, alpha);
    expect(rotated.status).toBe(200);
    await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 }, consumer: 'alpha' });
    let delivered: { id: string } | undefined;
    await waitFor(async () => {
      const answer = await app.api('GET', `/v1/subscriptions/${mine.body.id}/deliveries`, undefined, alpha);
      delivered = answer.body.data.find((delivery: { status: string }) => delivery.status === 'delivered');
      return delivered !== undefined;
    }, 'a delivery');
    expect((await app.api('POST', `/v1/deliveries/${delivered?.id}/retry`, undefined, alpha)).status).toBe(202);
    expect((await app.api('POST', `/v1/subscriptions/${mine.body.id}/replay`, { after: 0 }, alpha)).status).toBe(202);
    expect((await app.api('GET', '/v1/event-types', undefined, alpha)).status).toBe(200);
    expect((await app.api('GET', '/v1/events?after=0', undefined, alpha)).body.data.every((event: { consumer?: string }) => (event.consumer ?? 'alpha') === 'alpha')).toBe(true);
    expect((await app.api('DELETE', `/v1/subscriptions/${mine.body.id}`, undefined, alpha)).status).toBe(204);
  });

  it('never mint keys or act as admin: every such route answers 403 with its own problem type', async () => {
    const token = (await session('alpha')).token;
    const forbidden: [string, string, unknown][] = [
      ['POST', '/v1/keys', { role: 'admin' }],
      ['GET', '/v1/keys', undefined],
      ['DELETE', '/v1/keys/key_admin', undefined],
      ['POST', '/v1/events', { type: 'order.created', data: { n: 1 } }],
      ['POST', '/v1/event-types', { name: 'portal.made' }],
      ['POST', '/v1/stream-tokens', {}],
      ['POST', '/v1/portal-sessions', { consumer: 'alpha' }],
    ];
    for (const [method, path, body] of forbidden) {
      const answer = await app.api(method, path, body, token);
      expect({ method, path, status: answer.status, type: answer.body?.type }).toEqual({
        method,
        path,
        status: 403,
        type: 'urn:herald:problem:portal-token-forbidden',
      });
    }
    expect((await app.api('GET', '/v1/keys')).body.data.filter((key: { role: string }) => key.role === 'admin')).toHaveLength(1);
  });

  it('expire', async () => {
    const admin = await app.herald.keys.authenticate(app.adminKey);
    const { key } = await app.herald.keys.createPortalToken(admin, 'alpha', 1);
    expect((await app.api('GET', '/v1/subscriptions', undefined, key)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const expired = await app.api('GET', '/v1/subscriptions', undefined, key);
    expect(expired).toMatchObject({ status: 401, body: { type: 'urn:herald:problem:unauthorized', detail: 'The portal token has expired', reason: 'token-expired' } });
  });

  it('end when the admin key that opened them is revoked', async () => {
    const admin = (await app.api('POST', '/v1/keys', { role: 'admin' })).body;
    const token = (await session('alpha', admin.key)).token;
    const other = (await session('alpha')).token;
    expect((await app.api('GET', '/v1/subscriptions', undefined, token)).status).toBe(200);
    expect((await app.api('DELETE', `/v1/keys/${admin.id}`)).status).toBe(204);
    expect(await app.api('GET', '/v1/subscriptions', undefined, token)).toMatchObject({
      status: 401,
      body: { detail: 'The key that issued this portal token was revoked', reason: 'revoked' },
    });
    expect((await app.api('GET', '/v1/subscriptions', undefined, other)).status).toBe(200);
  });
});
