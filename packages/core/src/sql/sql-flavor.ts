import type { CreateTableBuilder } from 'kysely';

/** The few things SQLite and PostgreSQL must be told apart for; everything else is shared kysely code. */
export interface SqlFlavor {
  readonly name: 'sqlite' | 'postgres';
  /** Adds `seq`: an ever-increasing key that is never reused. */
  addSeqColumn<T extends string>(table: CreateTableBuilder<T>): CreateTableBuilder<T>;
}

export const sqliteFlavor: SqlFlavor = {
  name: 'sqlite',
  addSeqColumn: (table) => table.addColumn('seq', 'integer', (column) => column.primaryKey().autoIncrement()),
};

export const postgresFlavor: SqlFlavor = {
  name: 'postgres',
  addSeqColumn: (table) => table.addColumn('seq', 'bigserial', (column) => column.primaryKey()),
};
