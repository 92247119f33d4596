/**
 * Query logging through the server's logger (pino's shape), built on Kysely's `log` hook.
 * Statements are logged without their parameters: those hold access tokens, password hashes
 * and message contents.
 */
import type { LogEvent } from 'kysely';

/** The part of a pino Logger that sqlutil uses. */
export interface QueryLogger {
  trace?(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const DEFAULT_SLOW_QUERY_MS = 1000;

/**
 * Every statement at trace level, failures at debug (many are expected: a unique violation
 * that the caller handles), and statements slower than slowQueryMs at warn.
 */
export function kyselyLog(logger: QueryLogger, slowQueryMs = DEFAULT_SLOW_QUERY_MS): (event: LogEvent) => void {
  return (event) => {
    const fields = { sql: event.query.sql, ms: Math.round(event.queryDurationMillis * 10) / 10 };
    if (event.level === 'error') {
      logger.debug({ ...fields, err: event.error }, 'SQL statement failed');
    } else if (event.queryDurationMillis >= slowQueryMs) {
      logger.warn(fields, 'slow SQL statement');
    } else {
      logger.trace?.(fields, 'SQL statement');
    }
  };
}
