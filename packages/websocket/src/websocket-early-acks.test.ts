import { waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freshDatabase } from '../../core/src/sql/postgres.test-support.js';
import { closedAfterEach, type ProtocolClient, type WsApp } from './testing/protocol-client.js';
import { CloseCode } from './websocket-protocol.js';

// An ack sent right after its `subscribe` waits for the durable subscription to be looked up. These tests hold
// that look-up with a real PostgreSQL lock, so that the client's `unsubscribe` (or its close, or the server's stop)
// surely comes first, whatever the speed of the machine.

const { start, connect, forget } = closedAfterEach();

interface Attached {
  ws: WsApp;
  client: ProtocolClient;
  /** The durable subscription's id. */
  id: string;
  /** The seqs of the four events published after it was made (its cursor is still before them). */
  seqs: [number, number, number, number];
  /** Its cursor, read over the REST API. */
  cursor(): Promise<number>;
  /** Its cursor as stored, read straight from the database (also once the app is closed). */
  storedCursor(): Promise<number>;
  /** Holds every read of the durable subscriptions until `release`: a look-up under way waits for it. */
  holdLookUps(): Promise<{ release(): Promise<void> }>;
  /** Resolves once a query of the app waits for the lock `holdLookUps` took. */
  lookUpWaiting(): Promise<void>;
}

/** An app on a fresh PostgreSQL database, a durable subscription with four events after its cursor, and a connected client of its consumer. */
async function attached(options: { stopTimeout?: number } = {}): Promise<Attached> {
  const database = await freshDatabase();
  onTestFinished(() => database.drop());
  const ws = await start({ cursorFlushInterval: 50, ...options }, [], { database: database.url });
  const durable = await ws.durable('acme', ['order.*']);
  const published = await ws.app.herald.bus.publishMany([1, 2, 3, 4].map((n) => ({ type: 'order.created', data: { n } })) as never);
  const seqs = published.map(({ event }) => event.seq) as [number, number, number, number];
  const client = await connect(ws.url, { bearer: durable.key });
  const db = ws.app.herald.database;
  const name = new URL(database.url).pathname.slice(1);
  const attachedTo: Attached = {
    ws,
    client,
    id: durable.id,
    seqs,
    cursor: async () => (await ws.app.api('GET', `/v1/subscriptions/${durable.id}`, undefined, durable.key)).body.cursor,
    storedCursor: async () => Number((await database.query<{ cursor: string }>(`select cursor from herald_subscriptions where id = '${durable.id}'`))[0]?.cursor),
    async holdLookUps() {
      // ALTER TABLE takes the table's ACCESS EXCLUSIVE lock, which every read of it waits for, until the rollback.
      const transaction = await db.startTransaction().execute();
      await transaction.schema.alterTable('herald_subscriptions').addColumn('held_by_test', 'integer').execute();
      return { release: () => transaction.rollback().execute() };
    },
    lookUpWaiting: () =>
      waitFor(async () => {
        const waiting = await db
          .withTables<{ pg_stat_activity: { datname: string; wait_event_type: string | null; query: string } }>()
          .selectFrom('pg_stat_activity')
          .select('query')
          .where('datname', '=', name)
          .where('wait_event_type', '=', 'Lock')
          .execute();
        return waiting.some(({ query }) => query.includes('herald_subscriptions'));
      }, 'the look-up waiting for the lock'),
  };
  expect(await attachedTo.cursor()).toBeLessThan(seqs[0]);
  return attachedTo;
}

/** Sends `messages` back to back, then a `ping`, and waits for its `pong`: the server has taken them all. */
async function sendAll(client: ProtocolClient, ...messages: Record<string, unknown>[]): Promise<void> {
  for (const message of messages) client.send(message);
  client.send({ type: 'ping' });
  await client.next('pong');
}

