import { memoryTransport, startTestApp, type TestApp } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// By path: core's test support, for a PostgreSQL database of the test's own.
import { freshDatabase } from '../../packages/core/src/sql/postgres.test-support.js';

const idsOf = (page: { data: { id: string }[] }) => page.data.map((subscription) => subscription.id);

describe.each(['sqlite', 'postgres'] as const)('GET /v1/subscriptions on %s', (kind) => {
  let app: TestApp;
  let drop: (() => Promise<void>) | undefined;
  /** Every subscription made, by consumer, in id order. */
  const made: Record<string, { id: string; status: string }[]> = {};
  let all: string[] = [];

  beforeAll(async () => {
    const database = kind === 'postgres' ? await freshDatabase() : undefined;
    drop = database?.drop;
    // One consumer may hold 3: the list's page is as long by default.
    app = await startTestApp([memoryTransport()], { maxSubscriptions: 3, ...(database ? { database: database.url } : {}) });
    for (const [consumer, statuses] of [
      ['alpha', ['active', 'paused', 'disabled']],
      ['beta', ['paused', 'active']],
      ['gamma', ['active', 'active', 'paused']],
    ] as const) {
      made[consumer] = [];
      for (const status of statuses) {
        const created = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'], consumer, ...(status === 'paused' ? { status } : {}) });
        expect(created.status).toBe(201);
        if (status === 'disabled') expect((await app.api('PATCH', `/v1/subscriptions/${created.body.id}`, { status })).status).toBe(200);
        made[consumer]?.push({ id: created.body.id, status });
      }
    }
    all = Object.values(made)
      .flat()
      .map(({ id }) => id)
      .sort();
  });
  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('pages through every consumer’s subscriptions in id order, reading on with `after` = `next`', async () => {
    const pages: { data: { id: string }[]; next: string | null; hasMore: boolean }[] = [];
    let after: string | undefined;
    do {
      const answer = await app.api('GET', `/v1/subscriptions?limit=3${after !== undefined ? `&after=${after}` : ''}`);
      expect(answer.status).toBe(200);
      pages.push(answer.body);
      after = answer.body.next;
    } while (pages.at(-1)?.hasMore && pages.length < 10);
    expect(pages.map((page) => [idsOf(page).length, page.hasMore])).toEqual([
      [3, true],
      [3, true],
      [2, false],
    ]);
    expect(pages.flatMap(idsOf)).toEqual(all);
    for (const page of pages) expect(page.next).toBe(idsOf(page).at(-1));
    // Past the end: nothing, and `next` stays where it was.
    const last = all.at(-1) as string;
    expect((await app.api('GET', `/v1/subscriptions?after=${last}`)).body).toEqual({ data: [], next: last, hasMore: false });
  });

  it('by default, a page as long as one consumer’s subscriptions may be (HERALD_MAX_SUBSCRIPTIONS): a consumer gets its own whole', async () => {
    const admin = await app.api('GET', '/v1/subscriptions');
    expect(idsOf(admin.body)).toEqual(all.slice(0, 3));
    expect(admin.body.hasMore).toBe(true);
    for (const consumer of ['alpha', 'gamma']) {
      const own = await app.api('GET', '/v1/subscriptions', undefined, await app.consumerKey(consumer));
      expect(own.body).toMatchObject({ next: made[consumer]?.at(-1)?.id, hasMore: false });
      expect(idsOf(own.body)).toEqual(made[consumer]?.map(({ id }) => id));
    }
    expect((await app.api('GET', '/v1/subscriptions', undefined, await app.consumerKey('nobody'))).body).toEqual({ data: [], next: null, hasMore: false });
  });

  it('filters by status, with the consumer, transport and paging', async () => {
    const paused = await app.api('GET', '/v1/subscriptions?status=paused');
    expect(idsOf(paused.body)).toEqual(
      Object.values(made)
        .flat()
        .filter(({ status }) => status === 'paused')
        .map(({ id }) => id)
        .sort(),
    );
    expect(paused.body.data.every((subscription: { status: string }) => subscription.status === 'paused')).toBe(true);
    const gammaActive = made.gamma?.filter(({ status }) => status === 'active').map(({ id }) => id) ?? [];
    const first = await app.api('GET', '/v1/subscriptions?consumer=gamma&status=active&transport=memory&limit=1');
    expect(first.body).toEqual({ data: [expect.objectContaining({ id: gammaActive[0] })], next: gammaActive[0], hasMore: true });
    const second = await app.api('GET', `/v1/subscriptions?consumer=gamma&status=active&limit=1&after=${first.body.next}`);
    expect(second.body).toEqual({ data: [expect.objectContaining({ id: gammaActive[1] })], next: gammaActive[1], hasMore: false });
    const alphaKey = await app.consumerKey('alpha');
    expect(idsOf((await app.api('GET', '/v1/subscriptions?status=disabled', undefined, alphaKey)).body)).toEqual(
      made.alpha?.filter(({ status }) => status === 'disabled').map(({ id }) => id),
    );
    expect((await app.api('GET', '/v1/subscriptions?status=pending')).body).toEqual({ data: [], next: null, hasMore: false });
  });

  it.each([
    ['limit=abc', 'limit', 'must be a number, not "abc"'],
    ['limit=0', 'limit', expect.any(String)],
    ['limit=1.5', 'limit', 'must be a whole number'],
    ['limit=1001', 'limit', expect.any(String)],
    ['limit=1&limit=2', 'limit', 'given more than once; give it once'],
    ['status=x', 'status', expect.stringContaining('active')],
    ['status=', 'status', expect.any(String)],
    ['after=', 'after', expect.any(String)],
    ['after=sub_%00', 'after', 'must hold no U+0000 (NUL)'],
  ])('answers ?%s with a 422 naming %s', async (query, parameter, message) => {
    const answer = await app.api('GET', `/v1/subscriptions?${query}`);
    expect(answer).toEqual({
      status: 422,
      body: expect.objectContaining({ type: 'urn:herald:problem:validation-failed', errors: [expect.objectContaining({ path: [parameter], message })] }),
    });
  });

  it('is described so in /openapi.json', async () => {
    const list = (await app.api('GET', '/openapi.json')).body.paths['/v1/subscriptions'].get;
    const parameters = Object.fromEntries(list.parameters.map((parameter: { name: string; in: string; schema: unknown }) => [`${parameter.in}:${parameter.name}`, parameter.schema]));
    expect(Object.keys(parameters).sort()).toEqual(['query:after', 'query:consumer', 'query:limit', 'query:status', 'query:transport']);
    expect(parameters['query:limit']).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000, default: 3 });
    expect(parameters['query:status']).toMatchObject({ enum: ['active', 'paused', 'disabled', 'pending'] });
    const page = list.responses['200'].content['application/json'].schema;
    expect(page.required).toEqual(['data', 'next', 'hasMore']);
    expect(page.properties.hasMore).toEqual({ type: 'boolean' });
  });

  it('ignores a parameter it does not know, as the other lists do', async () => {
    expect((await app.api('GET', '/v1/subscriptions?foo=bar&limit=8')).body).toEqual((await app.api('GET', '/v1/subscriptions?limit=8')).body);
  });
});

