import { execFile } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { NewEvent } from '../envelope.js';
import { StoreUnavailableError } from '../errors.js';
import { recordingLogger } from '../../../testkit/src/recording-logger.js';
import { longestStall } from '../stall.test-support.js';
import { tempDatabase } from '../temp-folder.test-support.js';
import type { SqlStore } from './sql-store.js';
import { holdSqliteLock, type LockHolder } from './sqlite.test-support.js';
import { sqliteStore } from './sqlite-store.js';

async function holdLock(path: string): Promise<LockHolder> {
  const holder = await holdSqliteLock(path);
  onTestFinished(() => holder.kill());
  return holder;
}

async function open(options: Parameters<typeof sqliteStore>[0]): Promise<SqlStore> {
  const store = sqliteStore(options);
  onTestFinished(() => store.close());
  await store.init();
  return store;
}

let counter = 0;
function event(data: unknown = { n: counter }): NewEvent {
  counter += 1;
  return {
    specversion: '1.0',
    id: `evt_gate_${process.pid}_${counter}`,
    type: 'order.created',
    source: '/test',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

/** The error `promise` rejects with (it fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => expect.fail(`resolved with ${JSON.stringify(value)}`),
    (error: unknown) => error,
  );
}

/** A store with a subscription, an event and a key, so that every write has something to act on. */
async function withData(store: SqlStore) {
  const [appended] = await store.append([event()]);
  const seq = appended?.event.seq as number;
  await store.subscriptions.create({ id: 'sub_gate', consumer: 'acme', transport: 'webhook', types: ['order.*'], status: 'active', config: {}, cursor: 0 });
  await store.keys.put({ id: 'key_gate', role: 'consumer', consumer: 'acme', hash: 'h', createdAt: new Date().toISOString() });
  return { seq };
}

/** Every write of the store, each given something it would change (the outbox's are @herald/outbox's test). */
function everyWrite(store: SqlStore, { seq }: { seq: number }): Record<string, () => Promise<unknown>> {
  return {
    append: () => store.append([event()]),
    'eventTypes.insert': () => store.eventTypes.insert({ name: `gate.type${counter++}`, createdAt: new Date().toISOString() }),
    'subscriptions.create': () =>
      store.subscriptions.create({ id: `sub_gate_${counter++}`, consumer: 'acme', transport: 'webhook', types: ['x'], status: 'active', config: {}, cursor: 0 }),
    'subscriptions.update': () => store.subscriptions.update('sub_gate', { types: ['order.created'] }),
    'subscriptions.advanceCursor': () => store.subscriptions.advanceCursor('sub_gate', seq + 1),
    'subscriptions.delete': () => store.subscriptions.delete('sub_gate'),
    'keys.put': () => store.keys.put({ id: `key_gate_${counter++}`, role: 'admin', hash: 'h', createdAt: new Date().toISOString() }),
    'keys.revoke': () => store.keys.revoke('key_gate'),
    'keys.deleteExpired': () => store.keys.deleteExpired(new Date().toISOString()),
    'keys.markUsed': () => store.keys.markUsed('key_gate', new Date().toISOString()),
  };
}

describe('SQLite store while another process holds the write lock (issue 13)', () => {
  it('refuses every write with a 503 after its lock timeout, never blocking the event loop; reads go on', async () => {
    const path = tempDatabase();
    const logger = recordingLogger();
    const store = await open({ path, lockTimeout: 300, logger });
    const data = await withData(store);
    const holder = await holdLock(path);

    const writes = everyWrite(store, data);
    const { result: outcomes, stall } = await longestStall(() =>
      Promise.all(
        Object.entries(writes).map(async ([name, write]) => {
          const started = performance.now();
          const error = await rejection(write());
          return { name, error, took: performance.now() - started };
        }),
      ),
    );
    for (const { name, error, took } of outcomes) {
      expect(error, name).toBeInstanceOf(StoreUnavailableError);
      const refused = error as StoreUnavailableError;
      expect({ name, status: refused.status, code: refused.code, retryAfter: refused.headers()['retry-after'] }).toEqual({
        name,
        status: 503,
        code: 'store-locked',
        retryAfter: '1',
      });
      expect((refused.cause as { code?: string }).code, name).toBe('SQLITE_BUSY');
      // It waited for the lock (300 ms), then gave up, well within a second.
      expect(took, name).toBeGreaterThanOrEqual(250);
      expect(took, name).toBeLessThan(1_500);
    }
    expect(stall, 'the longest stall of the event loop, in ms').toBeLessThan(100);

    // Reads are not held up by the other process's write lock (WAL).
    const { result: reads, stall: readStall } = await longestStall(async () => ({
      events: (await store.read({ after: 0, limit: 10 })).length,
      subscription: (await store.subscriptions.get('sub_gate'))?.types,
      key: (await store.keys.get('key_gate'))?.revokedAt,
    }));
    expect(reads).toEqual({ events: 1, subscription: ['order.*'], key: undefined });
    expect(readStall).toBeLessThan(100);

    // Not ready while it refuses writes; it says so at once, with SQLite's own error in the log.
    const pinged = performance.now();
    expect(await rejection(store.ping())).toMatchObject({ status: 503, code: 'store-locked' });
    expect(performance.now() - pinged).toBeLessThan(100);
    const refusals = logger.entries.filter((line) => line.message?.startsWith('the store refuses writes'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 'warn', fields: { refusal: 'locked', err: { code: 'SQLITE_BUSY' } } });

    await holder.release();
    await store.ping();
    expect(logger.entries.at(-1)).toMatchObject({ level: 'info', message: 'the store accepts writes again' });
    // Every write works again, and none of the refused ones left anything behind.
    expect(await store.read({ after: 0, limit: 10 })).toHaveLength(1);
    for (const [name, write] of Object.entries(everyWrite(store, data))) await expect(write(), name).resolves.not.toThrow();
    expect(await store.read({ after: 0, limit: 10 })).toHaveLength(2);
  });

  it('a write waits out a lock shorter than its timeout on timers, and then commits once', async () => {
    const path = tempDatabase();
    const store = await open({ path, lockTimeout: 10_000 });
    const data = await withData(store);
    const holder = await holdLock(path);

    const { result, stall } = await longestStall(async () => {
      const appended = store.append([event({ during: 'lock' })]);
      const committed = store.subscriptions.update('sub_gate', { types: ['order.created'] });
      let resolved = false;
      void Promise.allSettled([appended, committed]).then(() => {
        resolved = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(resolved, 'it waits while the lock is held').toBe(false);
      await holder.release();
      return { appended: await appended, committed: await committed };
    });
    expect(stall).toBeLessThan(100);
    expect(result.appended[0]?.event.seq).toBe(data.seq + 1);
    expect(result.committed?.types).toEqual(['order.created']);
    expect((await store.read({ after: data.seq, limit: 10 })).map((e) => e.data)).toEqual([{ during: 'lock' }]);
  });

  it("an app's transaction on the store's database waits out the lock on timers, up to the lock timeout, and then fails with SQLite's error", async () => {
    const path = tempDatabase();
    const store = await open({ path, lockTimeout: 10_000 });
    await sql`create table app_orders (id integer primary key, note text)`.execute(store.database);
    const holder = await holdLock(path);

    const { result, stall } = await longestStall(async () => {
      const committed = store.database.transaction().execute(async (trx) => {
        await sql`insert into app_orders (note) values ('during the lock')`.execute(trx);
        return 'committed';
      });
      let resolved = false;
      void committed.finally(() => {
        resolved = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(resolved, 'it waits while the lock is held').toBe(false);
      await holder.release();
      return await committed;
    });
    expect(stall).toBeLessThan(100);
    expect(result).toBe('committed');

    // A controlled transaction of the app's, with a savepoint, on the same connection.
    const trx = await store.database.startTransaction().execute();
    await sql`insert into app_orders (note) values ('kept')`.execute(trx);
    const savepoint = await trx.savepoint('before_dropped').execute();
    await sql`insert into app_orders (note) values ('dropped')`.execute(savepoint);
    await savepoint.rollbackToSavepoint('before_dropped').execute();
    await trx.commit().execute();
    const notes = await sql<{ note: string }>`select note from app_orders order by id`.execute(store.database);
    expect(notes.rows.map((row) => row.note)).toEqual(['during the lock', 'kept']);

    const impatient = await open({ path, lockTimeout: 300 });
    const again = await holdLock(path);
    const started = performance.now();
    const error = await rejection(impatient.database.transaction().execute(async () => 'never'));
    expect((error as { code?: string }).code).toBe('SQLITE_BUSY');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    await again.release();
  });
});

describe('SQLite store on a full database (issue 13)', () => {
  it("refuses writes with a 503 that carries SQLite's own error, is not ready, and recovers when there is room", async () => {
    const path = tempDatabase();
    const database = new Database(path);
    const logger = recordingLogger();
    const store = await open({ database, logger });
    const kept = await store.append([event({ n: 1 }), event({ n: 2 })]);
    await store.ping();

    // Genuinely full: SQLite may not grow the file past the pages it has.
    const pages = database.pragma('page_count', { simple: true }) as number;
    database.pragma(`max_page_count = ${pages}`);
    const big = event({ text: 'x'.repeat(64 * 1024) });
    const refused = await rejection(store.append([big]));
    expect(refused).toBeInstanceOf(StoreUnavailableError);
    expect(refused).toMatchObject({ status: 503, code: 'store-full', refusal: 'full' });
    expect((refused as StoreUnavailableError).cause).toMatchObject({ code: 'SQLITE_FULL', message: 'database or disk is full' });
    const logged = logger.entries.filter((line) => line.level === 'error');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ fields: { refusal: 'full', err: { code: 'SQLITE_FULL' } } });
    expect(logged[0]?.message).toMatch(/^the store refuses writes: /);

    // Not ready while full, however often it is asked; what was stored is intact.
    for (let i = 0; i < 3; i++) expect(await rejection(store.ping())).toMatchObject({ status: 503, code: 'store-full' });
    expect((await store.read({ after: 0, limit: 10 })).map((e) => e.id)).toEqual(kept.map((r) => r.event.id));

    database.pragma(`max_page_count = ${pages * 100}`);
    await store.ping();
    expect(logger.entries.at(-1)).toMatchObject({ level: 'info', message: 'the store accepts writes again' });
    const [stored] = await store.append([big]);
    expect(stored?.created).toBe(true);
    expect((await store.read({ after: 0, limit: 10 })).map((e) => e.id)).toEqual([...kept.map((r) => r.event.id), big.id]);
  });
});

const here = dirname(fileURLToPath(import.meta.url));
const tsxLoader = pathToFileURL(createRequire(resolve(here, '../../../../package.json')).resolve('tsx')).href;

/**
 * The child: appends 4 KiB events to the store at argv[2] until one fails, then pings, and prints what
 * happened as JSON. Run under a file size limit, the failing write is refused by the OS, as on a full disk.
 */
const filler = `
process.on('SIGXFSZ', () => {}); // the failing write(2) then answers EFBIG, rather than the signal killing the process
const { sqliteStore } = await import(${JSON.stringify(pathToFileURL(resolve(here, 'sqlite-store.ts')).href)});
const log = [];
const record = (level) => (fields, message) => log.push({ level, message, code: fields?.err?.code, errorMessage: fields?.err?.message });
const logger = { debug() {}, info: record('info'), warn: record('warn'), error: record('error'), child: () => logger };
const store = sqliteStore({ path: process.argv[2], logger });
await store.init();
const acked = [];
const describe = (error) => ({ name: error.name, message: error.message, status: error.status, code: error.code, cause: { code: error.cause?.code, message: error.cause?.message } });
let refused;
for (let n = 0; n < 10000 && !refused; n++) {
  const id = 'evt_fill_' + n;
  try {
    await store.append([{ specversion: '1.0', id, type: 'fill', source: '/test', time: new Date().toISOString(), datacontenttype: 'application/json', data: { n, pad: 'x'.repeat(4096) } }]);
    acked.push(id);
  } catch (error) {
    refused = describe(error);
  }
}
const ping = await store.ping().then(() => 'ready', describe);
process.stdout.write(JSON.stringify({ acked, refused, ping, log }));
`;

describe('SQLite store when the file system refuses to grow its files (issue 13)', () => {
  it("the refused commit's own error comes out, as a 503, not the failed rollback after it", async () => {
    const path = tempDatabase();
    const script = join(dirname(path), 'filler.mjs');
    writeFileSync(script, filler);
    // ulimit -f: the files this process writes may not grow past 2,048 blocks (1 or 2 MiB, as the shell counts).
    const { stdout } = await promisify(execFile)('/bin/sh', ['-c', 'ulimit -f 2048 && exec "$0" --import "$1" "$2" "$3"', process.execPath, tsxLoader, script, path]);
    const { acked, refused, ping, log } = JSON.parse(stdout) as {
      acked: string[];
      refused?: { name: string; message: string; status: number; code: string; cause: { code: string; message: string } };
      ping: unknown;
      log: { level: string; message: string; code?: string }[];
    };
    expect(acked.length).toBeGreaterThan(10);
    expect(refused).toMatchObject({ name: 'StoreUnavailableError', status: 503 });
    // EFBIG from write(2): SQLITE_FULL when the write was cut short, SQLITE_IOERR_WRITE when nothing of it was written.
    expect(refused?.cause.code).toMatch(/^SQLITE_(FULL|IOERR_WRITE)$/);
    expect(refused?.code).toBe(refused?.cause.code === 'SQLITE_FULL' ? 'store-full' : 'store-unavailable');
    expect(ping).toMatchObject({ status: 503, cause: { code: refused?.cause.code } });
    // SQLite's error, logged once as the statement the database refused, and once as the store's refusal of writes.
    const logged = { code: refused?.cause.code, errorMessage: refused?.cause.message };
    expect(log).toEqual([
      { level: 'warn', message: 'the database refused a statement', ...logged },
      { level: 'error', message: `the store refuses writes: ${refused?.message}`, ...logged },
    ]);

    // Every acknowledged event is there, and only those.
    const database = new Database(path);
    try {
      expect(database.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(database.prepare('select id from herald_events order by seq').pluck().all()).toEqual(acked);
    } finally {
      database.close();
    }
  });
});

describe('SQLite store whose file is damaged under it', () => {
  /** The store's data, by every read it has. */
  const readAll = (store: SqlStore) => ({
    read: () => store.read({ after: 0, limit: 10 }),
    'read by type': () => store.read({ after: 0, limit: 10, types: ['order.created'] }),
    bounds: () => store.bounds(),
    'subscriptions.list': () => store.subscriptions.list(),
    'subscriptions.get': () => store.subscriptions.get('sub_gate'),
    'subscriptions.version': () => store.subscriptions.version(),
    'keys.get': () => store.keys.get('key_gate'),
    'keys.list': () => store.keys.list(),
    'eventTypes.list': () => store.eventTypes.list(),
    // The app's own read on the store's database.
    'database (the app)': async () => (await sql<{ n: number }>`select count(*) as n from herald_events`.execute(store.database)).rows,
  });

  it.each([
    ['cut to its first page', 1, /^SQLITE_CORRUPT/],
    ['emptied', 0, /^SQLITE_NOTADB$/],
  ])("answers every read of a file %s with a 503 that carries SQLite's error, stays ready, writes nothing, and reads as before once the file is back", async (_, pages, code) => {
    const path = tempDatabase();
    const logger = recordingLogger();
    const store = await open({ path, logger });
    await withData(store);
    const reads = readAll(store);
    const before = Object.fromEntries(await Promise.all(Object.entries(reads).map(async ([name, read]) => [name, await read()])));

    // Another process's connection moves everything from the WAL into the file (so reads go to the file, and the
    // store drops the pages it has cached); then the file loses its pages, as a failing disk or a bad copy may leave it.
    const other = new Database(path);
    onTestFinished(() => void other.close());
    other.pragma('wal_checkpoint(TRUNCATE)');
    const whole = readFileSync(path);
    truncateSync(path, pages * (other.pragma('page_size', { simple: true }) as number));
    const damaged = readFileSync(path);

    for (const [name, read] of Object.entries(reads)) {
      const error = await rejection(read());
      expect(error, name).toBeInstanceOf(StoreUnavailableError);
      const refused = error as StoreUnavailableError;
      expect({ name, status: refused.status, type: refused.toProblem().type, retryAfter: refused.headers()['retry-after'] }).toEqual({
        name,
        status: 503,
        type: 'urn:herald:problem:store-unavailable',
        retryAfter: '1',
      });
      expect((refused.cause as { code?: string }).code, name).toMatch(code);
    }
    // Logged once, with SQLite's error: the reads after it, within the minute, add no line.
    const refusedStatement = { level: 'warn', message: 'the database refused a statement', fields: { err: expect.objectContaining({ code: expect.stringMatching(code) }), failures: 1 } };
    expect(logger.entries).toEqual([refusedStatement]);
    // A refused read is no refused write: the store stays ready (its ping, which reads nothing, ends no refusals).
    await store.ping();
    // Nothing was written: the file is as it was left, and the WAL empty.
    expect(readFileSync(path).equals(damaged)).toBe(true);
    expect(statSync(`${path}-wal`).size).toBe(0);

    // A write is refused alike (with nothing of it written), and the store is not ready until one succeeds.
    const refusedWrite = await rejection(store.append([event({ during: 'damage' })]));
    expect(refusedWrite).toMatchObject({ status: 503, code: 'store-unavailable', cause: { code: expect.stringMatching(code) } });
    expect(await rejection(store.ping())).toMatchObject({ status: 503, code: 'store-unavailable' });
    expect(readFileSync(path).equals(damaged)).toBe(true);

    // The file back as it was (and a checkpoint of the other connection's, by whose WAL index SQLite knows its cache
    // is stale): every read answers as before, and the store takes writes again.
    writeFileSync(path, whole);
    other.pragma('wal_checkpoint(TRUNCATE)');
    const after = Object.fromEntries(await Promise.all(Object.entries(reads).map(async ([name, read]) => [name, await read()])));
    expect(after).toEqual(before);
    await store.ping();
    expect(other.pragma('integrity_check', { simple: true })).toBe('ok');
    // The write's refusal has its own line, from the store's gate; the first statement taken again ends the refusals, in one line.
    expect(logger.entries.map(({ level, message }) => ({ level, message }))).toEqual([
      { level: 'warn', message: 'the database refused a statement' },
      { level: 'error', message: 'the store refuses writes: The database is unavailable for now; try again shortly' },
      { level: 'info', message: expect.stringMatching(/^the database refused a statement \d+ times; it works again$/) },
      { level: 'info', message: 'the store accepts writes again' },
    ]);
  });

  it('says which file a store cannot start on, and why, when the file is damaged', async () => {
    const path = tempDatabase();
    const first = await open({ path });
    await withData(first);
    await first.close();
    // The page of the table of its migrations, the first it reads as it starts, overwritten.
    const other = new Database(path);
    const pageSize = other.pragma('page_size', { simple: true }) as number;
    const { rootpage } = other.prepare("select rootpage from sqlite_master where name = 'herald_migration'").get() as { rootpage: number };
    other.close();
    const file = openSync(path, 'r+');
    writeSync(file, Buffer.alloc(pageSize, 0x5a), 0, pageSize, (rootpage - 1) * pageSize);
    closeSync(file);

    const store = sqliteStore({ path });
    onTestFinished(() => store.close());
    const failure = await rejection(store.init());
    expect(failure).toEqual(new Error(`sqliteStore cannot open the database at ${path}: database disk image is malformed (SQLITE_CORRUPT)`));
  });
});
