/** POST /user/{userId}/openid/request_token: a token a third party can check with our federation API. */
import type { Context, Hono } from 'hono';
import { forbidden, jsonResponse, readJsonObject } from '../../internal/httputil/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

export function addOpenIDRoute(client: Hono, userAPI: ClientUserAPI, serverName: string): void {
  clientRoute(client, 'post', '/user/:userId/openid/request_token', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    if (c.req.param('userId') !== me.userId) throw forbidden('You may only request tokens for yourself');
    await readJsonObject(c, { maxBytes: 4096, allowEmpty: true });
    const { token, expiresInMs } = await userAPI.performOpenIDTokenCreation({ userId: me.userId });
    return jsonResponse({ access_token: token, token_type: 'Bearer', matrix_server_name: serverName, expires_in: Math.floor(expiresInMs / 1000) });
  });
}