describe('an ack sent while its durable subscription is looked up', () => {
  it('moves the cursor to the `after` it resumed from, though `unsubscribe` came before the look-up ended', async () => {
    const { client, id, seqs, cursor, holdLookUps, lookUpWaiting } = await attached();
    const third = seqs[2];
    const lock = await holdLookUps();
    await sendAll(
      client,
      { type: 'subscribe', id: 'd', subscription: id, after: third },
      { type: 'ack', id: 'd', seq: third },
      { type: 'unsubscribe', id: 'd' },
    );
    await lookUpWaiting();
    await lock.release();
    await waitFor(async () => (await cursor()) === third, 'the cursor at the ack');
  });

  it('moves the cursor to it, though the client closed the connection before the look-up ended', async () => {
    const { ws, client, id, seqs, cursor, holdLookUps, lookUpWaiting } = await attached();
    const second = seqs[1];
    const lock = await holdLookUps();
    await sendAll(client, { type: 'subscribe', id: 'd', subscription: id, after: seqs[2] }, { type: 'ack', id: 'd', seq: second });
    await client.close();
    await waitFor(() => ws.transport.stats().connections === 0, 'the server to see the close');
    await lookUpWaiting();
    await lock.release();
    await waitFor(async () => (await cursor()) === second, 'the cursor at the ack');
  });

  it('does not move the cursor past the `after` it resumed from: an ack past it was never delivered, and nothing is said of it once unsubscribed', async () => {
    const { ws, client, id, seqs, cursor, storedCursor, holdLookUps, lookUpWaiting } = await attached();
    const [, second, , fourth] = seqs;
    const lock = await holdLookUps();
    await sendAll(
      client,
      { type: 'subscribe', id: 'd', subscription: id, after: second },
      { type: 'ack', id: 'd', seq: second },
      { type: 'ack', id: 'd', seq: fourth },
      { type: 'unsubscribe', id: 'd' },
    );
    await lookUpWaiting();
    await lock.release();
    await waitFor(async () => (await cursor()) === second, 'the cursor at the ack within `after`');
    // Closing the app writes every cursor still pending: none past `after`.
    await ws.close();
    forget();
    expect(await storedCursor()).toBe(second);
    expect(client.messages.filter((message) => message.id === 'd')).toEqual([]);
  });

  it('moves the cursor no further than the end of the log when the `after` it resumed from is past it: the next attach gets the events published since', async () => {
    const { ws, client, id, seqs, cursor, holdLookUps, lookUpWaiting } = await attached();
    const end = seqs[3];
    const ahead = end + 1000;
    const before = await cursor();
    const lock = await holdLookUps();
    await sendAll(
      client,
      { type: 'subscribe', id: 'd', subscription: id, after: ahead },
      { type: 'ack', id: 'd', seq: ahead },
      { type: 'unsubscribe', id: 'd' },
    );
    await lookUpWaiting();
    await lock.release();
    let moved = before;
    await waitFor(async () => (moved = await cursor()) !== before, 'the cursor to move');
    const published = await ws.app.herald.bus.publishMany([5, 6, 7].map((n) => ({ type: 'order.created', data: { n } })) as never);
    const later = published.map(({ event }) => event.seq);
    expect(later.every((seq) => seq <= ahead)).toBe(true);
    await client.subscribe({ id: 'next', subscription: id });
    expect(client.events('next').map((event) => event.seq)).toEqual(later);
    expect(moved).toBe(end);
  });

  it('moves the cursor to it when the server stops before the look-up ends: stop() waits for the look-up, then writes the cursor', async () => {
    const { ws, client, id, seqs, storedCursor, holdLookUps, lookUpWaiting } = await attached({ stopTimeout: 60_000 });
    const third = seqs[2];
    const lock = await holdLookUps();
    await sendAll(client, { type: 'subscribe', id: 'd', subscription: id, after: third }, { type: 'ack', id: 'd', seq: third });
    await lookUpWaiting();
    const closing = ws.close();
    forget();
    expect((await client.closed).code).toBe(CloseCode.GoingAway);
    await waitFor(() => ws.transport.stats().connections === 0, 'the server to see the close');
    await lock.release();
    await closing;
    expect(await storedCursor()).toBe(third);
  });

  it('moves the cursor no further than the end of the log when the server stops before the look-up of an `after` past it ends', async () => {
    const { ws, client, id, seqs, storedCursor, holdLookUps, lookUpWaiting } = await attached({ stopTimeout: 60_000 });
    const ahead = seqs[3] + 1000;
    const lock = await holdLookUps();
    await sendAll(client, { type: 'subscribe', id: 'd', subscription: id, after: ahead }, { type: 'ack', id: 'd', seq: ahead });
    await lookUpWaiting();
    const closing = ws.close();
    forget();
    expect((await client.closed).code).toBe(CloseCode.GoingAway);
    await waitFor(() => ws.transport.stats().connections === 0, 'the server to see the close');
    await lock.release();
    await closing;
    expect(await storedCursor()).toBe(seqs[3]);
  });
});
