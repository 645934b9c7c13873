import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, type SqliteDatabase, SqliteDialect, type SqliteStatement } from 'kysely';
import type { HeraldDatabase } from './schema.js';
import { sqliteFlavor, syncedSqliteFlavor } from './sql-flavor.js';
import { SqlStore } from './sql-store.js';

export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. The file's folder is created when missing. @default './data/herald.db' */
  path?: string;
  /**
   * SQLite's `synchronous` setting in WAL mode. `full` syncs every commit but the webhook outbox's
   * (`SqlFlavor.unsyncedTransaction`), so acknowledged events survive a power loss; `normal` survives
   * a killed process but may lose the last commits on power loss.
   * @default 'full'
   */
  synchronous?: 'full' | 'normal';
}

/** The SQL store on an embedded SQLite database (better-sqlite3, WAL mode): Herald's default. */
export function sqliteStore(options: SqliteStoreOptions = {}): SqlStore {
  const path = options.path ?? './data/herald.db';
  if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true });
  const database = new Database(path);
  database.pragma('journal_mode = WAL');
  database.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
  database.pragma('busy_timeout = 5000');
  const flavor = options.synchronous === 'normal' ? sqliteFlavor : syncedSqliteFlavor;
  return new SqlStore(new Kysely<HeraldDatabase>({ dialect: new SqliteDialect({ database: keepingStatements(database) }) }), flavor);
}

/** Prepared statements kept, by SQL text, at most this many. */
const keptStatements = 200;

/**
 * better-sqlite3 with its prepared statements kept by SQL text: kysely prepares every query it
 * runs, and publishing runs the same few (`begin`, the insert for a group of N, `commit`) over and over.
 * Kysely runs one query at a time on its one connection, so a statement is never in use twice at once.
 */
function keepingStatements(database: Database.Database): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(sql) {
      // A pragma acts when it is prepared; a kept one, run again, does not reliably act again.
      if (sql.startsWith('pragma')) return database.prepare(sql);
      let statement = statements.get(sql);
      if (statement) {
        // Least recently used first: move it to the end.
        statements.delete(sql);
      } else {
        statement = withRowObjects(database.prepare(sql));
        if (statements.size >= keptStatements) statements.delete(statements.keys().next().value as string);
      }
      statements.set(sql, statement);
      return statement;
    },
  };
}

/**
 * A statement whose rows are read as arrays and made into objects by a function compiled for its
 * columns, so that every row has one shape: better-sqlite3's own row objects take about twice as long.
 */
function withRowObjects(statement: Database.Statement): SqliteStatement {
  if (!statement.reader) return statement;
  statement.raw(true);
  const fields = statement.columns().map((column, index) => `${JSON.stringify(column.name)}: values[${index}]`);
  const toRow = new Function('values', `return { ${fields.join(', ')} };`) as (values: unknown[]) => unknown;
  return {
    reader: true,
    all: (parameters) => (statement.all(parameters) as unknown[][]).map(toRow),
    run: (parameters) => statement.run(parameters),
    *iterate(parameters) {
      for (const values of statement.iterate(parameters) as IterableIterator<unknown[]>) yield toRow(values);
    },
  };
}
