/**
 * Opens a Kysely database from a Dendrite connection string:
 *   postgres:// or postgresql://  -> a pg Pool (PostgreSQL; production and polylith)
 *   file:<path>, file:///<path>   -> better-sqlite3 in WAL mode (the embedded default)
 * Dendrite's `postgresql://postgres:@/db?sslmode=disable` (empty host) means 127.0.0.1:5432,
 * as Go's lib/pq reads it. Nothing is taken from PG* environment variables: Sytest starts the
 * server with an empty environment, and an operator's config should say everything.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { createRequire } from 'node:module';
import type PgModule from 'pg';

export type DialectName = 'postgres' | 'sqlite';

export class DatabaseConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseConfigError';
  }
}

export interface PostgresTarget {
  dialect: 'postgres';
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  ssl: boolean;
}

export interface SqliteTarget {
  dialect: 'sqlite';
  /** An absolute path, or ':memory:'. */
  file: string;
}

export type DatabaseTarget = PostgresTarget | SqliteTarget;

let pgModule: typeof PgModule | undefined;

/** pg is loaded on first use: the embedded default (SQLite) never pays for it (about 11 MB). */
function loadPg(): typeof PgModule {
  if (!pgModule) {
    pgModule = createRequire(import.meta.url)('pg') as typeof PgModule;
    // int8 (bigint, bigserial, count(*)) arrives as a JS number: stream positions, timestamps
    // and numeric IDs all stay below 2^53, and numbers keep every query result one type.
    pgModule.types.setTypeParser(pgModule.types.builtins.INT8, (v: string) => Number(v));
  }
  return pgModule;
}

export function parseConnectionString(conn: string, baseDir = process.cwd()): DatabaseTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(conn)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    // Parsed by hand: WHATWG URL refuses Dendrite's empty-host form ("postgres:@/db").
    const m = /^[a-z]+:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]*\]|[^:/?]*)(?::(\d+))?(?:\/([^?]*))?(?:\?(.*))?$/i.exec(conn);
    if (!m) throw new DatabaseConfigError(`malformed PostgreSQL connection string "${redact(conn)}"`);
    const [, user, password, host, port, database, query] = m;
    const params = new URLSearchParams(query ?? '');
    const dec = (v: string | undefined): string => {
      try {
        return decodeURIComponent(v ?? '');
      } catch {
        throw new DatabaseConfigError(`malformed escape in PostgreSQL connection string "${redact(conn)}"`);
      }
    };
    // lib/pq's default is sslmode=require: encrypt, without verifying the certificate.
    const sslmode = params.get('sslmode') ?? 'require';
    return {
      dialect: 'postgres',
      host: dec(host).replace(/^\[|\]$/g, '') || params.get('host') || '127.0.0.1',
      port: Number(port || params.get('port') || 5432),
      user: dec(user) || params.get('user') || 'postgres',
      password: dec(password) || params.get('password') || '',
      database: dec(database) || params.get('dbname') || 'postgres',
      ssl: sslmode !== 'disable',
    };
  }
  if (scheme === 'file') {
    let rest = conn.slice('file:'.length);
    if (rest.startsWith('//')) rest = rest.replace(/^\/\/[^/]*/, '');
    rest = rest.split('?')[0] ?? '';
    if (!rest) throw new DatabaseConfigError(`"${conn}" names no SQLite file`);
    return { dialect: 'sqlite', file: rest === ':memory:' ? rest : path.resolve(baseDir, decodeURIComponent(rest)) };
  }
  if (conn === ':memory:') return { dialect: 'sqlite', file: ':memory:' };
  throw new DatabaseConfigError(
    `unsupported database connection string "${redact(conn)}": use postgresql://... or file:...`,
  );
}

function redact(conn: string): string {
  return conn.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

export interface OpenedDatabase<DB> {
  db: Kysely<DB>;
  dialect: DialectName;
  /** Where it is, without secrets, for logs and errors. */
  description: string;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Pool size (PostgreSQL). */
  maxOpenConns?: number;
  baseDir?: string;
}

export function openDatabase<DB>(conn: string, opts: OpenOptions = {}): OpenedDatabase<DB> {
  const target = parseConnectionString(conn, opts.baseDir);
  if (target.dialect === 'postgres') {
    const pool = new (loadPg().Pool)({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      ssl: target.ssl ? { rejectUnauthorized: false } : false,
      max: opts.maxOpenConns ?? 20,
      connectionTimeoutMillis: 10_000,
    });
    // An idle client's error (server restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    return {
      db,
      dialect: 'postgres',
      description: `PostgreSQL at ${target.host}:${target.port}/${target.database}`,
      close: () => db.destroy(),
    };
  }
  if (target.file !== ':memory:') mkdirSync(path.dirname(target.file), { recursive: true });
  const sqlite = new Sqlite(target.file);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL in WAL mode: a commit survives a process crash (kill -9); only power loss can lose
  // the last transactions. That is the embedded default's durability promise.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: 'sqlite', description: `SQLite at ${target.file}`, close: () => db.destroy() };
}

/** Runs a trivial query so that a bad host, database or password fails at start-up, clearly. */
export async function checkConnection(opened: OpenedDatabase<unknown>): Promise<void> {
  try {
    await sql`SELECT 1`.execute(opened.db);
  } catch (err) {
    throw new Error(`cannot connect to ${opened.description}: ${(err as Error).message}`);
  }
}
