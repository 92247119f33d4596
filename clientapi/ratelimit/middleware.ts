/**
 * The hono middleware that applies a RateLimiter to the Client-Server routes that write or are
 * expensive (those Dendrite and Synapse limit); reads are never limited. It is mounted once on
 * the client router, ahead of the routes, so the route files need not know about it.
 *
 * Callers are devices (an access token's user and device), except on /register and /login,
 * which have no device yet and are limited per client IP address. A request whose token does
 * not resolve is passed on untouched: the route answers it with its usual 401, and a bad
 * token never earns a 429.
 */
import type { MiddlewareHandler } from 'hono';
import { authenticate, jsonResponse, limitExceeded, remoteAddress, routerPrefixes, type TokenResolver } from '../../internal/httputil/index.js';
import { RateLimiter, type RateLimiterOptions } from './ratelimit.js';

/** How a limited route names its caller. */
export type CallerKind = 'device' | 'ip';

const SEG = '[^/]+';
/** Method, path after /_matrix/client/{r0,v3}, and caller kind of every limited route. */
const LIMITED_ROUTES: ReadonlyArray<readonly [method: string, path: string, kind: CallerKind]> = [
  ['POST', '/register', 'ip'],
  ['POST', '/login', 'ip'],
  ['POST', '/createRoom', 'device'],
  ['POST', `/join/${SEG}`, 'device'],
  ['POST', `/knock/${SEG}`, 'device'],
  ['POST', `/rooms/${SEG}/(?:join|invite|kick|ban|unban|leave|knock|forget|upgrade|read_markers)`, 'device'],
  ['PUT', `/rooms/${SEG}/send/${SEG}/${SEG}`, 'device'],
  ['POST', `/rooms/${SEG}/send/${SEG}`, 'device'],
  // The state key is optional and may be empty (a trailing slash).
  ['PUT', `/rooms/${SEG}/state/${SEG}(?:/[^/]*)?`, 'device'],
  ['PUT', `/rooms/${SEG}/redact/${SEG}(?:/${SEG})?`, 'device'],
  ['POST', `/rooms/${SEG}/redact/${SEG}`, 'device'],
  ['PUT', `/rooms/${SEG}/typing/${SEG}`, 'device'],
  ['POST', `/rooms/${SEG}/receipt/${SEG}/${SEG}`, 'device'],
  ['POST', `/rooms/${SEG}/report(?:/${SEG})?`, 'device'],
  ['PUT', `/profile/${SEG}/(?:displayname|avatar_url)`, 'device'],
  ['PUT', `/sendToDevice/${SEG}/${SEG}`, 'device'],
  ['POST', '/keys/(?:upload|claim)', 'device'],
  ['PUT', `/directory/room/${SEG}`, 'device'],
];

const PREFIX = `${routerPrefixes.client}/(?:r0|v3)`;
/** One anchored alternation per method: a request costs one regex test at most. */
const BY_METHOD: ReadonlyMap<string, { re: RegExp; kinds: CallerKind[] }> = (() => {
  const groups = new Map<string, Array<readonly [string, CallerKind]>>();
  for (const [method, path, kind] of LIMITED_ROUTES) groups.set(method, [...(groups.get(method) ?? []), [path, kind]]);
  const out = new Map<string, { re: RegExp; kinds: CallerKind[] }>();
  for (const [method, routes] of groups) {
    // Each route is its own capture group (its own patterns use only non-capturing groups),
    // so the index of the group that matched gives the route's caller kind.
    out.set(method, { re: new RegExp(`^${PREFIX}(?:${routes.map(([p]) => `(${p})`).join('|')})$`), kinds: routes.map(([, k]) => k) });
  }
  return out;
})();

/** The caller kind of a limited route; undefined when the route is not limited. */
export function limitedRoute(method: string, path: string): CallerKind | undefined {
  const group = BY_METHOD.get(method);
  if (!group) return undefined;
  const m = group.re.exec(path);
  if (!m) return undefined;
  const i = m.findIndex((g, n) => n > 0 && g !== undefined);
  return group.kinds[i - 1];
}

/** Callers without a socket (in-process requests in tests) share one key. */
const UNKNOWN_IP = 'unknown';

export interface RateLimitMiddlewareOptions {
  limiter: RateLimiter;
  /** Resolves access tokens (userapi's queryAccessToken, as the routes use). */
  tokens: TokenResolver<{ userId: string; deviceId: string; isGuest: boolean }>;
  /** Which routes are limited and how; `limitedRoute` by default. */
  classify?: (method: string, path: string) => CallerKind | undefined;
}

export function rateLimitMiddleware(opts: RateLimitMiddlewareOptions): MiddlewareHandler {
  const classify = opts.classify ?? limitedRoute;
  return async (c, next) => {
    const kind = classify(c.req.method, c.req.path);
    if (kind === undefined) return next();
    let caller: string;
    if (kind === 'ip') {
      caller = `ip ${remoteAddress(c) ?? UNKNOWN_IP}`;
    } else {
      let device: { userId: string; deviceId: string };
      try {
        // Guests are limited like anyone else; whether they may use the route is the route's call.
        device = await authenticate(c, opts.tokens, { allowGuests: true });
      } catch {
        return next();
      }
      if (opts.limiter.isExempt(device.userId)) return next();
      // User IDs contain no spaces, so the device ID (last) cannot make two callers collide.
      caller = `device ${device.userId} ${device.deviceId}`;
    }
    const taken = opts.limiter.take(caller);
    if (!taken.allowed) {
      // Retry-After (whole seconds) as well, for clients and proxies that read only the header.
      return jsonResponse(limitExceeded(taken.retryAfterMs).toJSON(), 429, { 'Retry-After': String(Math.ceil(taken.retryAfterMs / 1000)) });
    }
    return next();
  };
}

/** The middleware for `client_api.rate_limiting`, with a limiter of its own. */
export function newRateLimitMiddleware(cfg: Pick<RateLimiterOptions, 'threshold' | 'cooloffMs' | 'exemptUserIds'>, tokens: RateLimitMiddlewareOptions['tokens']): MiddlewareHandler {
  return rateLimitMiddleware({ limiter: new RateLimiter(cfg), tokens });
}
