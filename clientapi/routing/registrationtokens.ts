/**
 * Registration tokens: the public validity check (GET /v1/register/m.login.registration_token/validity)
 * and Dendrite's admin API to manage them (/_dendrite/admin/registrationTokens), for admins only.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, invalidParam, jsonResponse, missingParam, notFound, readJsonObject, type JsonBody } from '../../internal/httputil/index.js';
import { REGISTRATION_TOKEN_PATTERN, type ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';

const MAX_BODY = 16 * 1024;

/** uses_allowed / expiry_time: a non-negative integer, null (unlimited), or absent. */
function optionalLimit(body: JsonBody, field: string): number | null | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalidParam(`${field} must be a non-negative integer or null`);
  return v;
}

function checkExpiry(expiry: number | null | undefined): void {
  if (typeof expiry === 'number' && expiry <= Date.now()) throw invalidParam('expiry_time must be in the future');
}

export function addRegistrationTokenValidityRoute(client: Hono, userAPI: ClientUserAPI): void {
  client.get('/v1/register/m.login.registration_token/validity', async (c: Context) => {
    const token = c.req.query('token');
    if (token === undefined) throw missingParam('token is required');
    if (!REGISTRATION_TOKEN_PATTERN.test(token)) throw invalidParam('token must be 1-64 characters of [A-Za-z0-9._~-]');
    const { ok } = await userAPI.queryRegistrationTokenValidity({ token });
    return jsonResponse({ valid: ok });
  });
}

export function addRegistrationTokenAdminRoutes(admin: Hono, userAPI: ClientUserAPI): void {
  const requireAdmin = async (c: Context): Promise<void> => {
    const me = await requireDevice(c, userAPI);
    if (!me.isAdmin) throw forbidden('This API is for server admins');
  };
  const tokenParam = (c: Context): string => {
    const token = c.req.param('token') ?? '';
    if (!REGISTRATION_TOKEN_PATTERN.test(token)) throw invalidParam('token must be 1-64 characters of [A-Za-z0-9._~-]');
    return token;
  };

  admin.post('/admin/registrationTokens/new', async (c: Context) => {
    await requireAdmin(c);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const token = body['token'];
    if (token !== undefined && typeof token !== 'string') throw badJson('token must be a string');
    const length = body['length'];
    if (length !== undefined && (typeof length !== 'number' || !Number.isInteger(length) || length < 1 || length > 64)) throw invalidParam('length must be an integer from 1 to 64');
    if (token !== undefined && length !== undefined) throw invalidParam('give token or length, not both');
    const usesAllowed = optionalLimit(body, 'uses_allowed') ?? null;
    const expiryTime = optionalLimit(body, 'expiry_time') ?? null;
    checkExpiry(expiryTime);
    const res = await userAPI.performRegistrationTokenCreation({
      ...(token !== undefined ? { token } : {}),
      ...(length !== undefined ? { length: length as number } : {}),
      usesAllowed,
      expiryTime,
    });
    if ('error' in res) throw res.error === 'exists' ? new MatrixError(400, 'M_INVALID_PARAM', res.message) : invalidParam(res.message);
    return jsonResponse(res.created);
  });

  admin.get('/admin/registrationTokens', async (c: Context) => {
    await requireAdmin(c);
    const valid = c.req.query('valid');
    if (valid !== undefined && valid !== 'true' && valid !== 'false') throw invalidParam('valid must be true or false');
    const { tokens } = await userAPI.queryRegistrationTokens(valid === undefined ? {} : { valid: valid === 'true' });
    return jsonResponse({ registration_tokens: tokens });
  });

  admin.get('/admin/registrationTokens/:token', async (c: Context) => {
    await requireAdmin(c);
    const { token } = await userAPI.queryRegistrationToken({ token: tokenParam(c) });
    if (!token) throw notFound('No such registration token');
    return jsonResponse(token);
  });

  admin.post('/admin/registrationTokens/:token', async (c: Context) => {
    await requireAdmin(c);
    const name = tokenParam(c);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const usesAllowed = optionalLimit(body, 'uses_allowed');
    const expiryTime = optionalLimit(body, 'expiry_time');
    checkExpiry(expiryTime);
    const { token } = await userAPI.performRegistrationTokenUpdate({
      token: name,
      ...(usesAllowed !== undefined ? { usesAllowed } : {}),
      ...(expiryTime !== undefined ? { expiryTime } : {}),
    });
    if (!token) throw notFound('No such registration token');
    return jsonResponse(token);
  });

  admin.delete('/admin/registrationTokens/:token', async (c: Context) => {
    await requireAdmin(c);
    const { ok } = await userAPI.performRegistrationTokenDeletion({ token: tokenParam(c) });
    if (!ok) throw notFound('No such registration token');
    return jsonResponse({});
  });
}
