/**
 * One Hono app per listener: Matrix CORS, request logs, the components' routers under their
 * prefixes, and Matrix errors for everything else (404 and 405 M_UNRECOGNIZED, 500 M_UNKNOWN).
 */
import { Hono } from 'hono';
import { methodNotAllowed } from 'hono/method-not-allowed';
import type { Logger } from 'pino';
// Type only: prom-client (about 20 MB) is loaded only when metrics are enabled.
import type { Metrics } from './metrics.js';
import {
  jsonResponse,
  matrixCors,
  matrixErrorHandler,
  methodNotAllowed as methodNotAllowedError,
  requestLog,
  routerPrefixes,
  unrecognized,
  type PublicRouters,
} from '../../internal/httputil/index.js';

export interface ListenerOptions {
  /** Prometheus metrics: counted on every request, served on /metrics. */
  metrics?: { metrics: Metrics; basicAuth: { username: string; password: string } };
}

export function buildListenerApp(routers: PublicRouters, logger: Logger, opts: ListenerOptions = {}): Hono {
  const app = new Hono();
  app.use('*', matrixCors());
  app.use('*', requestLog(logger));
  if (opts.metrics) {
    app.use('*', opts.metrics.metrics.middleware);
    opts.metrics.metrics.addRoute(app, opts.metrics.basicAuth);
  }
  app.use(
    '*',
    methodNotAllowed({
      app,
      onMethodNotAllowed: (_c, methods) =>
        jsonResponse(methodNotAllowedError().toJSON(), 405, { Allow: methods.join(', ') }),
    }),
  );
  for (const [name, prefix] of Object.entries(routerPrefixes) as Array<[keyof PublicRouters, string]>) {
    app.route(prefix, routers[name]);
  }
  app.notFound(() => jsonResponse(unrecognized().toJSON(), 404));
  app.onError(matrixErrorHandler(logger));
  return app;
}
