/**
 * Which database a connection string names. The scheme picks the dialect; each dialect's
 * folder reads the rest.
 */
import { UnsupportedSchemeError, redactConnectionString } from './errors.js';
import { parsePostgresConnectionString, describePostgresTarget, type PostgresTarget } from './postgres/postgres-connection-string.js';
import { parseSqliteConnectionString, describeSqliteTarget, MEMORY, type SqliteTarget } from './sqlite/sqlite-connection-string.js';

export type { PostgresTarget, PostgresSslMode } from './postgres/postgres-connection-string.js';
export type { SqliteTarget } from './sqlite/sqlite-connection-string.js';

export type DatabaseTarget = PostgresTarget | SqliteTarget;

/** The scheme, lower case and without its colon; undefined when the string has none. */
export function connectionScheme(conn: string): string | undefined {
  if (conn === MEMORY) return undefined;
  return /^([a-z][a-z0-9+.-]*):/i.exec(conn)?.[1]?.toLowerCase();
}

/**
 * Reads a connection string. Throws UnsupportedSchemeError for a scheme other than
 * postgres://, postgresql:// or file: (and for none), DatabaseConfigError for a malformed one.
 * @param baseDir what a relative SQLite path is resolved against (the config's directory).
 */
export function parseConnectionString(conn: string, baseDir = process.cwd()): DatabaseTarget {
  if (conn === MEMORY) return parseSqliteConnectionString(conn, baseDir);
  const scheme = connectionScheme(conn);
  if (scheme === 'postgres' || scheme === 'postgresql') return parsePostgresConnectionString(conn);
  if (scheme === 'file') return parseSqliteConnectionString(conn, baseDir);
  throw new UnsupportedSchemeError(scheme, redactConnectionString(conn));
}

/** Where the database is, without secrets: "PostgreSQL at 127.0.0.1:5432/dendrite". */
export function describeTarget(t: DatabaseTarget): string {
  return t.dialect === 'postgres' ? describePostgresTarget(t) : describeSqliteTarget(t);
}

/**
 * One key per database: two spellings of one SQLite file ("file:a.db", "file:./a.db") or of
 * one PostgreSQL database must share a handle. For SQLite this matters beyond thrift: two
 * connections to one file in one (synchronous) process can wait on each other's write lock
 * until busy_timeout expires.
 */
export function targetKey(t: DatabaseTarget): string {
  if (t.dialect === 'sqlite') return `sqlite:${t.file}`;
  return `postgres:${JSON.stringify([t.host, t.port, t.database, t.user, t.password, t.sslMode, t.sslRootCert ?? '', t.applicationName ?? ''])}`;
}
