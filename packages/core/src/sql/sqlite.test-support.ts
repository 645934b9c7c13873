import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { HeraldDatabase } from './schema.js';
import { syncedSqliteFlavor } from './sql-flavor.js';
import { SqlStore } from './sql-store.js';

const here = dirname(fileURLToPath(import.meta.url));
const betterSqlite3 = createRequire(resolve(here, '../../package.json')).resolve('better-sqlite3');

/**
 * The other process: opens the database, takes its write lock with `begin exclusive` (waiting for it if
 * need be), writes rows of its own while it holds it, and commits when a line arrives on stdin.
 */
const holder = `
const Database = require(${JSON.stringify(betterSqlite3)});
const db = new Database(process.argv[1], { timeout: 10000 });
db.exec('create table if not exists lock_holder (at integer)');
db.exec('begin exclusive');
db.prepare('insert into lock_holder (at) values (?)').run(Date.now());
process.stdout.write('locked\\n');
process.stdin.once('data', () => {
  db.exec('commit');
  db.close();
  process.stdout.write('released\\n');
  process.exit(0);
});
`;

/** A separate process holding the write lock of a SQLite database. */
export interface LockHolder {
  /** Commits the other process's transaction, so the lock is gone when this resolves. */
  release(): Promise<void>;
  /** Kills the process, if it still runs. */
  kill(): void;
}

/** Starts a process that holds `begin exclusive` on the SQLite database at `path`; resolves once it holds it. */
export async function holdSqliteLock(path: string): Promise<LockHolder> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['-e', holder, path]);
  let output = '';
  let errors = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    errors += chunk;
  });
  const said = (line: string) =>
    new Promise<void>((done, fail) => {
      const check = () => {
        if (output.split('\n').includes(line)) done();
      };
      child.stdout.on('data', check);
      child.once('exit', (code) => fail(new Error(`the lock holder exited (${code}) before saying "${line}": ${errors}`)));
      check();
    });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  await said('locked');
  return {
    async release() {
      const released = said('released');
      child.stdin.write('release\n');
      await released;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * A better-sqlite3 database on `path`, for a test that sets what a store cannot be told (such as
 * `max_page_count`) before it gives it to `sqliteStore({ database })`; for the packages that do not
 * depend on better-sqlite3 themselves.
 */
export function openSqlite(path: string): Database.Database {
  return new Database(path);
}

/**
 * A store (synchronous=FULL, WAL) on a new SQLite file at `path`, initialised, whose every COMMIT notes in
 * `levels` the connection's `synchronous` level at that moment (2 FULL, 1 NORMAL); `level()` reads it now.
 */
export async function commitLevelsStore(path: string) {
  const database = new Database(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = FULL');
  const levels: number[] = [];
  const db = new Kysely<HeraldDatabase>({
    dialect: new SqliteDialect({
      database: {
        close: () => database.close(),
        prepare(sql: string) {
          if (sql === 'commit') levels.push(database.pragma('synchronous', { simple: true }) as number);
          return database.prepare(sql);
        },
      },
    }),
  });
  const store = new SqlStore(db, syncedSqliteFlavor);
  await store.init();
  levels.length = 0;
  return { store, db, levels, level: () => database.pragma('synchronous', { simple: true }) };
}
