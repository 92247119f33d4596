/**
 * Opens a Kysely database from a Dendrite connection string:
 *   postgres:// or postgresql://          -> a pg Pool (PostgreSQL: production and polylith)
 *   file:path, file:///path, :memory:     -> better-sqlite3 in WAL mode (the embedded default)
 * The connection-string forms are described in postgres/ and sqlite/, one folder per dialect,
 * as Kysely lays out its own dialects.
 */
import { Kysely, sql, type Dialect } from 'kysely';
import { describeTarget, parseConnectionString, type DatabaseTarget } from './connection-string.js';
import type { DialectName } from './dialect.js';
import { DatabaseConnectError, describeDriverError } from './errors.js';
import { createPostgresDialect } from './postgres/postgres-dialect.js';
import { kyselyLog, type QueryLogger } from './query-log.js';
import { openSqliteDatabase, withStatementCache } from './sqlite/sqlite-database.js';
import { ImmediateSqliteDialect } from './sqlite/sqlite-dialect.js';

export interface OpenOptions {
  /** PostgreSQL pool size (Dendrite's max_open_conns). SQLite always has one connection. */
  maxOpenConns?: number;
  /** PostgreSQL: close connections this old (conn_max_lifetime); <= 0 never. */
  connMaxLifetimeMs?: number;
  /** What a relative SQLite path is resolved against; the config's directory. Default: cwd. */
  baseDir?: string;
  /** Query log (trace), failed statements (debug), slow statements (warn), lost connections (warn). */
  logger?: QueryLogger;
  /** Statements at least this slow are logged at warn. Default 1000 ms. */
  slowQueryMs?: number;
}

export interface OpenedDatabase<DB> {
  db: Kysely<DB>;
  dialect: DialectName;
  /** Where it is, without secrets, for logs and errors: "PostgreSQL at 127.0.0.1:5432/dendrite". */
  description: string;
  /** Closes the pool or file. Idempotent. Do not call it on a handle from DatabaseHandles. */
  close(): Promise<void>;
}

/** Opens without connecting (PostgreSQL connects on the first query); see connectDatabase. */
export function openDatabase<DB>(conn: string, opts: OpenOptions = {}): OpenedDatabase<DB> {
  return openTarget<DB>(parseConnectionString(conn, opts.baseDir), opts);
}

/** Opens and proves the database answers, so that a bad host or password fails at start-up. */
export async function connectDatabase<DB>(conn: string, opts: OpenOptions = {}): Promise<OpenedDatabase<DB>> {
  return connectTarget<DB>(parseConnectionString(conn, opts.baseDir), opts);
}

export function openTarget<DB>(target: DatabaseTarget, opts: OpenOptions = {}): OpenedDatabase<DB> {
  const description = describeTarget(target);
  let dialect: Dialect;
  // Kysely's destroy() releases nothing when no query ever ran (its driver starts lazily),
  // so close() also releases the pool or file directly.
  let release: () => Promise<void>;
  if (target.dialect === 'postgres') {
    const poolOpts: Parameters<typeof createPostgresDialect>[1] = {};
    if (opts.maxOpenConns !== undefined) poolOpts.maxOpenConns = opts.maxOpenConns;
    if (opts.connMaxLifetimeMs !== undefined) poolOpts.connMaxLifetimeMs = opts.connMaxLifetimeMs;
    const logger = opts.logger;
    if (logger) poolOpts.onIdleError = (err) => logger.warn({ err, database: description }, 'idle database connection lost');
    const pg = createPostgresDialect(target, poolOpts);
    dialect = pg.dialect;
    release = pg.end;
  } else {
    const sqlite = openSqliteDatabase(target);
    dialect = new ImmediateSqliteDialect({ database: withStatementCache(sqlite) });
    release = async () => {
      if (sqlite.open) sqlite.close();
    };
  }
  const db = new Kysely<DB>({ dialect, ...(opts.logger ? { log: kyselyLog(opts.logger, opts.slowQueryMs) } : {}) });
  let closing: Promise<void> | undefined;
  return {
    db,
    dialect: target.dialect,
    description,
    close: () => (closing ??= db.destroy().finally(release)),
  };
}

export async function connectTarget<DB>(target: DatabaseTarget, opts: OpenOptions = {}): Promise<OpenedDatabase<DB>> {
  const opened = openTarget<DB>(target, opts);
  try {
    await checkConnection(opened);
  } catch (err) {
    await opened.close().catch(() => undefined);
    throw err;
  }
  return opened;
}

/** Runs a trivial query; throws DatabaseConnectError naming the database and the reason. */
export async function checkConnection<DB>(opened: OpenedDatabase<DB>): Promise<void> {
  try {
    await sql`SELECT 1`.execute(opened.db);
  } catch (err) {
    let reason = describeDriverError(err);
    if (/does not support SSL/i.test(reason)) reason += ' (add sslmode=disable to the connection string to connect without TLS)';
    throw new DatabaseConnectError(opened.description, reason, { cause: err });
  }
}
