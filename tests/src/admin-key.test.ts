import { randomBytes } from 'node:crypto';
import { createHerald } from '@herald/server';
import { recordingLogger, restClient, testEventTypes } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../packages/core/src/temp-folder.test-support.js';

/** A key in the shape the server issues: `hk_<20 hex>_<64 hex>`. */
const keyShaped = () => `hk_${randomBytes(10).toString('hex')}_${randomBytes(32).toString('hex')}`;

async function serve(env: Record<string, string>, database = ':memory:') {
  const herald = createHerald({ database, logLevel: 'silent', env, eventTypes: testEventTypes });
  onTestFinished(() => herald.close());
  const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  return { herald, baseUrl: `http://127.0.0.1:${port}` };
}

describe('HERALD_ADMIN_KEY (issue 13)', () => {
  it('authenticates a key-shaped value as the admin', async () => {
    const adminKey = keyShaped();
    const { herald, baseUrl } = await serve({ HERALD_ADMIN_KEY: adminKey });
    expect(await herald.generatedAdminKey).toBeUndefined();
    const { api } = restClient(baseUrl, adminKey);
    expect((await api('POST', '/v1/events', { type: 'order.created', data: { n: 1 } })).status).toBe(202);
    const made = await api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme' });
    expect(made.status).toBe(201);
    // The keys the server issues still authenticate as themselves.
    expect((await api('GET', '/v1/subscriptions', undefined, made.body.key)).status).toBe(200);
    expect((await api('GET', '/v1/keys', undefined, made.body.key)).status).toBe(403);
  });

  it('replaces the previous one on a restart with another value, key-shaped or not', async () => {
    const database = tempDatabase();
    const first = keyShaped();
    const firstRun = await serve({ HERALD_ADMIN_KEY: first }, database);
    expect((await restClient(firstRun.baseUrl, first).api('GET', '/v1/keys')).status).toBe(200);
    await firstRun.herald.close();

    const second = `a plain phrase of more than thirty-two characters`.replaceAll(' ', '-');
    const secondRun = await serve({ HERALD_ADMIN_KEY: second }, database);
    expect((await restClient(secondRun.baseUrl, second).api('GET', '/v1/keys')).status).toBe(200);
    expect((await restClient(secondRun.baseUrl, first).api('GET', '/v1/keys')).status).toBe(401);
  });

  it('stops startup on a value under 32 characters, or one that cannot be sent as a bearer token', () => {
    const start = (env: Record<string, string>, adminKey?: string) => () =>
      createHerald({ database: ':memory:', logLevel: 'silent', env, ...(adminKey !== undefined ? { adminKey } : {}) });
    expect(start({ HERALD_ADMIN_KEY: 'secret' })).toThrow(/HERALD_ADMIN_KEY must be at least 32 characters/);
    expect(start({ HERALD_ADMIN_KEY: 'x'.repeat(31) })).toThrow(/HERALD_ADMIN_KEY must be at least 32 characters/);
    // Given as an option, the error names the option rather than the variable it was not read from.
    expect(start({}, 'admin-short')).toThrow(/^adminKey must be at least 32 characters \(it has 11\)/);
    expect(start({}, 'admin short key of more than thirty-two characters')).toThrow(/^adminKey must be .*without spaces/);
    expect(() => createHerald({ database: ':memory:', logLevel: 'silent', env: {}, port: 70_000 })).toThrow(/^port must be a port number, not "70000"/);
    expect(() => createHerald({ database: ':memory:', logLevel: 'silent', env: { PORT: 'eighty' } })).toThrow(/^PORT must be a port number, not "eighty"/);
    expect(start({ HERALD_ADMIN_KEY: `${'x'.repeat(20)} ${'y'.repeat(20)}` })).toThrow(/HERALD_ADMIN_KEY must be .*without spaces/);
    expect(start({ HERALD_ADMIN_KEY: `${'é'.repeat(40)}` })).toThrow(/HERALD_ADMIN_KEY must be .*without spaces/);
  });
});

describe('a generated admin key (issue 17)', () => {
  it('is logged by createHerald once, at warn level, and not again on the next start', async () => {
    const database = tempDatabase();
    const start = async () => {
      const logger = recordingLogger();
      const herald = createHerald({ database, logger, env: {}, eventTypes: testEventTypes });
      onTestFinished(() => herald.close());
      await herald.ready;
      return { herald, logged: logger.entries.filter((entry) => JSON.stringify(entry).includes('hk_')) };
    };
    const first = await start();
    const key = await first.herald.generatedAdminKey;
    expect(key).toMatch(/^hk_/);
    expect(first.logged).toEqual([{ level: 'warn', fields: {}, message: expect.stringContaining(key as string) }]);
    const { url } = await first.herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
    expect((await restClient(url, key as string).api('GET', '/v1/keys')).status).toBe(200);
    await first.herald.close();

    const second = await start();
    expect(await second.herald.generatedAdminKey).toBeUndefined();
    expect(second.logged).toEqual([]);
  });
});
