import { memoryTransport, startTestApp, type TestApp } from '@herald/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let app: TestApp;
let alphaKey: string;
let betaKey: string;

beforeAll(async () => {
  app = await startTestApp([memoryTransport()]);
  alphaKey = await app.consumerKey('alpha');
  betaKey = await app.consumerKey('beta');
});
afterAll(() => app.close());

describe('the REST API', () => {
  it('makes consumer keys that authenticate as their consumer', async () => {
    const created = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'gamma' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ role: 'consumer', consumer: 'gamma' });
    expect(created.body.key).toMatch(/^hk_/);
    expect(created.body).not.toHaveProperty('hash');
    const listed = await app.api('GET', '/v1/subscriptions', undefined, created.body.key);
    expect(listed).toEqual({ status: 200, body: { data: [], next: null, hasMore: false } });
    const keys = await app.api('GET', '/v1/keys');
    expect(keys.body.data.map((key: { id: string }) => key.id)).toContain(created.body.id);
  });

  it('registers an event type with a JSON Schema and enforces it', async () => {
    const schema = { type: 'object', properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } }, required: ['sku', 'qty'] };
    const registered = await app.api('POST', '/v1/event-types', { name: 'stock.reserved', description: 'Stock was reserved', schema });
    expect(registered.status).toBe(201);
    expect(registered.body).toMatchObject({ name: 'stock.reserved', origin: 'api', schema });
    const again = await app.api('POST', '/v1/event-types', { name: 'stock.reserved', description: 'Stock was reserved', schema });
    expect(again.status).toBe(200);
    const conflicting = await app.api('POST', '/v1/event-types', { name: 'stock.reserved', schema: { type: 'string' } });
    expect(conflicting.status).toBe(409);
    const listed = await app.api('GET', '/v1/event-types', undefined, alphaKey);
    expect(listed.body.data.map((type: { name: string }) => type.name)).toContain('stock.reserved');

    const valid = await app.api('POST', '/v1/events', { type: 'stock.reserved', data: { sku: 'A-1', qty: 2 } });
    expect(valid.status).toBe(202);
    expect(valid.body).toEqual({ id: expect.stringMatching(/^evt_/), seq: expect.any(Number) });
    const invalid = await app.api('POST', '/v1/events', { type: 'stock.reserved', data: { sku: 'A-1', qty: 0 } });
    expect(invalid.status).toBe(422);
    expect(invalid.body.errors).toEqual([expect.objectContaining({ path: ['data', 'qty'] })]);
  });

  it('answers a repeated event id with the first result', async () => {
    const first = await app.api('POST', '/v1/events', { id: 'order-42-created', type: 'order.created', data: { n: 42 } });
    expect(first.status).toBe(202);
    const second = await app.api('POST', '/v1/events', { id: 'order-42-created', type: 'order.created', data: { n: 43 } });
    expect(second).toEqual({ status: 200, body: first.body });
    const log = await app.api('GET', `/v1/events?after=${first.body.seq - 1}&limit=1`);
    expect(log.body.data[0]).toMatchObject({ id: 'order-42-created', data: { n: 42 } });
  });

  it('creates, lists, updates and deletes subscriptions', async () => {
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*', 'invoice.paid'] }, alphaKey);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ consumer: 'alpha', transport: 'memory', types: ['order.*', 'invoice.paid'], status: 'active' });
    const id = created.body.id as string;

    const byAdmin = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['**'], consumer: 'alpha' });
    expect(byAdmin.status).toBe(201);
    expect(byAdmin.body.consumer).toBe('alpha');

    const listed = await app.api('GET', '/v1/subscriptions', undefined, alphaKey);
    expect(listed.body.data.map((s: { id: string }) => s.id).sort()).toEqual([id, byAdmin.body.id].sort());

    const updated = await app.api('PATCH', `/v1/subscriptions/${id}`, { types: ['order.shipped'], status: 'paused' }, alphaKey);
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ id, types: ['order.shipped'], status: 'paused' });
    expect((await app.api('GET', `/v1/subscriptions/${id}`, undefined, alphaKey)).body).toEqual(updated.body);

    expect((await app.api('DELETE', `/v1/subscriptions/${id}`, undefined, alphaKey)).status).toBe(204);
    expect((await app.api('GET', `/v1/subscriptions/${id}`, undefined, alphaKey)).status).toBe(404);
    expect((await app.api('DELETE', `/v1/subscriptions/${byAdmin.body.id}`)).status).toBe(204);
  });

  it('reads the log with after, types and limit', async () => {
    const published: { id: string; seq: number; type: string }[] = [];
    for (const [n, type] of ['order.created', 'invoice.paid', 'order.shipped', 'order.line.added', 'order.created'].entries()) {
      const { body } = await app.api('POST', '/v1/events', { type, data: { n } });
      published.push({ ...body, type });
    }
    const start = (published[0]?.seq as number) - 1;
    const all = await app.api('GET', `/v1/events?after=${start}`, undefined, alphaKey);
    expect(all.body.data.map((event: { id: string }) => event.id)).toEqual(published.map((event) => event.id));
    const orders = await app.api('GET', `/v1/events?after=${start}&types=order.*`);
    expect(orders.body.data.map((event: { type: string }) => event.type)).toEqual(['order.created', 'order.shipped', 'order.created']);
    const page = await app.api('GET', `/v1/events?after=${start}&types=order.**,invoice.paid&limit=2`);
    expect(page.body).toMatchObject({ hasMore: true, next: published[1]?.seq });
    const rest = await app.api('GET', `/v1/events?after=${page.body.next}&types=order.**,invoice.paid&limit=10`);
    expect(rest.body.data.map((event: { id: string }) => event.id)).toEqual(published.slice(2).map((event) => event.id));
    expect(rest.body.hasMore).toBe(false);
  });

  it('reports oldest, and moves next forward past what a read does not get (issue 16)', async () => {
    await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 } });
    const last = await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 2 } });
    // `*.zzz` matches no type in the catalog: no scan, an empty page, and next at the head of the log.
    const none = await app.api('GET', '/v1/events?after=0&types=*.zzz&limit=1000');
    expect(none.body).toEqual({ data: [], next: last.body.seq, hasMore: false, oldest: 1 });
    // The last order is behind the last invoice: a page that is not full goes on from the head, never back.
    const orders = await app.api('GET', `/v1/events?after=${last.body.seq - 2}&types=order.*`);
    expect(orders.body).toMatchObject({ data: [expect.objectContaining({ seq: last.body.seq - 1 })], next: last.body.seq, hasMore: false });
    const again = await app.api('GET', `/v1/events?after=${orders.body.next}&types=order.*`);
    expect(again.body).toEqual({ data: [], next: last.body.seq, hasMore: false, oldest: 1 });
    // A full page goes on from its last event.
    const full = await app.api('GET', '/v1/events?after=0&types=invoice.paid&limit=1');
    expect(full.body).toMatchObject({ hasMore: true, next: full.body.data[0].seq, oldest: 1 });
  });

  it('isolates consumers from each other in both directions', async () => {
    const toAlpha = await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 1 }, consumer: 'alpha' });
    const toBeta = await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 2 }, consumer: 'beta' });
    const after = toAlpha.body.seq - 1;
    const alphaSees = await app.api('GET', `/v1/events?after=${after}`, undefined, alphaKey);
    const betaSees = await app.api('GET', `/v1/events?after=${after}`, undefined, betaKey);
    expect(alphaSees.body.data.map((event: { id: string }) => event.id)).toEqual([toAlpha.body.id]);
    expect(betaSees.body.data.map((event: { id: string }) => event.id)).toEqual([toBeta.body.id]);

    const alphaSub = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['**'] }, alphaKey);
    const betaSub = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['**'] }, betaKey);
    for (const [key, other] of [
      [alphaKey, betaSub.body.id],
      [betaKey, alphaSub.body.id],
    ] as const) {
      expect((await app.api('GET', `/v1/subscriptions/${other}`, undefined, key)).status).toBe(404);
      expect((await app.api('PATCH', `/v1/subscriptions/${other}`, { status: 'paused' }, key)).status).toBe(404);
      expect((await app.api('DELETE', `/v1/subscriptions/${other}`, undefined, key)).status).toBe(404);
      const own = await app.api('GET', '/v1/subscriptions', undefined, key);
      expect(own.body.data.map((s: { id: string }) => s.id)).not.toContain(other);
    }
    expect((await app.api('GET', `/v1/subscriptions/${betaSub.body.id}`)).body.status).toBe('active');
    expect((await app.api('GET', `/v1/subscriptions/${alphaSub.body.id}`)).body.status).toBe('active');
    expect((await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['**'], consumer: 'beta' }, alphaKey)).status).toBe(403);
  });

  it('keeps consumers away from admin routes', async () => {
    expect((await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 1 } }, alphaKey)).status).toBe(403);
    expect((await app.api('POST', '/v1/keys', { role: 'admin' }, alphaKey)).status).toBe(403);
    expect((await app.api('POST', '/v1/event-types', { name: 'x.y' }, alphaKey)).status).toBe(403);
    expect((await app.api('GET', '/v1/keys', undefined, alphaKey)).status).toBe(403);
  });

  it('issues stream tokens scoped to a consumer and expiring', async () => {
    const token = await app.api('POST', '/v1/stream-tokens', { types: ['order.*'], ttl: 60 }, alphaKey);
    expect(token.status).toBe(201);
    expect(token.body).toMatchObject({ consumer: 'alpha', types: ['order.*'], token: expect.stringMatching(/^hs_/) });
    expect(Date.parse(token.body.expiresAt) - Date.now()).toBeGreaterThan(50_000);
    expect((await app.api('GET', '/v1/events?types=order.*', undefined, token.body.token)).status).toBe(200);
    expect((await app.api('POST', '/v1/stream-tokens', {}, token.body.token)).status).toBe(403);
    expect((await app.api('POST', '/v1/stream-tokens', { consumer: 'beta' }, alphaKey)).status).toBe(403);
    const forBeta = await app.api('POST', '/v1/stream-tokens', { consumer: 'beta' });
    expect(forBeta.body.consumer).toBe('beta');
  });

  it('revokes keys, and the stream tokens they issued', async () => {
    const key = (await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'delta' })).body;
    const token = (await app.api('POST', '/v1/stream-tokens', {}, key.key)).body.token;
    expect((await app.api('GET', '/v1/events', undefined, token)).status).toBe(200);
    expect((await app.api('DELETE', `/v1/keys/${key.id}`)).status).toBe(204);
    // The holder of a credential that was good once is told why, in words and in `reason`.
    expect(await app.api('GET', '/v1/subscriptions', undefined, key.key)).toMatchObject({
      status: 401,
      body: { type: 'urn:herald:problem:unauthorized', detail: 'The API key was revoked', reason: 'revoked' },
    });
    expect(await app.api('GET', '/v1/events', undefined, token)).toMatchObject({
      status: 401,
      body: { detail: 'The key that issued this stream token was revoked', reason: 'revoked' },
    });
    // Revoking it again answers as the first time (DELETE is idempotent); an unknown key is a 404.
    expect((await app.api('DELETE', `/v1/keys/${key.id}`)).status).toBe(204);
    expect((await app.api('DELETE', `/v1/keys/key_0123456789abcdef0123`)).status).toBe(404);
    // A key the server never issued has no reason to give.
    expect((await app.api('GET', '/v1/subscriptions', undefined, `hk_${'0'.repeat(20)}_${'0'.repeat(64)}`)).body).toEqual({
      type: 'urn:herald:problem:unauthorized',
      title: 'Unauthorized',
      status: 401,
      detail: 'The API key is not valid',
    });
  });

  it('lets a stream token only read (issue 13): every other route answers 403 with its own problem type', async () => {
    // An admin's 10-second token for one type: once it could mint a permanent admin key.
    const adminToken = (await app.api('POST', '/v1/stream-tokens', { types: ['order.created'], ttl: 10 })).body.token;
    const consumerToken = (await app.api('POST', '/v1/stream-tokens', { types: ['invoice.*'] }, alphaKey)).body.token;
    const sub = (await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['invoice.*'] }, alphaKey)).body;
    const writes: [string, string, unknown][] = [
      ['POST', '/v1/keys', { role: 'admin' }],
      ['GET', '/v1/keys', undefined],
      ['POST', '/v1/events', { type: 'order.created', data: { n: 1 } }],
      ['POST', '/v1/event-types', { name: 'token.made' }],
      ['POST', '/v1/stream-tokens', {}],
      ['GET', '/v1/subscriptions', undefined],
      ['POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'] }],
      ['GET', `/v1/subscriptions/${sub.id}`, undefined],
      ['PATCH', `/v1/subscriptions/${sub.id}`, { types: ['order.*'] }],
      ['DELETE', `/v1/subscriptions/${sub.id}`, undefined],
    ];
    for (const token of [adminToken, consumerToken]) {
      for (const [method, path, body] of writes) {
        const answer = await app.api(method, path, body, token);
        expect({ method, path, status: answer.status, type: answer.body?.type }).toEqual({
          method,
          path,
          status: 403,
          type: 'urn:herald:problem:stream-token-forbidden',
        });
      }
    }
    expect((await app.api('GET', '/v1/keys')).body.data.filter((key: { role: string }) => key.role === 'admin')).toHaveLength(1);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.types).toEqual(['invoice.*']);
    expect((await app.api('GET', '/v1/event-types', undefined, adminToken)).status).toBe(200);
  });

  it('limits what a stream token reads to its types and its consumer (issue 13)', async () => {
    for (const [type, consumer] of [['order.created', undefined], ['invoice.paid', undefined], ['invoice.paid', 'alpha'], ['invoice.paid', 'beta']] as const) {
      const published = await app.api('POST', '/v1/events', { type, data: { n: 1 }, ...(consumer ? { consumer } : {}) });
      expect(published.status).toBe(202);
    }
    const read = async (token: string, query = '') => {
      const answer = await app.api('GET', `/v1/events?after=0&limit=1000${query}`, undefined, token);
      expect(answer.status).toBe(200);
      return answer.body.data as { type: string; consumer?: string }[];
    };
    const invoices = (await app.api('POST', '/v1/stream-tokens', { types: ['invoice.*'] }, alphaKey)).body.token;
    expect((await app.api('GET', '/v1/events?types=order.*', undefined, invoices)).status).toBe(403);
    expect((await app.api('GET', '/v1/events?types=invoice.*,order.created', undefined, invoices)).status).toBe(403);
    const seen = await read(invoices);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((event) => event.type.startsWith('invoice.') && (event.consumer ?? 'alpha') === 'alpha')).toBe(true);
    expect(seen.some((event) => event.consumer === 'alpha')).toBe(true);
    expect(await read(invoices, '&types=invoice.paid')).toEqual(seen.filter((event) => event.type === 'invoice.paid'));

    // An admin's token for no consumer reads only what is addressed to everyone.
    const broadcast = (await app.api('POST', '/v1/stream-tokens', {})).body.token;
    const everyone = await read(broadcast);
    expect(everyone.some((event) => event.type === 'order.created')).toBe(true);
    expect(everyone.filter((event) => event.consumer !== undefined)).toEqual([]);
  });

  it('answers health and readiness', async () => {
    expect(await (await fetch(`${app.baseUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${app.baseUrl}/readyz`)).json()).toEqual({ status: 'ready' });
  });
});
