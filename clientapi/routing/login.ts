/**
 * GET/POST /login (m.login.password with every identifier form for users), and the
 * session endpoints: /account/whoami, /logout, /logout/all.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, jsonResponse, missingParam, readJsonObject, remoteAddress, unknownToken, type JsonBody } from '../../internal/httputil/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI, PerformDeviceCreationResponse } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;

/**
 * The user a login names: `identifier` (m.id.user) or the deprecated top-level `user`.
 * Undefined for a well-formed third-party identifier (m.id.thirdparty, m.id.phone, or the
 * deprecated top-level medium/address): no account here has one, so such a login fails as a
 * wrong password does.
 */
function userOf(body: JsonBody): string | undefined {
  const identifier = body['identifier'];
  if (identifier !== undefined) {
    if (typeof identifier !== 'object' || identifier === null || Array.isArray(identifier)) throw badJson('identifier must be an object');
    const id = identifier as JsonBody;
    switch (id['type']) {
      case 'm.id.user':
        if (typeof id['user'] !== 'string') throw badJson('identifier.user must be a string');
        return id['user'];
      case 'm.id.thirdparty':
        if (typeof id['medium'] !== 'string' || typeof id['address'] !== 'string') throw badJson('identifier.medium and identifier.address must be strings');
        return undefined;
      case 'm.id.phone':
        if (typeof id['country'] !== 'string' || typeof id['phone'] !== 'string') throw badJson('identifier.country and identifier.phone must be strings');
        return undefined;
      default:
        throw new MatrixError(400, 'M_UNKNOWN', `identifier type ${String(id['type'])} is not supported`);
    }
  }
  if (typeof body['user'] === 'string') return body['user'];
  if (typeof body['medium'] === 'string' && typeof body['address'] === 'string') return undefined;
  throw badJson('a login needs identifier.user');
}

/** The token fields of a login or registration answer (refresh_token and expires_in_ms for refreshable logins). */
export function loginTokensJson(login: PerformDeviceCreationResponse): Record<string, unknown> {
  return {
    access_token: login.accessToken,
    ...(login.refreshToken !== undefined ? { refresh_token: login.refreshToken, expires_in_ms: login.expiresInMs } : {}),
  };
}

export function addLoginRoutes(client: Hono, cfg: Config, userAPI: ClientUserAPI): void {
  const serverName = cfg.global.serverName;

  clientRoute(client, 'get', '/login', () =>
    jsonResponse({ flows: cfg.clientApi.passwordAuthenticationDisabled ? [] : [{ type: 'm.login.password' }] }),
  );

  clientRoute(client, 'post', '/login', async (c: Context) => {
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    if (body['type'] !== 'm.login.password' || cfg.clientApi.passwordAuthenticationDisabled) {
      throw new MatrixError(400, 'M_UNKNOWN', `login type ${String(body['type'])} is not supported`);
    }
    const password = body['password'];
    if (typeof password !== 'string') throw badJson('password must be a string');
    const user = userOf(body);
    if (user === undefined) throw forbidden('Invalid username or password');
    // A full user ID must be ours; a bare name is a localpart. Both compare lower-cased.
    const m = /^@([^:]+):(.+)$/.exec(user);
    if (m && m[2] !== serverName) throw forbidden('The user is not on this server');
    const localpart = (m ? m[1]! : user).toLowerCase();
    const { ok } = await userAPI.performPasswordCheck({ localpart, password });
    if (!ok) throw forbidden('Invalid username or password');
    const deviceId = typeof body['device_id'] === 'string' ? body['device_id'] : undefined;
    const displayName = typeof body['initial_device_display_name'] === 'string' ? body['initial_device_display_name'] : undefined;
    const login = await userAPI.performDeviceCreation({
      localpart,
      ...(deviceId !== undefined ? { deviceId } : {}),
      ...(displayName !== undefined ? { displayName } : {}),
      ...(c.req.header('user-agent') ? { userAgent: c.req.header('user-agent')! } : {}),
      ...(remoteAddress(c) !== undefined ? { ip: remoteAddress(c)! } : {}),
      refreshable: body['refresh_token'] === true,
    });
    return jsonResponse({ user_id: login.device.userId, ...loginTokensJson(login), device_id: login.device.deviceId, home_server: serverName });
  });

  clientRoute(client, 'post', '/refresh', async (c: Context) => {
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const refreshToken = body['refresh_token'];
    if (typeof refreshToken !== 'string') throw missingParam('refresh_token is required');
    const res = await userAPI.performTokenRefresh({ refreshToken });
    if (!res.refreshed) throw unknownToken('Unknown refresh token');
    return jsonResponse({ access_token: res.accessToken, refresh_token: res.refreshToken, expires_in_ms: res.expiresInMs });
  });

  clientRoute(client, 'get', '/account/whoami', async (c: Context) => {
    const device = await requireDevice(c, userAPI, { allowGuests: true });
    return jsonResponse({ user_id: device.userId, device_id: device.deviceId, is_guest: device.isGuest });
  });

  clientRoute(client, 'post', '/logout', async (c: Context) => {
    const device = await requireDevice(c, userAPI, { allowGuests: true });
    await userAPI.performDeviceDeletion({ userId: device.userId, deviceIds: [device.deviceId] });
    return jsonResponse({});
  });

  clientRoute(client, 'post', '/logout/all', async (c: Context) => {
    const device = await requireDevice(c, userAPI);
    await userAPI.performDeviceDeletion({ userId: device.userId });
    return jsonResponse({});
  });
}
