/**
 * Turns whatever a handler throws into a Matrix error response. MatrixError keeps its status
 * and errcode; anything else is a bug on our side: logged with its stack, answered as
 * 500 M_UNKNOWN without internals.
 */
import type { Context } from 'hono';
import type { Logger } from 'pino';
import { jsonResponse } from '../../json.js';
import { MatrixError, unknownError } from '../../matrixerror.js';

export function matrixErrorHandler(logger: Logger): (err: Error, c: Context) => Response {
  return (err, c) => {
    if (err instanceof MatrixError) return jsonResponse(err.toJSON(), err.status);
    logger.error({ err, method: c.req.method, path: c.req.path }, 'request handler failed');
    return jsonResponse(unknownError().toJSON(), 500);
  };
}
