/**
 * Third-party identifiers (email, phone). This server sends no verification messages, so it
 * cannot add a 3PID to an account itself: the requestToken and add routes validate the request
 * and answer with the error the spec gives for that situation, and a user's list of 3PIDs
 * (GET /account/3pid, which the spec keeps apart from identity server bindings) is empty.
 *
 * What it does do is bind and unbind 3PIDs that the client validated at an identity server
 * (threepidbind.ts): /account/3pid/bind, /unbind and /delete. The /account/3pid routes are also
 * served under /unstable, where clients (and Sytest) still call bind and unbind.
 */
import type { Context, Handler, Hono } from 'hono';
import { MatrixError, badJson, jsonResponse, missingParam, invalidParam, readJsonObject, type JsonBody } from '../../internal/httputil/index.js';
import { isIdentityServerName } from '../../internal/identityserver/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import type { PasswordUIA } from '../auth/uia.js';
import { clientRoute } from './paths.js';
import type { ThreePidBinder } from './threepidbind.js';

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

/** An id_server the request names: absent, or an identity server's name (host with an optional port). */
export function optionalIdServer(body: JsonBody): string | undefined {
  const v = body['id_server'];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badJson('id_server must be a string');
  if (!isIdentityServerName(v)) throw invalidParam('id_server must be a host name with an optional port');
  return v;
}

function requireNonEmpty(body: JsonBody, field: string): string {
  const v = requireString(body, field);
  if (v === '') throw invalidParam(`${field} may not be empty`);
  return v;
}

export function addThreePidRoutes(client: Hono, cfg: Config, userAPI: ClientUserAPI, uia: PasswordUIA, binder: ThreePidBinder): void {
  /** An /account/3pid route: r0 and v3, and unstable, where bind and unbind were first served. */
  const accountRoute = (method: 'get' | 'post', path: string, handler: Handler): void => {
    clientRoute(client, method, path, handler);
    client[method](`/unstable${path}`, handler);
  };
  const trusted = new Set(cfg.global.trustedThirdPartyIdServers);
  /** An id_server the client names must be one we trust; we then still cannot use it. */
  const checkIdServer = (body: JsonBody): void => {
    const idServer = body['id_server'];
    if (idServer === undefined || idServer === null) return;
    if (typeof idServer !== 'string') throw badJson('id_server must be a string');
    if (!trusted.has(idServer)) throw new MatrixError(400, 'M_SERVER_NOT_TRUSTED', `${idServer} is not a trusted identity server`);
  };
  const cannotVerify = (medium: string): MatrixError =>
    new MatrixError(400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED', `This server cannot verify ${medium} addresses: it sends no verification messages`);

  for (const prefix of ['/register', '/account/password', '/account/3pid']) {
    const route = prefix === '/account/3pid' ? accountRoute : (method: 'post', path: string, handler: Handler) => clientRoute(client, method, path, handler);
    route('post', `${prefix}/email/requestToken`, async (c: Context) => {
      const body = await readJsonObject(c, { maxBytes: MAX_BODY });
      requireClientSecret(body);
      if (!requireString(body, 'email').includes('@')) throw invalidParam('email is not an email address');
      requireSendAttempt(body);
      checkIdServer(body);
      throw cannotVerify('email');
    });
    route('post', `${prefix}/msisdn/requestToken`, async (c: Context) => {
      const body = await readJsonObject(c, { maxBytes: MAX_BODY });
      requireClientSecret(body);
      requireString(body, 'country');
      requireString(body, 'phone_number');
      requireSendAttempt(body);
      checkIdServer(body);
      throw cannotVerify('phone');
    });
  }

  accountRoute('get', '/account/3pid', async (c: Context) => {
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
  accountRoute('post', '/account/3pid/add', (c) => add(c, false));
  accountRoute('post', '/account/3pid', (c) => add(c, true));

  accountRoute('post', '/account/3pid/bind', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    requireClientSecret(body);
    const sid = requireNonEmpty(body, 'sid');
    requireString(body, 'id_server');
    const idServer = optionalIdServer(body)!;
    const idAccessToken = requireNonEmpty(body, 'id_access_token');
    await binder.bind(me.userId, { idServer, idAccessToken, sid, clientSecret: body['client_secret'] as string });
    return jsonResponse({});
  });

  // Both unbind at the identity server; delete also removes the 3PID from the account, where
  // there is none to remove (see above).
  for (const path of ['/account/3pid/delete', '/account/3pid/unbind']) {
    accountRoute('post', path, async (c: Context) => {
      const me = await requireDevice(c, userAPI);
      const body = await readJsonObject(c, { maxBytes: MAX_BODY });
      const medium = requireNonEmpty(body, 'medium');
      const address = requireNonEmpty(body, 'address');
      const idServer = optionalIdServer(body);
      return jsonResponse({ id_server_unbind_result: await binder.unbind(me.userId, medium, address, idServer) });
    });
  }
}
