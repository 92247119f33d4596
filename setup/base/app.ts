/**
 * One Hono app per listener: Matrix CORS, request logs, the components' routers under their
 * prefixes, and Matrix errors for everything else (404 and 405 M_UNRECOGNIZED, 500 M_UNKNOWN).
 */
import { Hono } from 'hono';
import { methodNotAllowed } from 'hono/method-not-allowed';
import type { Logger } from 'pino';
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

export function buildListenerApp(routers: PublicRouters, logger: Logger): Hono {
  const app = new Hono();
  app.use('*', matrixCors());
  app.use('*', requestLog(logger));
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
