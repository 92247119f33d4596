/** Errors of the outbound federation HTTP layer. */

/**
 * - `unreachable`: no connection could be made or it broke (DNS failure, refused, TLS failure,
 *   reset before the response was complete).
 * - `timeout`: the request's deadline passed.
 * - `denied`: every address the destination resolved to is refused by deny/allow networks;
 *   nothing was connected to.
 * - `too_large`: the response body exceeds the request's byte limit.
 * - `bad_response`: a 2xx response whose body is not the JSON expected, or a malformed
 *   destination name.
 */
export type FederationClientErrorCode = 'unreachable' | 'timeout' | 'denied' | 'too_large' | 'bad_response';

/** A request that got no usable HTTP response. */
export class FederationClientError extends Error {
  override readonly name = 'FederationClientError';
  constructor(
    readonly code: FederationClientErrorCode,
    message: string,
    /** The destination server name, when known. */
    readonly destination?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A non-2xx answer from the remote server, thrown by the typed helpers of FederationClient
 * (FederationClient.request resolves with the status instead). `errcode` and `error` are the
 * Matrix error fields of the body when present.
 */
export class FederationHttpError extends Error {
  override readonly name = 'FederationHttpError';
  readonly errcode: string | undefined;
  readonly error: string | undefined;
  constructor(
    readonly destination: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    const obj = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
    const errcode = typeof obj.errcode === 'string' ? obj.errcode : undefined;
    const error = typeof obj.error === 'string' ? obj.error : undefined;
    super(`${destination} answered ${status}${errcode ? ` ${errcode}` : ''}${error ? `: ${error}` : ''}`);
    this.errcode = errcode;
    this.error = error;
  }
}
