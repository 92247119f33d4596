/**
 * The few places where PostgreSQL and SQLite differ, so that every table is written once.
 * What needs no helper, because Kysely speaks it on both: upsert and insert-ignore
 * (`onConflict(...).doUpdateSet / doNothing`), `returning`, transactions.
 */
import type { ColumnDataType, CreateTableBuilder } from 'kysely';
import type { DialectName } from './connection.js';

/** Adds an auto-increment integer primary key column (bigserial vs INTEGER PRIMARY KEY AUTOINCREMENT). */
export function addAutoIdColumn<T extends string, C extends string>(
  table: CreateTableBuilder<T, C>,
  dialect: DialectName,
  name: string,
): CreateTableBuilder<T, C> {
  return dialect === 'postgres'
    ? table.addColumn(name, 'bigserial', (c) => c.primaryKey())
    : table.addColumn(name, 'integer', (c) => c.primaryKey().autoIncrement());
}

/** Column types by meaning. SQLite's type affinity accepts these names. */
export function bytesType(dialect: DialectName): ColumnDataType {
  return dialect === 'postgres' ? 'bytea' : 'blob';
}
export const bigintType: ColumnDataType = 'bigint';
/** JSON is stored as text on both: we need its exact bytes back, not a re-serialised form. */
export const jsonTextType: ColumnDataType = 'text';
/** Booleans are stored as 0/1 on both: better-sqlite3 cannot bind JS booleans. */
export const boolType: ColumnDataType = 'smallint';

export const dbBool = (b: boolean): number => (b ? 1 : 0);
export const fromDbBool = (v: unknown): boolean => v === 1 || v === true || v === '1';

/**
 * Runs `fn` over `items` in slices, for `IN (...)` lists that could pass the bind-parameter
 * limits (SQLite 32766, PostgreSQL 65535), and concatenates the results.
 */
export async function inChunks<T, R>(items: readonly T[], fn: (chunk: T[]) => Promise<R[]>, chunkSize = 5000): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += chunkSize) {
    out.push(...(await fn(items.slice(i, i + chunkSize))));
  }
  return out;
}

/** Milliseconds since the epoch, the one time format stored. */
export const nowMs = (): number => Date.now();
