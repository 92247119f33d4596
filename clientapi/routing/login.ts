/**
 * GET/POST /login (m.login.password with every identifier form for users), and the
 * session endpoints: /account/whoami, /logout, /logout/all.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, jsonResponse, missingParam, readJsonObject, remoteAddress, unknownToken, unrecognized, type JsonBody } from '../../internal/httputil/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI, PerformDeviceCreationResponse } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import type { PasswordUIA } from '../auth/uia.js';
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

export function addLoginRoutes(client: Hono, cfg: Config, userAPI: ClientUserAPI, uia: PasswordUIA): void {
  const serverName = cfg.global.serverName;

  const existingSession = cfg.clientApi.loginViaExistingSession;
  clientRoute(client, 'get', '/login', () =>
    jsonResponse({
      flows: [
        ...(cfg.clientApi.passwordAuthenticationDisabled ? [] : [{ type: 'm.login.password' }]),
        ...(existingSession.enabled ? [{ type: 'm.login.token', get_login_token: true }] : []),
      ],
    }),
  );

  /** The account a password login names, once the password is checked. */
  const passwordLogin = async (body: JsonBody): Promise<string> => {
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
    return localpart;
  };

  /** The account a single-use login token (m.login.token) was issued for; the token is used up. */
  const tokenLogin = async (body: JsonBody): Promise<string> => {
    const token = body['token'];
    if (typeof token !== 'string') throw badJson('token must be a string');
    const { localpart } = await userAPI.performLoginTokenUse({ token });
    if (localpart === undefined) throw forbidden('Invalid or expired login token');
    return localpart;
  };

  clientRoute(client, 'post', '/login', async (c: Context) => {
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    let localpart: string;
    if (body['type'] === 'm.login.password' && !cfg.clientApi.passwordAuthenticationDisabled) localpart = await passwordLogin(body);
    else if (body['type'] === 'm.login.token') localpart = await tokenLogin(body);
    else throw new MatrixError(400, 'M_UNKNOWN', `login type ${String(body['type'])} is not supported`);
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

  client.post('/v1/login/get_token', async (c: Context) => {
    if (!existingSession.enabled) throw unrecognized('Login via an existing session is not enabled');
    const device = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    if (existingSession.requireUiAuth) await uia.require(body, device.userId, 'POST /login/get_token');
    const { token } = await userAPI.performLoginTokenCreation({ userId: device.userId, lifetimeMs: existingSession.tokenTimeoutMs });
    return jsonResponse({ login_token: token, expires_in_ms: existingSession.tokenTimeoutMs });
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
