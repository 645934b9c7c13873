import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { ManyRowInsert } from './many-row-insert.js';

/** A table of the test's own, as an extension of the store would have. */
interface PositionsTable {
  name: string;
  seq: number | string;
}
type TestDatabase = { positions: PositionsTable };

const databases: Database.Database[] = [];
afterEach(() => {
  for (const database of databases.splice(0)) database.close();
});

describe('ManyRowInsert', () => {
  it('inserts any number of rows in order, as statements of a few sizes, and returns what they return', async () => {
    const database = new Database(':memory:');
    databases.push(database);
    const prepared = new Set<string>();
    const db = new Kysely<TestDatabase>({
      dialect: new SqliteDialect({
        database: {
          close: () => database.close(),
          prepare: (text: string) => {
            prepared.add(text);
            return database.prepare(text);
          },
        },
      }),
    });
    await sql`create table positions (name text primary key, seq integer not null)`.execute(db);
    const insert = new ManyRowInsert<PositionsTable, { name: string }, TestDatabase>(['name', 'seq'], (kysely, rows) =>
      kysely.insertInto('positions').values(rows).returning('name'),
    );
    let next = 0;
    for (const count of [1, 24, 25, 26, 60, 199, 200, 137]) {
      const rows = Array.from({ length: count }, () => ({ name: `p${String(next).padStart(4, '0')}`, seq: next++ }));
      expect((await insert.execute(db, rows)).map((row) => row.name)).toEqual(rows.map((row) => row.name));
    }
    const stored = await db.selectFrom('positions').selectAll().orderBy('name').execute();
    expect(stored.map((row) => Number(row.seq))).toEqual(Array.from({ length: next }, (_, n) => n));
    // Each statement is a multiple of 25 rows or fewer than 25 (32 sizes at most, however many counts come):
    // 1, 24, 25, 26 = 25 + 1, 60 = 50 + 10, 199 = 175 + 24, 200, 137 = 125 + 12.
    const sizes = [...prepared].filter((text) => text.startsWith('insert')).map((text) => text.split('(?, ?)').length - 1);
    expect(sizes.sort((a, b) => a - b)).toEqual([1, 10, 12, 24, 25, 50, 125, 175, 200]);
  });

  it('counts the rows that went in, without those a conflict skipped', async () => {
    const database = new Database(':memory:');
    databases.push(database);
    const db = new Kysely<TestDatabase>({ dialect: new SqliteDialect({ database }) });
    await sql`create table positions (name text primary key, seq integer not null)`.execute(db);
    const insert = new ManyRowInsert<PositionsTable, unknown, TestDatabase>(['name', 'seq'], (kysely, rows) =>
      kysely.insertInto('positions').values(rows).onConflict((oc) => oc.column('name').doNothing()),
    );
    const rows = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ name: `p${from + i}`, seq: from + i }));
    expect(await insert.insert(db, rows(0, 30))).toBe(30);
    // 40 rows in two statements (25 + 15), 20 of them already in.
    expect(await insert.insert(db, rows(10, 40))).toBe(20);
    expect(Number((await sql<{ n: number }>`select count(*) as n from positions`.execute(db)).rows[0]?.n)).toBe(50);
  });
});
