import type { HeraldEvent } from '@herald/core';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { startTestApp, type TestApp, waitFor } from '../../testkit/src/index.js';
// By path: core's test support, for a PostgreSQL database of the test's own.
import { freshDatabase } from '../../core/src/sql/postgres.test-support.js';
import { scripted, subscribe } from './scripted-transport.test-support.js';

/** Words no store here keeps: the test makes its database refuse an attempt with them, or with status 599. */
const unkept = 'kept by no store';

/** A store of `kind` whose attempts table refuses, as a database refuses a value it cannot keep, an attempt with {@link unkept} or status 599. */
async function refusingDatabase(kind: 'sqlite' | 'postgres'): Promise<{ database: string; refuse(): Promise<void> }> {
  if (kind === 'postgres') {
    const made = await freshDatabase();
    onTestFinished(() => made.drop());
    return {
      database: made.url,
      refuse: async () => {
        await made.query(
          `alter table herald_delivery_attempts add constraint kept_by_no_store check (position('${unkept}' in coalesce(response_body, '') || coalesce(error, '')) = 0 and coalesce(response_status, 0) <> 599)`,
        );
      },
    };
  }
  const database = tempDatabase();
  return {
    database,
    refuse: async () => {
      const db = new Database(database);
      db.exec(
        `create trigger kept_by_no_store before insert on herald_delivery_attempts when instr(coalesce(new.response_body, '') || coalesce(new.error, ''), '${unkept}') > 0 or new.response_status = 599 begin select raise(abort, 'kept by no store'); end`,
      );
      db.close();
    },
  };
}

async function deliveries(app: TestApp, id: string): Promise<any[]> {
  const { status, body } = await app.api('GET', `/v1/subscriptions/${id}/deliveries?limit=100`);
  expect(status).toBe(200);
  return body.data;
}

describe('an attempt the store refuses to keep', () => {
  it.each(['sqlite', 'postgres'] as const)(
    'is kept without what it returned, or not kept and sent again; no other delivery waits for it (%s)',
    async (kind) => {
      const { database, refuse } = await refusingDatabase(kind);
      // Event 0's first answer has words the store refuses; event 1's first answer a status it refuses,
      // with any words; so has event 2's second, after a first answer kept (its delivery then has a row).
      const { transport, timesSent } = scripted((destination, n, sentBefore) => {
        const ok = { delivered: true, responseStatus: 200, responseBody: 'ok' };
        if (destination !== 'picky') return ok;
        if (n === 0 && sentBefore === 0) return { delivered: false, responseStatus: 500, responseBody: `${unkept}: a body`, error: `${unkept}: an error` };
        if (n === 1 && sentBefore === 0) return { delivered: false, responseStatus: 599, responseBody: 'a body' };
        if (n === 2 && sentBefore === 0) return { delivered: false, responseStatus: 503 };
        if (n === 2 && sentBefore === 1) return { delivered: false, responseStatus: 599 };
        return ok;
      });
      const app = await startTestApp([transport], { database });
      onTestFinished(() => app.close());
      await refuse();
      const picky = await subscribe(app, 'picky');
      const plain = await subscribe(app, 'plain');
      const published: HeraldEvent[] = [];
      for (let n = 0; n < 6; n++) published.push((await app.herald.publish({ type: 'order.created', data: { n } })).event);

      const delivered = async (id: string) => (await deliveries(app, id)).filter((d) => d.status === 'delivered').length;
      await waitFor(async () => (await delivered(picky)) === 6 && (await delivered(plain)) === 6, 'every delivery to both destinations, recorded');
      const attempts = async (n: number) => {
        const found = (await deliveries(app, picky)).find((d) => d.eventId === published[n]?.id);
        return found.attempts.map(({ status, responseStatus, responseBody, error }: any) => ({ status, responseStatus, responseBody, error }));
      };
      const succeeded = { status: 'succeeded', responseStatus: 200, responseBody: 'ok', error: null };
      expect(await attempts(0)).toEqual([{ status: 'failed', responseStatus: 500, responseBody: null, error: 'the store refused to keep what this attempt returned' }, succeeded]);
      // The refused attempt is not kept; the delivery was sent again: made pending at once when a fan-out
      // held it, claimed again once its lease ran out when it had a row.
      expect(await attempts(1)).toEqual([succeeded]);
      expect(timesSent('picky', published[1]?.id as string)).toBe(2);
      expect((await attempts(2)).map((attempt: { responseStatus: number }) => attempt.responseStatus)).toEqual([503, 200]);
      expect(timesSent('picky', published[2]?.id as string)).toBe(3);
      for (const event of published) expect(timesSent('plain', event.id)).toBe(1);
      for (const event of published.slice(3)) expect(timesSent('picky', event.id)).toBe(1);
    },
    30_000,
  );
});
