/**
 * Reads a `postgres://` or `postgresql://` connection string the way Dendrite's driver (Go's
 * lib/pq) reads it, so that a Dendrite config works unchanged:
 *
 * - `postgresql://postgres:@/dendrite?sslmode=disable` (empty host) means 127.0.0.1:5432.
 *   lib/pq says "localhost"; we say 127.0.0.1 because Node may try ::1 first and a server that
 *   listens on IPv4 only would then refuse us.
 * - Query parameters override the URL's parts (lib/pq appends them after the URL's values).
 * - `sslmode` defaults to `require` (lib/pq's default, unlike libpq's `prefer`): encrypted,
 *   certificate not verified. `verify-ca` and `verify-full` verify it (against `sslrootcert`
 *   when given, else the system CAs); `disable` is plain TCP. Like lib/pq we refuse `allow`
 *   and `prefer`: pg cannot fall back from TLS to plain, and silently not encrypting is worse.
 * - `host` may be a Unix socket directory (`?host=/var/run/postgresql`).
 * - Also honoured: `port`, `user`, `password`, `dbname`, `connect_timeout` (seconds),
 *   `application_name`, `sslrootcert`. Other parameters are ignored, as lib/pq's client-side
 *   ones would be.
 *
 * Nothing comes from PG* environment variables: Sytest starts the server with an empty
 * environment, and the config should say everything.
 */
import { DatabaseConfigError, redactConnectionString } from '../errors.js';

export type PostgresSslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';
const sslModes: readonly PostgresSslMode[] = ['disable', 'require', 'verify-ca', 'verify-full'];

export interface PostgresTarget {
  dialect: 'postgres';
  /** A host name, an IP address, or a Unix socket directory (starts with "/"). */
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  sslMode: PostgresSslMode;
  /** Path of a CA certificate file (PEM) for verify-ca / verify-full. */
  sslRootCert?: string;
  /** connect_timeout, in milliseconds; undefined means our default. */
  connectTimeoutMs?: number;
  applicationName?: string;
}

const urlShape =
  /^(?<scheme>[a-z]+):\/\/(?:(?<user>[^:@/?]*)(?::(?<password>[^@/?]*))?@)?(?<host>\[[^\]]*\]|[^:/?]*)(?::(?<port>[^/?]*))?(?:\/(?<database>[^?]*))?(?:\?(?<query>.*))?$/i;

export function parsePostgresConnectionString(conn: string): PostgresTarget {
  const shown = redactConnectionString(conn);
  // By hand, not with WHATWG URL: it refuses Dendrite's empty-host form ("postgres:@/db").
  const parts = urlShape.exec(conn)?.groups;
  if (!parts) throw new DatabaseConfigError(`malformed PostgreSQL connection string "${shown}"`);
  const decode = (v: string | undefined, what: string): string | undefined => {
    if (v === undefined || v === '') return undefined;
    try {
      return decodeURIComponent(v);
    } catch {
      throw new DatabaseConfigError(`malformed %-escape in the ${what} of PostgreSQL connection string "${shown}"`);
    }
  };
  const params = new URLSearchParams(parts.query ?? '');
  const param = (name: string): string | undefined => params.get(name) || undefined;

  const host = param('host') ?? decode(parts.host?.replace(/^\[|\]$/g, ''), 'host') ?? '127.0.0.1';
  const portText = param('port') ?? parts.port ?? '';
  const port = portText === '' ? 5432 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DatabaseConfigError(`invalid port "${portText}" in PostgreSQL connection string "${shown}"`);
  }
  const user = param('user') ?? decode(parts.user, 'user name') ?? 'postgres';
  const sslModeText = param('sslmode') ?? 'require';
  if (!sslModes.includes(sslModeText as PostgresSslMode)) {
    throw new DatabaseConfigError(
      `unsupported sslmode "${sslModeText}" in PostgreSQL connection string "${shown}": use ${sslModes.join(', ')}`,
    );
  }
  const target: PostgresTarget = {
    dialect: 'postgres',
    host,
    port,
    user,
    password: param('password') ?? decode(parts.password, 'password') ?? '',
    // The server's own default: a database named like the user.
    database: param('dbname') ?? decode(parts.database, 'database name') ?? user,
    sslMode: sslModeText as PostgresSslMode,
  };
  const rootCert = param('sslrootcert');
  if (rootCert) target.sslRootCert = rootCert;
  const timeout = param('connect_timeout');
  if (timeout !== undefined) {
    const seconds = Number(timeout);
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new DatabaseConfigError(`invalid connect_timeout "${timeout}" in PostgreSQL connection string "${shown}"`);
    }
    // lib/pq: 0 means wait forever; pg: 0 means no timeout as well.
    target.connectTimeoutMs = Math.round(seconds * 1000);
  }
  const appName = param('application_name');
  if (appName) target.applicationName = appName;
  return target;
}

/** Where the database is, without secrets, for logs and errors. */
export function describePostgresTarget(t: PostgresTarget): string {
  const where = t.host.startsWith('/') ? `${t.host} (socket)` : `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
  return `PostgreSQL at ${where}/${t.database}`;
}
