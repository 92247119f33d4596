/**
 * Authentication of inbound federation requests: the X-Matrix signature of the origin over
 * the method, the URI as sent, both server names and the JSON body. A request that fails is
 * answered 401 M_UNAUTHORIZED before any handler runs.
 */
import type { Context } from 'hono';
import { MatrixError, readBody } from '../../internal/httputil/index.js';
import { MatrixProtocolError, isValidServerName, parseXMatrixHeader, verifyRequest, type JsonValue, type RequestKeyLookup } from '../../internal/matrix/index.js';

/** Federation bodies carry whole transactions and room states. */
const MAX_BODY = 10 * 1024 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface AuthenticatedRequest {
  origin: string;
  /** The parsed JSON body; undefined when the request has none. */
  body: JsonValue | undefined;
}

/** The path and query exactly as the client sent them (what the origin signed). */
function requestTarget(url: string): string {
  const afterScheme = url.indexOf('//');
  const pathStart = url.indexOf('/', afterScheme + 2);
  return pathStart === -1 ? '/' : url.slice(pathStart);
}

export class FederationAuth {
  constructor(
    private readonly serverName: string,
    private readonly keyLookup: RequestKeyLookup,
  ) {}

  async authenticate(c: Context): Promise<AuthenticatedRequest> {
    const raw = await readBody(c, MAX_BODY);
    let body: JsonValue | undefined;
    if (raw.length > 0) {
      try {
        body = JSON.parse(utf8.decode(raw)) as JsonValue;
      } catch {
        throw new MatrixError(400, 'M_NOT_JSON', 'Content not JSON.');
      }
    }
    // An origin that is not a server name at all (a port that is not a number, say) is a bad request, as Synapse answers.
    try {
      const parsed = parseXMatrixHeader(c.req.header('Authorization') ?? '');
      if (!isValidServerName(parsed.origin)) throw new MatrixError(400, 'M_INVALID_PARAM', `${parsed.origin} is not a valid server name`);
    } catch (e) {
      if (e instanceof MatrixError) throw e;
    }
    try {
      const { origin } = await verifyRequest(
        { method: c.req.method, uri: requestTarget(c.req.url), authorization: c.req.header('Authorization'), ...(body !== undefined ? { content: body } : {}) },
        this.serverName,
        this.keyLookup,
      );
      return { origin, body };
    } catch (e) {
      if (e instanceof MatrixProtocolError) throw new MatrixError(401, 'M_UNAUTHORIZED', e.message);
      throw e;
    }
  }
}
