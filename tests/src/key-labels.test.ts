import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeSnapshot } from './store-snapshot.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp([]);
});
afterAll(() => app?.close());

interface ListedKey {
  id: string;
  role: string;
  consumer?: string;
  name?: string;
  createdBy?: string;
  createdAt: string;
  lastUsedAt?: string;
  revokedAt?: string;
}

async function listed(id: string): Promise<ListedKey | undefined> {
  const { status, body } = await app.api('GET', '/v1/keys');
  expect(status).toBe(200);
  return (body.data as ListedKey[]).find((key) => key.id === id);
}

describe('what GET /v1/keys tells of each key', () => {
  it('its name, trimmed, as POST /v1/keys was given it, and the admin key that made it', async () => {
    const made = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme', name: '  Billing sync (prod) ✓  ' });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ role: 'consumer', consumer: 'acme', name: 'Billing sync (prod) ✓', createdBy: 'key_admin', key: expect.stringMatching(/^hk_/) });
    expect(made.body).not.toHaveProperty('hash');
    const { key: _key, ...record } = made.body;
    expect(await listed(made.body.id)).toEqual(record);

    // An admin key made over the API makes keys of its own: they name it, not the environment's key.
    const provisioner = await app.api('POST', '/v1/keys', { role: 'admin', name: 'provisioning script' });
    const byProvisioner = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'globex' }, provisioner.body.key);
    expect(byProvisioner.status).toBe(201);
    expect(await listed(byProvisioner.body.id)).toEqual({
      id: byProvisioner.body.id,
      role: 'consumer',
      consumer: 'globex',
      createdBy: provisioner.body.id,
      createdAt: byProvisioner.body.createdAt,
    });
    // A name of 100 characters once trimmed is taken.
    const longest = await app.api('POST', '/v1/keys', { role: 'admin', name: ` ${'n'.repeat(100)} ` });
    expect(longest.status).toBe(201);
    expect(longest.body.name).toBe('n'.repeat(100));
  });

  it('refuses a name that is empty, blank, longer than 100 characters, not a string or holds a line break, and stores nothing', async () => {
    const before = await storeSnapshot(app.herald.store);
    for (const name of ['', '   ', 'n'.repeat(101), 42, null, 'two\nlines']) {
      const { status, body } = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme', name });
      expect({ name, status, type: body.type }).toEqual({ name, status: 422, type: 'urn:herald:problem:validation-failed' });
      expect(body.errors).toEqual([expect.objectContaining({ path: ['name'], message: expect.any(String) })]);
    }
    const { body } = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme', name: 'n'.repeat(101) });
    expect(body.errors[0].message).toMatch(/at most 100 characters/);
    expect(await storeSnapshot(app.herald.store)).toEqual(before);
  });

  it('when it last authenticated a request: absent until then, set by its use, off the request', async () => {
    const made = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'initech', name: 'initech backend' });
    expect(made.body).not.toHaveProperty('lastUsedAt');
    expect(await listed(made.body.id)).not.toHaveProperty('lastUsedAt');

    const before = Date.now();
    expect((await app.api('GET', '/v1/subscriptions', undefined, made.body.key)).status).toBe(200);
    const after = Date.now();
    await waitFor(async () => (await listed(made.body.id))?.lastUsedAt !== undefined, 'the use to be written');
    const usedAt = Date.parse((await listed(made.body.id))?.lastUsedAt as string);
    expect(usedAt).toBeGreaterThanOrEqual(before);
    expect(usedAt).toBeLessThanOrEqual(after);
    // The environment's admin key, which listed them, was used too.
    await waitFor(async () => (await listed('key_admin'))?.lastUsedAt !== undefined, "the admin key's use to be written");
  });

  it('is in /openapi.json: the name POST /v1/keys takes, and the fields it and GET /v1/keys answer', async () => {
    const document = await (await fetch(`${app.baseUrl}/openapi.json`)).json();
    const create = document.paths['/v1/keys'].post;
    const name = create.requestBody.content['application/json'].schema.properties.name;
    expect(name).toMatchObject({ type: 'string', minLength: 1, maxLength: 100 });
    const listedKey = document.paths['/v1/keys'].get.responses['200'].content['application/json'].schema.properties.data.items;
    const createdKey = create.responses['201'].content['application/json'].schema;
    for (const schema of [listedKey, createdKey]) {
      expect(schema.properties).toMatchObject({ name: { type: 'string' }, createdBy: { type: 'string' }, lastUsedAt: { type: 'string' } });
      expect(schema.required).not.toEqual(expect.arrayContaining(['name']));
    }
  });
});
