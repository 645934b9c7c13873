import type { HeraldEvent } from '@herald/core';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startTestApp, waitFor } from '../../testkit/src/index.js';
// By path: core's test support, for a PostgreSQL database of the test's own.
import { freshDatabase } from '../../core/src/sql/postgres.test-support.js';
import { scripted, subscribe } from './scripted-transport.test-support.js';

describe('a replay whose store is unavailable a moment', () => {
  it('waits, then goes on and completes (PostgreSQL: its connection terminated under a statement)', async () => {
    const database = await freshDatabase();
    onTestFinished(() => database.drop());
    const { transport, timesSent } = scripted(() => ({ delivered: true, responseStatus: 200 }));
    const app = await startTestApp([transport], { database: database.url });
    onTestFinished(() => app.close());
    const id = await subscribe(app, 'replayed');
    const published: HeraldEvent[] = [];
    for (let n = 0; n < 5; n++) published.push((await app.herald.publish({ type: 'order.created', data: { n } })).event);
    await waitFor(() => published.every((event) => timesSent('replayed', event.id) === 1), 'every event delivered once');

    // Another session locks the deliveries' rows: the replay's write waits for them, and its connection is then terminated.
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    onTestFinished(() => locker.end());
    await locker.query('begin');
    await locker.query('select id from herald_deliveries where subscription_id = $1 for update', [id]);
    expect((await app.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 })).status).toBe(202);
    let terminated = 0;
    await waitFor(async () => {
      const { rows } = await locker.query<{ pid: number }>('select pid from pg_locks where not granted and pid <> pg_backend_pid()');
      for (const { pid } of rows) terminated += (await locker.query('select pg_terminate_backend($1)', [pid])).rowCount ?? 0;
      return terminated > 0;
    }, "the replay's write waiting for the lock");
    await locker.query('rollback');

    await waitFor(async () => (await app.api('GET', `/v1/subscriptions/${id}/replay`)).body.status !== 'running', 'the replay to end', 15_000);
    expect((await app.api('GET', `/v1/subscriptions/${id}/replay`)).body).toMatchObject({ status: 'completed', replayed: 5 });
    await waitFor(() => published.every((event) => timesSent('replayed', event.id) === 2), 'every event delivered again');
  });
});
