/**
 * Registration: POST /register with user-interactive auth (m.login.dummy when open
 * registration is enabled), GET /register/available, and Synapse's shared-secret
 * registration (/_synapse/admin/v1/register, HMAC-SHA1 over a one-time nonce).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, Hono } from 'hono';
import {
  MatrixError,
  badJson,
  forbidden,
  invalidParam,
  jsonResponse,
  missingParam,
  readJsonObject,
  type JsonBody,
} from '../../internal/httputil/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI, PerformAccountCreationResponse } from '../../userapi/api/index.js';
import { loginTokensJson } from './login.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;
const NONCE_TTL_MS = 60_000;
const SESSION_TTL_MS = 10 * 60_000;

function accountError(r: Extract<PerformAccountCreationResponse, { created: false }>): MatrixError {
  if (r.error === 'user_in_use') return new MatrixError(400, 'M_USER_IN_USE', r.message);
  if (r.error === 'invalid_username') return new MatrixError(400, 'M_INVALID_USERNAME', r.message);
  return forbidden(r.message);
}

function optionalString(body: JsonBody, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badJson(`${key} must be a string`);
  return v;
}

export class RegistrationRoutes {
  /**
   * UIA sessions handed out by this process (Dendrite keeps them in memory too): the
   * parameters of the request that opened them, and the user once registered, so that a
   * repeated completion is idempotent.
   */
  private readonly sessions = new Map<string, { ts: number; params: JsonBody; userId?: string; localpart?: string }>();
  private readonly nonces = new Map<string, number>();

  constructor(
    private readonly cfg: Config,
    private readonly userAPI: ClientUserAPI,
  ) {}

  private get openRegistration(): boolean {
    return !this.cfg.clientApi.registrationDisabled && this.cfg.clientApi.openRegistrationWithoutVerificationEnabled;
  }

  add(client: Hono, synapseAdmin: Hono): void {
    clientRoute(client, 'post', '/register', (c) => this.register(c));
    clientRoute(client, 'get', '/register/available', (c) => this.available(c));
    synapseAdmin.get('/admin/v1/register', () => this.nonce());
    synapseAdmin.post('/admin/v1/register', (c) => this.sharedSecretRegister(c));
  }

  private uiaChallenge(params: JsonBody): Response {
    const now = Date.now();
    for (const [s, v] of this.sessions) if (now - v.ts > SESSION_TTL_MS) this.sessions.delete(s);
    const session = randomBytes(18).toString('base64url');
    this.sessions.set(session, { ts: now, params });
    return jsonResponse({ flows: [{ stages: ['m.login.dummy'] }], params: {}, session }, 401);
  }

  private async register(c: Context): Promise<Response> {
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const kind = c.req.query('kind') ?? 'user';
    if (kind === 'guest') throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is disabled');
    if (kind !== 'user') throw invalidParam(`unknown kind ${kind}`);
    if (!this.openRegistration) throw forbidden('Registration is disabled');

    const { auth, ...given } = body;
    if (auth === undefined || auth === null) {
      this.checkParams(given);
      return this.uiaChallenge(given);
    }
    if (typeof auth !== 'object' || Array.isArray(auth)) throw badJson('auth must be an object');
    const stage = (auth as JsonBody)['type'];
    if (stage !== 'm.login.dummy') {
      throw new MatrixError(401, 'M_UNRECOGNIZED', `unsupported auth type ${String(stage)}`, { flows: [{ stages: ['m.login.dummy'] }], params: {} });
    }
    const sessionId = (auth as JsonBody)['session'];
    const session = typeof sessionId === 'string' ? this.sessions.get(sessionId) : undefined;
    // The parameters of the request that opened the session count, unless repeated here.
    const params: JsonBody = { ...session?.params, ...given };
    this.checkParams(params);

    let userId = session?.userId;
    let localpart = session?.localpart;
    if (userId === undefined || localpart === undefined) {
      const username = optionalString(params, 'username');
      const password = optionalString(params, 'password');
      localpart = username !== undefined ? username.toLowerCase() : `${Date.now()}${randomBytes(3).readUIntBE(0, 3)}`;
      const created = await this.userAPI.performAccountCreation({ localpart, ...(password !== undefined ? { password } : {}) });
      if (!created.created) throw accountError(created);
      userId = created.userId;
      if (session) Object.assign(session, { userId, localpart });
    }
    return this.loginAfterRegistration(params, userId, localpart);
  }

  /** Type checks of the registration parameters, before anything is created. */
  private checkParams(params: JsonBody): void {
    for (const key of ['username', 'password', 'device_id', 'initial_device_display_name']) optionalString(params, key);
    const password = params['password'];
    if (typeof password === 'string' && password.length > 512) throw invalidParam('password is too long');
    const inhibit = params['inhibit_login'];
    if (inhibit !== undefined && typeof inhibit !== 'boolean') throw badJson('inhibit_login must be true or false');
  }

  private async loginAfterRegistration(body: JsonBody, userId: string, localpart: string): Promise<Response> {
    if (body['inhibit_login'] === true) return jsonResponse({ user_id: userId });
    const deviceId = optionalString(body, 'device_id');
    const displayName = optionalString(body, 'initial_device_display_name');
    const login = await this.userAPI.performDeviceCreation({
      localpart,
      ...(deviceId !== undefined ? { deviceId } : {}),
      ...(displayName !== undefined ? { displayName } : {}),
      refreshable: body['refresh_token'] === true,
    });
    return jsonResponse({ user_id: userId, ...loginTokensJson(login), device_id: login.device.deviceId, home_server: this.cfg.global.serverName });
  }

  private async available(c: Context): Promise<Response> {
    const username = c.req.query('username');
    if (!username) throw missingParam('username is required');
    const localpart = username.toLowerCase();
    const { available } = await this.userAPI.queryAccountAvailability({ localpart });
    if (!available) throw new MatrixError(400, 'M_USER_IN_USE', 'Desired user ID is already taken.');
    return jsonResponse({ available: true });
  }

  private nonce(): Response {
    if (!this.cfg.clientApi.registrationSharedSecret) throw forbidden('Shared secret registration is not enabled');
    const now = Date.now();
    for (const [n, t] of this.nonces) if (now - t > NONCE_TTL_MS) this.nonces.delete(n);
    const nonce = randomBytes(16).toString('hex');
    this.nonces.set(nonce, now);
    return jsonResponse({ nonce });
  }

  private async sharedSecretRegister(c: Context): Promise<Response> {
    const secret = this.cfg.clientApi.registrationSharedSecret;
    if (!secret) throw forbidden('Shared secret registration is not enabled');
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const nonce = optionalString(body, 'nonce');
    const username = optionalString(body, 'username');
    const password = optionalString(body, 'password');
    const mac = optionalString(body, 'mac');
    if (!nonce || !username || password === undefined || !mac) throw missingParam('nonce, username, password and mac are required');
    const issued = this.nonces.get(nonce);
    if (issued === undefined || Date.now() - issued > NONCE_TTL_MS) throw forbidden('unrecognised nonce');
    this.nonces.delete(nonce);
    const admin = body['admin'] === true;
    const expected = createHmac('sha1', secret).update([nonce, username, password, admin ? 'admin' : 'notadmin'].join('\0')).digest('hex');
    const given = Buffer.from(mac.toLowerCase());
    if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) throw forbidden('HMAC incorrect');

    const localpart = username.toLowerCase();
    const created = await this.userAPI.performAccountCreation({ localpart, password, isAdmin: admin });
    if (!created.created) throw accountError(created);
    const login = await this.userAPI.performDeviceCreation({ localpart });
    return jsonResponse({ user_id: created.userId, access_token: login.accessToken, device_id: login.device.deviceId, home_server: this.cfg.global.serverName });
  }
}
