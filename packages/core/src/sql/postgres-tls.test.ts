import { sql } from 'kysely';
import { describe, expect, it, onTestFinished } from 'vitest';
import { testTls } from '../../../webhook/src/test-tls.test-support.js';
import { ownPostgresWithTls } from './own-postgres.test-support.js';
import { postgresStore } from './postgres-store.js';

const event = (n: number) => ({
  specversion: '1.0' as const,
  id: `evt_tls_${n}`,
  type: 'order.created',
  source: '/test',
  time: new Date().toISOString(),
  datacontenttype: 'application/json' as const,
  data: { n },
});

describe('PostgreSQL over TLS', () => {
  it('takes a URL with sslmode=verify-full and sslrootcert: the store appends and reads over TLS; without the authority it does not start, saying why; without TLS the server lets nothing in', async () => {
    const server = await ownPostgresWithTls();
    onTestFinished(() => server.close());
    const url = `postgres://postgres@localhost:${server.port}/postgres`;

    const store = postgresStore({ url: `${url}?sslmode=verify-full&sslrootcert=${testTls.ca}` });
    await store.init();
    const appended = await store.append([event(1), event(2)]);
    expect((await store.read({ after: 0, limit: 10 })).map((read) => read.id)).toEqual(appended.map((result) => result.event.id));
    const { rows } = await sql<{ ssl: boolean }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(store.database);
    expect(rows).toEqual([{ ssl: true }]);
    await store.close();

    const shown = `postgres://***@localhost:${server.port}/postgres`;
    const untrusting = postgresStore({ url: `${url}?sslmode=verify-full` });
    await expect(untrusting.init()).rejects.toThrow(
      new Error(`postgresStore cannot start on the database at ${shown}?sslmode=verify-full: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`),
    );
    await untrusting.close();

    const plain = postgresStore({ url });
    await expect(plain.init()).rejects.toThrow(/^postgresStore cannot start on the database at .*: no pg_hba\.conf entry for host "127\.0\.0\.1", user "postgres", database "postgres", no encryption \(28000\)$/);
    await plain.close();
  });
});
