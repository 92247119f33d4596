/**
 * Reads a SQLite connection string as Dendrite does (Go's url.Parse on "file:..."):
 *   file:dendrite.db, file:./d/x.db   relative, resolved against baseDir (the config's directory)
 *   file:/var/lib/d.db                absolute
 *   file:///var/lib/d.db              absolute (the URL's host, if any, is ignored)
 *   file::memory: or :memory:         a private in-memory database
 * A query string (file:x.db?_busy_timeout=...) is dropped: the pragmas are ours to choose.
 */
import path from 'node:path';
import { DatabaseConfigError } from '../errors.js';

export const MEMORY = ':memory:';

export interface SqliteTarget {
  dialect: 'sqlite';
  /** An absolute path, or ':memory:'. */
  file: string;
}

export function parseSqliteConnectionString(conn: string, baseDir: string): SqliteTarget {
  if (conn === MEMORY) return { dialect: 'sqlite', file: MEMORY };
  let rest = conn.replace(/^file:/i, '');
  if (rest.startsWith('//')) rest = rest.replace(/^\/\/[^/]*/, '');
  rest = rest.replace(/[?#].*$/, '');
  if (rest === MEMORY) return { dialect: 'sqlite', file: MEMORY };
  let file: string;
  try {
    file = decodeURIComponent(rest);
  } catch {
    throw new DatabaseConfigError(`malformed %-escape in SQLite connection string "${conn}"`);
  }
  if (file === '') throw new DatabaseConfigError(`SQLite connection string "${conn}" names no file (write file:path)`);
  return { dialect: 'sqlite', file: path.resolve(baseDir, file) };
}

export function describeSqliteTarget(t: SqliteTarget): string {
  return t.file === MEMORY ? 'SQLite in memory' : `SQLite at ${t.file}`;
}
