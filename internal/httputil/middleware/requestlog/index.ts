/** One structured log line per request, at debug level (trace of every request is noisy). */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';

export function requestLog(logger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const start = performance.now();
    await next();
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round((performance.now() - start) * 10) / 10 },
        'http request',
      );
    }
  };
}
