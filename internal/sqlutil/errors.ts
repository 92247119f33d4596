/**
 * The errors sqlutil throws. Each says which database and what went wrong, without passwords,
 * so that the config layer and start-up can print them as one line.
 */

/** A connection string that cannot be used (bad syntax, bad parameter). */
export class DatabaseConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DatabaseConfigError';
  }
}

/** The schemes openDatabase understands, as they are written in a connection string. */
export const ACCEPTED_SCHEMES = ['postgresql://', 'postgres://', 'file:'] as const;

/** A connection string whose scheme is neither PostgreSQL nor SQLite (or that has none). */
export class UnsupportedSchemeError extends DatabaseConfigError {
  readonly accepted = ACCEPTED_SCHEMES;

  /** @param scheme the scheme without its colon, lower case; undefined when there is none. */
  constructor(
    readonly scheme: string | undefined,
    connectionString: string,
  ) {
    super(
      scheme === undefined
        ? `database connection string "${connectionString}" has no scheme: use ${ACCEPTED_SCHEMES.join(', ')}` +
            ' (a SQLite file is written file:path)'
        : `unsupported database scheme "${scheme}:" in "${connectionString}": use ${ACCEPTED_SCHEMES.join(', ')}`,
    );
    this.name = 'UnsupportedSchemeError';
  }
}

/** The database could not be reached or opened at start-up. */
export class DatabaseConnectError extends Error {
  constructor(
    /** Where, without secrets: "PostgreSQL at 127.0.0.1:5432/dendrite". */
    readonly target: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot connect to ${target}: ${reason}`, options);
    this.name = 'DatabaseConnectError';
  }
}

/** A component's schema migrations could not be applied. */
export class MigrationError extends Error {
  /** The migration that failed ("000002_add_index"), when one did. */
  readonly migration: string | undefined;

  constructor(
    readonly component: string,
    detail: string,
    options?: ErrorOptions & { migration?: string },
  ) {
    super(`${component} migrations: ${detail}`, options);
    this.name = 'MigrationError';
    this.migration = options?.migration;
  }
}

/** Replaces the password of a URL-shaped connection string with ***. */
export function redactConnectionString(conn: string): string {
  return conn.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@').replace(/([?&]password=)[^&]*/i, '$1***');
}

/**
 * The most useful one-line reason from a driver error. Node's "connect ECONNREFUSED" can arrive
 * as an AggregateError with an empty message (one error per address tried).
 */
export function describeDriverError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return [...new Set(err.errors.map(describeDriverError))].join('; ');
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (err.message) return err.message;
    if (typeof code === 'string') return code;
    return err.name;
  }
  return String(err);
}
