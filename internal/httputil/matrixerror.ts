/**
 * Matrix errors: `{"errcode": "M_...", "error": "..."}` with the HTTP status the spec gives.
 * Handlers throw these; the error middleware turns them into responses.
 */

export type JsonBody = Record<string, unknown>;

export class MatrixError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    /** Extra fields of the error body (e.g. `retry_after_ms`, `soft_logout`). */
    readonly extra: JsonBody = {},
  ) {
    super(message);
    this.name = 'MatrixError';
  }

  toJSON(): JsonBody {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export const unrecognized = (msg = 'Unrecognized request'): MatrixError => new MatrixError(404, 'M_UNRECOGNIZED', msg);
export const methodNotAllowed = (msg = 'Method not allowed'): MatrixError => new MatrixError(405, 'M_UNRECOGNIZED', msg);
export const notFound = (msg: string): MatrixError => new MatrixError(404, 'M_NOT_FOUND', msg);
export const forbidden = (msg: string): MatrixError => new MatrixError(403, 'M_FORBIDDEN', msg);
export const badJson = (msg: string): MatrixError => new MatrixError(400, 'M_BAD_JSON', msg);
export const notJson = (msg = 'Content not JSON.'): MatrixError => new MatrixError(400, 'M_NOT_JSON', msg);
export const tooLarge = (msg = 'Request body too large'): MatrixError => new MatrixError(413, 'M_TOO_LARGE', msg);
export const missingParam = (msg: string): MatrixError => new MatrixError(400, 'M_MISSING_PARAM', msg);
export const invalidParam = (msg: string): MatrixError => new MatrixError(400, 'M_INVALID_PARAM', msg);
export const missingToken = (msg = 'Missing access token'): MatrixError => new MatrixError(401, 'M_MISSING_TOKEN', msg);
export const unknownToken = (msg = 'Unknown access token', softLogout = false): MatrixError =>
  new MatrixError(401, 'M_UNKNOWN_TOKEN', msg, softLogout ? { soft_logout: true } : {});
export const limitExceeded = (retryAfterMs: number): MatrixError =>
  new MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too many requests', { retry_after_ms: retryAfterMs });
export const unknownError = (msg = 'Internal server error'): MatrixError => new MatrixError(500, 'M_UNKNOWN', msg);
