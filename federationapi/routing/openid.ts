/**
 * GET /_matrix/federation/v1/openid/userinfo: which user an OpenID token was issued to. It is
 * authenticated by the token itself, not by X-Matrix (the caller is not a homeserver).
 */
import type { Hono } from 'hono';
import { MatrixError, jsonResponse } from '../../internal/httputil/index.js';
import type { FederationUserAPI } from '../../userapi/api/index.js';

export function addOpenIDUserInfoRoute(federation: Hono, userAPI: FederationUserAPI): void {
  federation.get('/v1/openid/userinfo', async (c) => {
    const token = c.req.query('access_token');
    if (!token) throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'access_token is required');
    const { userId } = await userAPI.queryOpenIDToken({ token });
    if (!userId) throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Access Token unknown or expired');
    return jsonResponse({ sub: userId });
  });
}