it('takes a limit up to HERALD_MAX_SUBSCRIPTIONS when that is over 1,000, so that a consumer’s list still comes in one page', async () => {
  const app = await startTestApp([memoryTransport()], { maxSubscriptions: 1500 });
  try {
    expect((await app.api('GET', '/v1/subscriptions?limit=1500')).status).toBe(200);
    expect((await app.api('GET', '/v1/subscriptions?limit=1501')).body.errors).toEqual([expect.objectContaining({ path: ['limit'], message: 'Too big: expected number to be <=1500' })]);
    const limit = (await app.api('GET', '/openapi.json')).body.paths['/v1/subscriptions'].get.parameters.find((parameter: { name: string }) => parameter.name === 'limit');
    expect(limit.schema).toMatchObject({ maximum: 1500, default: 1500 });
  } finally {
    await app.close();
  }
});

describe('POST /v1/subscriptions/:id/replay without a body', () => {
  let app: TestApp;
  let id: string;

  beforeAll(async () => {
    app = await startTestApp([webhook()], { env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' } });
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['order.*'], consumer: 'acme', config: { url: 'http://127.0.0.1:9/hook' } });
    expect(created.status).toBe(201);
    id = created.body.id;
  });
  afterAll(() => app?.close());

  it.each([
    ['no Content-Type', {}],
    ['Content-Type: application/json', { 'content-type': 'application/json' }],
  ])('is a 422 that says to send a JSON object with `after` or `since` (%s)', async (_, headers) => {
    const response = await fetch(`${app.baseUrl}/v1/subscriptions/${id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${app.adminKey}`, ...headers } });
    expect(response.status).toBe(422);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = await response.json();
    expect(problem).toMatchObject({ type: 'urn:herald:problem:validation-failed', detail: expect.stringContaining('JSON body') });
    expect(problem.errors).toEqual([
      { path: [], message: 'required: a JSON object', code: 'invalid_type' },
      { path: [], message: 'give exactly one of `after` (a seq) and `since` (a time)', code: 'custom' },
    ]);
  });

  it('says what each route lacks: the fields a create needs', async () => {
    const response = await fetch(`${app.baseUrl}/v1/subscriptions`, { method: 'POST', headers: { authorization: `Bearer ${app.adminKey}` } });
    expect(response.status).toBe(422);
    expect((await response.json()).errors).toEqual([
      { path: [], message: 'required: a JSON object', code: 'invalid_type' },
      { path: ['transport'], message: 'required', code: 'invalid_type' },
      { path: ['types'], message: 'required', code: 'invalid_type' },
    ]);
  });
});
