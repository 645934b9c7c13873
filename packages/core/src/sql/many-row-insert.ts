import { type Compilable, CompiledQuery, type Kysely, type QueryResult } from 'kysely';
import type { HeraldDatabase } from './schema.js';

/** Row counts are multiples of this, or smaller: few distinct statements, all of them kept prepared. */
const step = 25;

/**
 * A many-row INSERT whose SQL is compiled once per row count: building one with the query builder
 * costs more than running it. `build` gets rows of nulls, since only the shape matters (the values
 * are bound when it runs), in the order of `columns`. The rows go in at most two statements, of a
 * multiple of 25 rows and of fewer than 25, so that an insert of any size is one of a few dozen
 * statements that stay compiled here and prepared in the database, rather than one of hundreds.
 */
export class ManyRowInsert<Row extends object, Output = unknown, DB = HeraldDatabase> {
  readonly #columns: readonly (keyof Row & string)[];
  readonly #build: (db: Kysely<DB>, rows: Row[]) => Compilable<Output>;
  readonly #sql = new Map<number, string>();

  constructor(columns: readonly (keyof Row & string)[], build: (db: Kysely<DB>, rows: Row[]) => Compilable<Output>) {
    this.#columns = columns;
    this.#build = build;
  }

  /** Inserts `rows` (keep them within the dialect's bound-parameter limit) and returns what the statements return. */
  async execute(db: Kysely<DB>, rows: readonly Row[]): Promise<Output[]> {
    return (await this.#run(db, rows)).flatMap((result) => result.rows);
  }

  /** Inserts `rows` (as `execute`) and returns how many went in: fewer when the statement skips conflicting ones. */
  async insert(db: Kysely<DB>, rows: readonly Row[]): Promise<number> {
    return (await this.#run(db, rows)).reduce((sum, result) => sum + Number(result.numAffectedRows ?? 0), 0);
  }

  async #run(db: Kysely<DB>, rows: readonly Row[]): Promise<QueryResult<Output>[]> {
    const split = rows.length - (rows.length % step);
    if (split === 0 || split === rows.length) return [await this.#statement(db, rows)];
    return [await this.#statement(db, rows.slice(0, split)), await this.#statement(db, rows.slice(split))];
  }

  async #statement(db: Kysely<DB>, rows: readonly Row[]): Promise<QueryResult<Output>> {
    let text = this.#sql.get(rows.length);
    if (text === undefined) {
      const shape = Object.fromEntries(this.#columns.map((column) => [column, null])) as Row;
      text = this.#build(db, rows.map(() => shape)).compile().sql;
      this.#sql.set(rows.length, text);
    }
    const parameters: unknown[] = [];
    for (const row of rows) for (const column of this.#columns) parameters.push(row[column]);
    return db.executeQuery<Output>(CompiledQuery.raw(text, parameters));
  }
}
