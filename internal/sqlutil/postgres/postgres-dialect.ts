/**
 * A Kysely PostgresDialect over a pg Pool for one PostgresTarget.
 *
 * pg is loaded on first use, so that the embedded default (SQLite) never pays for loading it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ConnectionOptions } from 'node:tls';
import { PostgresDialect } from 'kysely';
import type PgModule from 'pg';
import { DatabaseConfigError } from '../errors.js';
import type { PostgresTarget } from './postgres-connection-string.js';

export interface PostgresPoolOptions {
  /** Most connections open at once (Dendrite's max_open_conns). */
  maxOpenConns?: number;
  /** Close a connection this long after it opened (conn_max_lifetime); <= 0 keeps it. */
  connMaxLifetimeMs?: number;
  /** Told when an idle connection breaks (the pool replaces it). */
  onIdleError?: (err: Error) => void;
}

const DEFAULT_MAX_OPEN_CONNS = 20;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const INT8_OID = 20;

let pg: typeof PgModule | undefined;

function loadPg(): typeof PgModule {
  pg ??= createRequire(import.meta.url)('pg') as typeof PgModule;
  return pg;
}

/**
 * int8 (bigint, bigserial, count(*)) arrives as a JS number instead of pg's default string:
 * stream positions, millisecond timestamps and numeric IDs all stay far below 2^53, and one
 * number type keeps every table's code the same on both dialects (SQLite gives numbers too).
 * Set per pool, not globally on pg.types, so other pg users in the process are unaffected.
 * Values beyond 2^53 would lose precision: do not store such values in bigint columns.
 */
function typeParsers(pgm: typeof PgModule): { getTypeParser: typeof PgModule.types.getTypeParser } {
  const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pgm.types.getTypeParser(oid, format)) as typeof PgModule.types.getTypeParser;
  return { getTypeParser };
}

function tlsOptions(t: PostgresTarget): false | ConnectionOptions {
  if (t.sslMode === 'disable') return false;
  let ca: string | undefined;
  if (t.sslRootCert) {
    try {
      ca = readFileSync(t.sslRootCert, 'utf8');
    } catch (err) {
      throw new DatabaseConfigError(`cannot read sslrootcert "${t.sslRootCert}": ${(err as Error).message}`, { cause: err });
    }
  }
  if (t.sslMode === 'require') return { rejectUnauthorized: false };
  const verifyHostName = t.sslMode === 'verify-full';
  return {
    rejectUnauthorized: true,
    ...(ca === undefined ? {} : { ca }),
    ...(verifyHostName ? {} : { checkServerIdentity: () => undefined }),
  };
}

export interface PostgresDialectHandle {
  dialect: PostgresDialect;
  /**
   * Ends the pool. Kysely's destroy() only ends it if a query ever ran (it initialises its
   * driver lazily), so closing must also end it directly.
   */
  end(): Promise<void>;
}

export function createPostgresDialect(t: PostgresTarget, opts: PostgresPoolOptions = {}): PostgresDialectHandle {
  const pgm = loadPg();
  const lifetime = opts.connMaxLifetimeMs ?? -1;
  const pool = new pgm.Pool({
    host: t.host,
    port: t.port,
    user: t.user,
    password: t.password,
    database: t.database,
    ssl: tlsOptions(t),
    max: opts.maxOpenConns ?? DEFAULT_MAX_OPEN_CONNS,
    connectionTimeoutMillis: t.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    ...(lifetime > 0 ? { maxLifetimeSeconds: Math.max(1, Math.ceil(lifetime / 1000)) } : {}),
    ...(t.applicationName ? { application_name: t.applicationName } : {}),
    keepAlive: true,
    types: typeParsers(pgm),
  });
  // An idle client's error (server restart, network cut) must not crash the process: pg emits
  // it on the pool, where an unhandled 'error' event would throw. The pool drops the client.
  pool.on('error', (err) => opts.onIdleError?.(err));
  return {
    dialect: new PostgresDialect({ pool }),
    end: async () => {
      if (!pool.ended) await pool.end();
    },
  };
}
