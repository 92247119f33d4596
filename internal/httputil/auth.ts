/**
 * Resolves the access token of a request (Authorization: Bearer, or the deprecated
 * access_token query parameter) to a device, through whatever answers `queryAccessToken`
 * (userapi): shared by every component that serves client routes.
 */
import type { Context } from 'hono';
import { MatrixError, missingToken, unknownToken } from './matrixerror.js';
import { remoteAddress } from './clientip.js';

export interface TokenResolver<D extends { isGuest: boolean }> {
  queryAccessToken(req: { accessToken: string; ip?: string; userAgent?: string }): Promise<{ device?: D; expired?: boolean }>;
}

const resolvedTokens = new WeakMap<Request, { resolver: object; token: string; answer: Promise<{ device?: unknown; expired?: boolean }> }>();

export function accessTokenOf(c: Context): string | undefined {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }
  return c.req.query('access_token') ?? undefined;
}

/**
 * The device making the request. Guests are refused (403 M_GUEST_ACCESS_FORBIDDEN) unless
 * the route is one the spec opens to them (`allowGuests`).
 */
export async function authenticate<D extends { isGuest: boolean }>(c: Context, resolver: TokenResolver<D>, opts: { allowGuests?: boolean } = {}): Promise<D & { accessToken: string }> {
  const token = accessTokenOf(c);
  if (!token) throw missingToken();
  const ip = remoteAddress(c);
  const userAgent = c.req.header('user-agent');
  // Asked once per request and resolver: the rate limiter and the route both authenticate.
  const asked = resolvedTokens.get(c.req.raw);
  let answer = asked?.resolver === resolver && asked.token === token ? asked.answer : undefined;
  if (!answer) {
    answer = resolver.queryAccessToken({ accessToken: token, ...(ip !== undefined ? { ip } : {}), ...(userAgent !== undefined ? { userAgent } : {}) });
    resolvedTokens.set(c.req.raw, { resolver, token, answer });
  }
  const { device, expired } = (await answer) as { device?: D; expired?: boolean };
  // An expired refreshable token is a soft logout: the client refreshes instead of logging in.
  if (expired) throw unknownToken('Access token has expired', true);
  if (!device) throw unknownToken();
  if (device.isGuest && !opts.allowGuests) throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is not allowed here');
  return { ...device, accessToken: token };
}
