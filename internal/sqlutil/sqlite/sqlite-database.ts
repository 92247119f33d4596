/**
 * Opens a better-sqlite3 database for the server: WAL mode, and the pragmas every connection
 * needs (they are per connection, so they are set here, at open).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { DatabaseConnectError, describeDriverError } from '../errors.js';
import { describeSqliteTarget, MEMORY, type SqliteTarget } from './sqlite-connection-string.js';

/** How long a writer waits for another connection's write lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

export function openSqliteDatabase(t: SqliteTarget): Sqlite.Database {
  let db: Sqlite.Database | undefined;
  try {
    // A new database creates itself, directory included.
    if (t.file !== MEMORY) mkdirSync(path.dirname(t.file), { recursive: true });
    db = new Sqlite(t.file);
    // WAL: readers never block the writer nor the writer readers, and a commit is one append.
    // Reading journal_mode also proves the file is a database ("file is not a database").
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a commit survives a process crash (kill -9); only a power cut can
    // lose the last transactions. That is the embedded default's durability promise.
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Off by default in SQLite, for backward compatibility; tables here declare the ones they mean.
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    db?.close();
    throw new DatabaseConnectError(describeSqliteTarget(t), describeDriverError(err), { cause: err });
  }
}

const STATEMENT_CACHE_LIMIT = 500;

/**
 * The database as Kysely sees it, with prepared statements reused: Kysely prepares every query
 * afresh, and preparing costs as much as running a small query. Statements are safe to reuse
 * here because Kysely runs one query at a time on the connection.
 */
export function withStatementCache(db: Sqlite.Database): Sqlite.Database {
  const cache = new Map<string, Sqlite.Statement>();
  const prepare = (source: string): Sqlite.Statement => {
    let stmt = cache.get(source);
    if (stmt) {
      // Most recently used last, so the oldest goes first when full.
      cache.delete(source);
      cache.set(source, stmt);
      return stmt;
    }
    stmt = db.prepare(source);
    cache.set(source, stmt);
    if (cache.size > STATEMENT_CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    return stmt;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') return prepare;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
