/**
 * Third-party identifiers (email, phone). This server keeps no 3PIDs, sends no verification
 * messages and talks to no identity server, so these routes validate the request and answer
 * with the error the spec gives for that situation: a client can tell the feature is absent
 * rather than broken. A user's list of 3PIDs is therefore always empty.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, jsonResponse, missingParam, invalidParam, readJsonObject, type JsonBody } from '../../internal/httputil/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import type { PasswordUIA } from '../auth/uia.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;
const CLIENT_SECRET = /^[0-9a-zA-Z.=_-]{1,255}$/;

function requireString(body: JsonBody, field: string): string {
  const v = body[field];
  if (v === undefined || v === null) throw missingParam(`${field} is required`);
  if (typeof v !== 'string') throw badJson(`${field} must be a string`);
  return v;
}

function requireClientSecret(body: JsonBody): void {
  if (!CLIENT_SECRET.test(requireString(body, 'client_secret'))) throw invalidParam('client_secret must be 1-255 characters of [0-9a-zA-Z.=_-]');
}

function requireSendAttempt(body: JsonBody): void {
  const v = body['send_attempt'];
  if (v === undefined || v === null) throw missingParam('send_attempt is required');
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badJson('send_attempt must be an integer');
}

export function addThreePidRoutes(client: Hono, cfg: Config, userAPI: ClientUserAPI, uia: PasswordUIA): void {
  const trusted = new Set(cfg.global.trustedThirdPartyIdServers);
  /** An id_server the client names must be one we trust; we then still cannot use it. */
  const checkIdServer = (body: JsonBody): void => {
    const idServer = body['id_server'];
    if (idServer === undefined || idServer === null) return;
    if (typeof idServer !== 'string') throw badJson('id_server must be a string');
    if (!trusted.has(idServer)) throw new MatrixError(400, 'M_SERVER_NOT_TRUSTED', `${idServer} is not a trusted identity server`);
  };
  const cannotVerify = (medium: string): MatrixError =>
    new MatrixError(400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED', `This server cannot verify ${medium} addresses: it sends no verification messages and uses no identity server`);

  for (const prefix of ['/register', '/account/password', '/account/3pid']) {
    clientRoute(client, 'post', `${prefix}/email/requestToken`, async (c: Context) => {
      const body = await readJsonObject(c, { maxBytes: MAX_BODY });
      requireClientSecret(body);
      if (!requireString(body, 'email').includes('@')) throw invalidParam('email is not an email address');
      requireSendAttempt(body);
      checkIdServer(body);
      throw cannotVerify('email');
    });
    clientRoute(client, 'post', `${prefix}/msisdn/requestToken`, async (c: Context) => {
      const body = await readJsonObject(c, { maxBytes: MAX_BODY });
      requireClientSecret(body);
      requireString(body, 'country');
      requireString(body, 'phone_number');
      requireSendAttempt(body);
      checkIdServer(body);
      throw cannotVerify('phone');
    });
  }

  clientRoute(client, 'get', '/account/3pid', async (c: Context) => {
    await requireDevice(c, userAPI);
    return jsonResponse({ threepids: [] });
  });

  // Adding needs the password first (UIA); then there is no validated session it could name.
  const add = async (c: Context, legacy: boolean): Promise<Response> => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    if (!legacy) await uia.require(body, me.userId, 'POST /account/3pid/add');
    const creds = legacy ? body['three_pid_creds'] ?? body['threePidCreds'] : body;
    if (typeof creds !== 'object' || creds === null || Array.isArray(creds)) throw missingParam('three_pid_creds is required');
    const c2 = creds as JsonBody;
    requireClientSecret(c2);
    requireString(c2, 'sid');
    if (legacy) checkIdServer(c2);
    throw new MatrixError(400, 'M_THREEPID_AUTH_FAILED', 'No validated 3PID session has that sid');
  };
  clientRoute(client, 'post', '/account/3pid/add', (c) => add(c, false));
  clientRoute(client, 'post', '/account/3pid', (c) => add(c, true));

  clientRoute(client, 'post', '/account/3pid/bind', async (c: Context) => {
    await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    requireClientSecret(body);
    requireString(body, 'sid');
    requireString(body, 'id_server');
    requireString(body, 'id_access_token');
    checkIdServer(body);
    throw new MatrixError(400, 'M_SERVER_NOT_TRUSTED', 'This server does not bind 3PIDs with identity servers');
  });

  for (const path of ['/account/3pid/delete', '/account/3pid/unbind']) {
    clientRoute(client, 'post', path, async (c: Context) => {
      await requireDevice(c, userAPI);
      const body = await readJsonObject(c, { maxBytes: MAX_BODY });
      requireString(body, 'medium');
      requireString(body, 'address');
      if (body['id_server'] !== undefined && typeof body['id_server'] !== 'string') throw badJson('id_server must be a string');
      // Nothing is stored, so nothing to remove; no identity server was told, so none to tell.
      return jsonResponse({ id_server_unbind_result: 'no-support' });
    });
  }
}
