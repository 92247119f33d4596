/**
 * The few places where PostgreSQL and SQLite differ, so that every table is written once.
 *
 * What needs no helper, because Kysely speaks it on both (SQLite >= 3.35; better-sqlite3 13
 * bundles 3.5x):
 * - upsert:        .onConflict((oc) => oc.column('k').doUpdateSet((eb) => ({ v: eb.ref('excluded.v') })))
 * - insert-ignore: .onConflict((oc) => oc.column('k').doNothing())   (or oc.doNothing() for any conflict)
 * - returning:     .returning([...]) on insert, update and delete
 * - transactions:  db.transaction().execute(async (tx) => ...). On PostgreSQL a pooled connection
 *   at READ COMMITTED; on SQLite the one connection, serialised by Kysely's mutex, and begun with
 *   BEGIN IMMEDIATE (see sqlite/sqlite-dialect.ts). Nested calls are not supported by Kysely;
 *   pass the transaction down instead.
 *
 * Differences to keep in mind that no helper hides:
 * - LIKE is case-insensitive for ASCII on SQLite, case-sensitive on PostgreSQL: compare
 *   lower(column) with a lower-cased pattern.
 * - NULLs sort first ascending on SQLite, last on PostgreSQL: say NULLS FIRST/LAST, or avoid.
 * - Text order follows the database's collation on PostgreSQL, bytes on SQLite: do not rely
 *   on ORDER BY over text for anything but display.
 * - Arrays: no array columns; use a join table, or JSON text when the list is read whole.
 * - Aggregates over bigint: sum() is numeric (a string) on PostgreSQL; cast to bigint.
 */
import { sql, type ColumnDataType, type CreateTableBuilder, type RawBuilder } from 'kysely';

export type DialectName = 'postgres' | 'sqlite';

/** Any Kysely instance or transaction (Kysely does not export this interface by name). */
type QueryExecutorProvider = Parameters<RawBuilder<unknown>['compile']>[0];

/**
 * The dialect of a Kysely instance or transaction, from how it writes a parameter ($1 vs ?).
 * Compiling is local: no query is sent.
 */
export function dialectOf(db: QueryExecutorProvider): DialectName {
  return sql`SELECT ${1}`.compile(db).sql.includes('$1') ? 'postgres' : 'sqlite';
}

/** Adds an auto-increment integer primary key column: bigserial, or INTEGER PRIMARY KEY AUTOINCREMENT. */
export function addAutoIdColumn<T extends string, C extends string>(
  table: CreateTableBuilder<T, C>,
  dialect: DialectName,
  name: string,
): CreateTableBuilder<T, C> {
  // SQLite's rowid alias must be spelled exactly "integer primary key"; AUTOINCREMENT keeps
  // deleted IDs from being reused (stream positions must only grow). bigserial never reuses.
  return dialect === 'postgres'
    ? table.addColumn(name, 'bigserial', (c) => c.primaryKey())
    : table.addColumn(name, 'integer', (c) => c.primaryKey().autoIncrement());
}

/** A 64-bit integer column: read back as a JS number on both (see postgres/postgres-dialect.ts). */
export const bigintType: ColumnDataType = 'bigint';

/** Bytes: bytea on PostgreSQL, blob on SQLite; a Buffer in and out on both. */
export function bytesType(dialect: DialectName): ColumnDataType {
  return dialect === 'postgres' ? 'bytea' : 'blob';
}

/**
 * JSON is stored as text on both, not jsonb: events must come back byte for byte as stored
 * (their hashes and signatures cover the canonical form), and nothing here queries inside JSON.
 */
export const jsonTextType: ColumnDataType = 'text';

/**
 * Booleans are stored as 0/1 in a smallint on both: better-sqlite3 cannot bind a JS boolean,
 * and one representation keeps the row types the same on both dialects.
 */
export const boolType: ColumnDataType = 'smallint';
export const dbBool = (b: boolean): number => (b ? 1 : 0);
export const fromDbBool = (v: unknown): boolean => v === 1 || v === true || v === '1';

/** Milliseconds since the epoch, the one time format stored (bigint columns). From the app, not SQL, so both dialects agree. */
export const nowMs = (): number => Date.now();

/**
 * The largest list bound into one IN (...). SQLite allows 32766 variables per statement and
 * PostgreSQL 65535; both refuse a 100,000-item list outright. 5000 leaves room for the
 * statement's other parameters and keeps each statement's text small.
 */
export const IN_LIST_CHUNK = 5000;

/** Splits items into slices of at most `size`. */
export function chunks<T>(items: readonly T[], size = IN_LIST_CHUNK): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, not ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Runs `query` over `items` in slices small enough for one IN (...) list, one after another,
 * and concatenates the rows. The order of rows across slices follows the slices; sort after
 * if order matters. Duplicates in `items` are the caller's to remove.
 */
export async function inChunks<T, R>(
  items: readonly T[],
  query: (chunk: T[]) => Promise<readonly R[]>,
  chunkSize = IN_LIST_CHUNK,
): Promise<R[]> {
  const out: R[] = [];
  for (const chunk of chunks(items, chunkSize)) {
    for (const row of await query(chunk)) out.push(row);
  }
  return out;
}

/** True for a unique or primary key violation, on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
