import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A database on the machine's PostgreSQL in which the tests may create and drop databases. */
export const adminUrl = process.env.HERALD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  try {
    await client.connect();
  } catch (error) {
    // Loud on purpose: these tests need the machine's PostgreSQL (.ci/run starts it).
    throw new Error(`PostgreSQL is not reachable at ${adminUrl}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A new empty database: its URL, a way to query it, and a function that drops it, connections and all. */
export async function freshDatabase(): Promise<{ url: string; query<R extends pg.QueryResultRow>(text: string): Promise<R[]>; drop(): Promise<void> }> {
  const name = `herald_test_${process.pid}_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async query<R extends pg.QueryResultRow>(text: string) {
      const client = new pg.Client({ connectionString: url.href });
      await client.connect();
      try {
        return (await client.query<R>(text)).rows;
      } finally {
        await client.end();
      }
    },
    drop: () =>
      admin(async (client) => {
        // A pool that has just ended may still be closing its connections: terminated now, such a client would
        // report it as an error that no pool listens to any more. Give them a moment to go by themselves.
        for (let waited = 0; waited < 2_000; waited += 20) {
          const { rows } = await client.query<{ sessions: number }>('select count(*)::int as sessions from pg_stat_activity where datname = $1', [name]);
          if (rows[0]?.sessions === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await client.query(`drop database if exists ${name} with (force)`);
      }),
  };
}
