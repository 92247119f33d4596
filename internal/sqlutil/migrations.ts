/**
 * Per-component, versioned schema migrations, run at start-up (Dendrite's sqlutil.Migrator).
 * Each component owns its tables (prefix `<component>_`) and its history table
 * `<component>_migrations`, so components can share one database.
 *
 * A small runner rather than Kysely's Migrator, which on SQLite runs without a transaction
 * (its adapter declares no transactional DDL, though SQLite has it): a migration failing
 * halfway would leave its first statements applied and unrecorded, and the next start would
 * trip over them. Here one run is one transaction on both dialects:
 * - PostgreSQL: pg_advisory_xact_lock on a key derived from the component name, taken before
 *   anything else, so two polylith processes starting at once queue: the second sees the
 *   first's committed work and applies nothing twice. The lock ends with the transaction,
 *   even if the process dies.
 * - SQLite: BEGIN IMMEDIATE (sqlite/sqlite-dialect.ts) holds the write lock for the run.
 * A failing migration rolls back everything this run did, and the error names it.
 *
 * The history table keeps the layout Kysely's Migrator used here before (name, timestamp),
 * so databases made by earlier builds carry on.
 */
import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { dialectOf, type DialectName } from './dialect.js';
import { MigrationError, describeDriverError } from './errors.js';

export interface ComponentMigration {
  /**
   * The migration's identity together with its name: never change either once released.
   * Numbers must increase along the list; a string version may not contain "_".
   */
  version: number | string;
  /** A short name ("add_device_index"). */
  name: string;
  /** Gets the transaction of the run; must use it, not another handle. */
  up(db: Kysely<unknown>, dialect: DialectName): Promise<void>;
}

export interface MigrationReport {
  /** Keys of the migrations this run applied, in order ("000001_accounts"). */
  applied: string[];
}

interface HistoryRow {
  name: string;
  timestamp: string;
}

/** The key stored in the history table: numbers zero-padded so that keys sort as versions. */
export function migrationKey(m: Pick<ComponentMigration, 'version' | 'name'>): string {
  const version = typeof m.version === 'number' ? String(m.version).padStart(6, '0') : m.version;
  return `${version}_${m.name}`;
}

/** The table holding a component's applied migrations. */
export function migrationTable(component: string): string {
  return `${component}_migrations`;
}

/** A signed 64-bit advisory lock key per component, stable across releases. */
function advisoryLockKey(component: string): string {
  const digest = createHash('sha256').update(`dendrite-ts migrations ${component}`).digest();
  return digest.readBigInt64BE(0).toString();
}

function validate(component: string, migrations: readonly ComponentMigration[]): string[] {
  if (!/^[a-z][a-z0-9_]*$/.test(component)) {
    throw new MigrationError(component, 'the component name must be lower-case letters, digits and _ (it prefixes table names)');
  }
  const keys: string[] = [];
  const versions = new Set<string>();
  let lastNumber = 0;
  for (const m of migrations) {
    if (typeof m.version === 'number') {
      if (!Number.isSafeInteger(m.version) || m.version < 1) {
        throw new MigrationError(component, `version ${m.version} of "${m.name}" is not a positive integer`);
      }
      if (m.version <= lastNumber) {
        throw new MigrationError(component, `version ${m.version} ("${m.name}") comes after version ${lastNumber}: list migrations in version order`);
      }
      lastNumber = m.version;
    } else if (!/^[A-Za-z0-9.-]+$/.test(m.version)) {
      throw new MigrationError(component, `version "${m.version}" of "${m.name}" must be letters, digits, "." and "-"`);
    }
    if (versions.has(String(m.version))) throw new MigrationError(component, `version ${m.version} appears twice`);
    versions.add(String(m.version));
    if (!m.name) throw new MigrationError(component, `migration ${m.version} has no name`);
    const key = migrationKey(m);
    if (key.length > 255) throw new MigrationError(component, `migration key "${key}" is longer than 255 characters`);
    keys.push(key);
  }
  return keys;
}

/**
 * Brings a component's schema up to date: creates the history table if needed and applies,
 * in list order, each migration not yet applied. Safe to call at every start-up and from
 * several processes at once. Throws MigrationError (naming the migration) on failure.
 */
export async function runMigrations<DB>(db: Kysely<DB>, component: string, migrations: readonly ComponentMigration[]): Promise<MigrationReport>;
/** The same, for callers that already hold the dialect; it must match the database's. */
export async function runMigrations<DB>(
  db: Kysely<DB>,
  dialect: DialectName,
  component: string,
  migrations: readonly ComponentMigration[],
): Promise<MigrationReport>;
export async function runMigrations<DB>(
  db: Kysely<DB>,
  a: string,
  b: string | readonly ComponentMigration[],
  c?: readonly ComponentMigration[],
): Promise<MigrationReport> {
  const [component, migrations] = typeof b === 'string' ? [b, c ?? []] : [a, b];
  const dialect = dialectOf(db);
  if (typeof b === 'string' && a !== dialect) {
    throw new MigrationError(component, `called for ${a}, but the database is ${dialect}`);
  }
  const keys = validate(component, migrations);
  const table = migrationTable(component);

  const run = async (tx: Kysely<Record<string, HistoryRow>>): Promise<MigrationReport> => {
    if (dialect === 'postgres') await sql`SELECT pg_advisory_xact_lock(CAST(${advisoryLockKey(component)} AS bigint))`.execute(tx);
    await tx.schema
      .createTable(table)
      .ifNotExists()
      .addColumn('name', 'varchar(255)', (col) => col.primaryKey())
      .addColumn('timestamp', 'varchar(255)', (col) => col.notNull())
      .execute();
    const done = new Set((await tx.selectFrom(table).select('name').execute()).map((r) => r.name));

    const known = new Set(keys);
    const unknown = [...done].filter((k) => !known.has(k)).sort();
    if (unknown.length > 0) {
      throw new MigrationError(
        component,
        `the database has migration(s) ${unknown.join(', ')} that this build does not know: was it used by a newer version?`,
      );
    }
    const lastDone = keys.findLastIndex((k) => done.has(k));
    const skipped = keys.slice(0, lastDone + 1).filter((k) => !done.has(k));
    if (skipped.length > 0) {
      throw new MigrationError(component, `migration(s) ${skipped.join(', ')} come before the applied ${keys[lastDone]} but were never applied`);
    }

    const applied: string[] = [];
    for (const [i, m] of migrations.entries()) {
      const key = keys[i] as string;
      if (done.has(key)) continue;
      try {
        await m.up(tx as Kysely<unknown>, dialect);
      } catch (err) {
        throw new MigrationError(component, `migration ${key} failed, and this run was rolled back: ${describeDriverError(err)}`, {
          cause: err,
          migration: key,
        });
      }
      await tx.insertInto(table).values({ name: key, timestamp: new Date().toISOString() }).execute();
      applied.push(key);
    }
    return { applied };
  };

  const history = db as unknown as Kysely<Record<string, HistoryRow>>;
  // Inside a caller's transaction, run in it (Kysely cannot nest transactions).
  return history.isTransaction ? run(history) : history.transaction().execute(run);
}
