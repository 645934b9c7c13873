import { type Compilable, CompiledQuery, type Kysely } from 'kysely';
import type { HeraldDatabase } from './schema.js';

/**
 * A many-row INSERT whose SQL is compiled once per row count: building one with the query builder
 * costs more than running it. `build` gets rows of nulls, since only the shape matters (the values
 * are bound when it runs), in the order of `columns`.
 */
export class ManyRowInsert<Row extends object, Output = unknown> {
  readonly #columns: readonly (keyof Row & string)[];
  readonly #build: (db: Kysely<HeraldDatabase>, rows: Row[]) => Compilable<Output>;
  readonly #sql = new Map<number, string>();

  constructor(columns: readonly (keyof Row & string)[], build: (db: Kysely<HeraldDatabase>, rows: Row[]) => Compilable<Output>) {
    this.#columns = columns;
    this.#build = build;
  }

  /** Inserts `rows` (keep them within the dialect's bound-parameter limit) and returns what the statement returns. */
  async execute(db: Kysely<HeraldDatabase>, rows: readonly Row[]): Promise<Output[]> {
    let text = this.#sql.get(rows.length);
    if (text === undefined) {
      const shape = Object.fromEntries(this.#columns.map((column) => [column, null])) as Row;
      text = this.#build(db, rows.map(() => shape)).compile().sql;
      this.#sql.set(rows.length, text);
    }
    const parameters: unknown[] = [];
    for (const row of rows) for (const column of this.#columns) parameters.push(row[column]);
    return (await db.executeQuery<Output>(CompiledQuery.raw(text, parameters))).rows;
  }
}
