import { memoryTransport, startTestApp, type TestApp } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freshDatabase } from '../../packages/core/src/sql/postgres.test-support.js';

/** Where the subscriptions are stored: SQLite answers without I/O; PostgreSQL's round trips let creates interleave. */
async function databaseOf(kind: 'sqlite' | 'postgres'): Promise<string> {
  if (kind === 'sqlite') return ':memory:';
  const database = await freshDatabase();
  onTestFinished(() => database.drop());
  return database.url;
}

async function start(options: Parameters<typeof startTestApp>[1] = {}): Promise<TestApp> {
  const app = await startTestApp([memoryTransport()], options);
  onTestFinished(() => app.close());
  return app;
}

const subscribe = (app: TestApp, key: string, consumer?: string) =>
  app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'], ...(consumer ? { consumer } : {}) }, key);

const stored = async (app: TestApp, consumer: string) => (await app.herald.store.subscriptions.list({ consumer })).length;

describe('subscriptions per consumer (issue 13)', () => {
  it('holds 100 by default, and refuses the next with its own problem type, storing nothing', async () => {
    const app = await start();
    const key = await app.consumerKey('acme');
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => subscribe(app, key)));
      expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(201));
    }
    const before = await app.herald.store.subscriptions.list();
    const refused = await subscribe(app, key);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ type: 'urn:herald:problem:subscription-limit', status: 409, limit: 100 });
    // An admin subscribing on the consumer's behalf counts against the same cap.
    expect((await subscribe(app, app.adminKey, 'acme')).status).toBe(409);
    expect(await app.herald.store.subscriptions.list()).toEqual(before);
    // Another consumer has its own.
    expect((await subscribe(app, await app.consumerKey('beta'))).status).toBe(201);
  });

  it.each(['sqlite', 'postgres'] as const)('never goes over the cap under concurrent creates by the same consumer (%s)', async (kind) => {
    const app = await start({ database: await databaseOf(kind), env: { HERALD_MAX_SUBSCRIPTIONS: '5' } });
    const key = await app.consumerKey('acme');
    const answers = await Promise.all(Array.from({ length: 40 }, (_, n) => subscribe(app, n % 2 === 0 ? key : app.adminKey, 'acme')));
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(5);
    expect(answers.filter((answer) => answer.status === 409)).toHaveLength(35);
    expect(await stored(app, 'acme')).toBe(5);

    // Deleting one makes room for one.
    const [first] = await app.herald.store.subscriptions.list({ consumer: 'acme' });
    expect((await app.api('DELETE', `/v1/subscriptions/${first?.id}`, undefined, key)).status).toBe(204);
    const again = await Promise.all(Array.from({ length: 4 }, () => subscribe(app, key)));
    expect(again.map((answer) => answer.status).sort()).toEqual([201, 409, 409, 409]);
    expect(await stored(app, 'acme')).toBe(5);
  });

  it('takes the cap from the maxSubscriptions option before the environment', async () => {
    const app = await start({ maxSubscriptions: 2, env: { HERALD_MAX_SUBSCRIPTIONS: '50' } });
    const key = await app.consumerKey('acme');
    expect((await subscribe(app, key)).status).toBe(201);
    expect((await subscribe(app, key)).status).toBe(201);
    expect((await subscribe(app, key)).status).toBe(409);
  });

  it('refuses a cap that is not a positive whole number at startup', async () => {
    await expect(start({ env: { HERALD_MAX_SUBSCRIPTIONS: 'many' } })).rejects.toThrow(/HERALD_MAX_SUBSCRIPTIONS/);
    await expect(start({ maxSubscriptions: 0 })).rejects.toThrow(/^maxSubscriptions must be a positive whole number, not "0"/);
  });
});
