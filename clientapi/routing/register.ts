/**
 * Registration: POST /register with user-interactive auth (m.login.dummy when open
 * registration is enabled), GET /register/available, and Synapse's shared-secret
 * registration (/_synapse/admin/v1/register, HMAC-SHA1 over a one-time nonce).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
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
  remoteAddress,
  type JsonBody,
} from '../../internal/httputil/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI, PerformAccountCreationResponse } from '../../userapi/api/index.js';
import { loginTokensJson } from './login.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;
const NONCE_TTL_MS = 60_000;
const SESSION_TTL_MS = 10 * 60_000;
const CAPTCHA_TIMEOUT_MS = 10_000;

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

interface RegistrationSession {
  ts: number;
  params: JsonBody;
  /** UIA stages passed so far. */
  completed: string[];
  userId?: string;
  localpart?: string;
}

/** Localparts of users who chose none (guests, or registration without a username): digits, as Synapse's are. */
function generatedLocalpart(): string {
  return `${Date.now()}${randomBytes(3).readUIntBE(0, 3)}`;
}

export class RegistrationRoutes {
  /**
   * UIA sessions handed out by this process (Dendrite keeps them in memory too): the
   * parameters of the request that opened them, and the user once registered, so that a
   * repeated completion is idempotent.
   */
  private readonly sessions = new Map<string, RegistrationSession>();
  private readonly nonces = new Map<string, number>();

  constructor(
    private readonly cfg: Config,
    private readonly userAPI: ClientUserAPI,
  ) {}

  add(client: Hono, synapseAdmin: Hono): void {
    clientRoute(client, 'post', '/register', (c) => this.register(c));
    clientRoute(client, 'get', '/register/available', (c) => this.available(c));
    synapseAdmin.get('/admin/v1/register', () => this.nonce());
    synapseAdmin.post('/admin/v1/register', (c) => this.sharedSecretRegister(c));
  }

  /** The UIA stages a registration must pass, by configuration (one flow). */
  private get stages(): string[] {
    const ca = this.cfg.clientApi;
    const stages: string[] = [];
    if (ca.enableRegistrationCaptcha) stages.push('m.login.recaptcha');
    if (ca.registrationRequiresToken) stages.push('m.login.registration_token');
    if (stages.length === 0 && ca.openRegistrationWithoutVerificationEnabled) stages.push('m.login.dummy');
    return stages;
  }

  /** The 401 that tells the client what is left to do in its session. */
  private challenge(sessionId: string, session: RegistrationSession, error?: { errcode: string; message: string }): MatrixError {
    const ca = this.cfg.clientApi;
    return new MatrixError(401, error?.errcode ?? 'M_UNAUTHORIZED', error?.message ?? 'Authentication required', {
      flows: [{ stages: this.stages }],
      params: ca.enableRegistrationCaptcha ? { 'm.login.recaptcha': { public_key: ca.recaptchaPublicKey } } : {},
      session: sessionId,
      completed: session.completed,
    });
  }

  private newSession(params: JsonBody): [string, RegistrationSession] {
    const now = Date.now();
    for (const [s, v] of this.sessions) if (now - v.ts > SESSION_TTL_MS) this.sessions.delete(s);
    const id = randomBytes(18).toString('base64url');
    const session: RegistrationSession = { ts: now, params, completed: [] };
    this.sessions.set(id, session);
    return [id, session];
  }

  private async register(c: Context): Promise<Response> {
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const kind = c.req.query('kind') ?? 'user';
    if (kind === 'guest') return this.registerGuest(body);
    if (kind !== 'user') throw invalidParam(`unknown kind ${kind}`);
    if (this.cfg.clientApi.registrationDisabled || this.stages.length === 0) throw forbidden('Registration is disabled');

    const { auth, ...given } = body;
    if (auth === undefined || auth === null) {
      this.checkParams(given);
      const [id, session] = this.newSession(given);
      throw this.challenge(id, session);
    }
    if (typeof auth !== 'object' || Array.isArray(auth)) throw badJson('auth must be an object');
    const a = auth as JsonBody;
    const sessionId = typeof a['session'] === 'string' ? a['session'] : undefined;
    let session = sessionId === undefined ? undefined : this.sessions.get(sessionId);
    let id = sessionId;
    // A client may complete a single-stage flow without first asking for a session.
    if (!session || id === undefined) [id, session] = this.newSession({});
    // The parameters of the request that opened the session count, unless repeated here.
    const params: JsonBody = { ...session.params, ...given };
    this.checkParams(params);
    session.params = params;

    if (session.userId === undefined || session.localpart === undefined) {
      const stage = a['type'];
      // A configured captcha may be solved even when the flow does not ask for it (Synapse allows it; Sytest relies on it).
      const captchaConfigured = stage === 'm.login.recaptcha' && this.cfg.clientApi.recaptchaPrivateKey !== '';
      if (typeof stage !== 'string' || (!this.stages.includes(stage) && !captchaConfigured)) {
        throw this.challenge(id, session, { errcode: 'M_UNRECOGNIZED', message: `unsupported auth type ${String(stage)}` });
      }
      if (!session.completed.includes(stage)) {
        const failure = await this.completeStage(stage, a, c);
        if (failure) throw this.challenge(id, session, failure);
        session.completed.push(stage);
      }
      if (this.stages.some((s) => !session.completed.includes(s))) throw this.challenge(id, session);

      const username = optionalString(params, 'username');
      const password = optionalString(params, 'password');
      const guestToken = optionalString(params, 'guest_access_token');
      if (guestToken !== undefined) {
        Object.assign(session, await this.upgradeGuest(guestToken, username, password));
      } else {
        const localpart = username !== undefined ? username.toLowerCase() : generatedLocalpart();
        const created = await this.userAPI.performAccountCreation({ localpart, ...(password !== undefined ? { password } : {}) });
        if (!created.created) throw accountError(created);
        Object.assign(session, { userId: created.userId, localpart });
      }
    }
    return this.loginAfterRegistration(c, params, session.userId!, session.localpart!);
  }

  /**
   * A guest registering for real (`guest_access_token`): the guest's own account becomes a full
   * one, keeping its user ID, rooms and data. The token must be a guest's, and a username, when
   * given, must be that guest's.
   */
  private async upgradeGuest(token: string, username: string | undefined, password: string | undefined): Promise<{ userId: string; localpart: string }> {
    const { device } = await this.userAPI.queryAccessToken({ accessToken: token });
    if (!device || !device.isGuest) throw forbidden('guest_access_token is not a guest\'s access token');
    const localpart = device.userId.slice(1, device.userId.indexOf(':'));
    if (username !== undefined && username.toLowerCase() !== localpart) throw forbidden('A guest can only upgrade their own account');
    const { upgraded } = await this.userAPI.performGuestUpgrade({ localpart, ...(password !== undefined ? { password } : {}) });
    if (!upgraded) throw forbidden('The guest account cannot be upgraded');
    return { userId: device.userId, localpart };
  }

  /** Checks one UIA stage; returns why it failed, or undefined when it passed. */
  private async completeStage(stage: string, auth: JsonBody, c: Context): Promise<{ errcode: string; message: string } | undefined> {
    switch (stage) {
      case 'm.login.dummy':
        return undefined;
      case 'm.login.registration_token': {
        const token = auth['token'];
        if (typeof token !== 'string') return { errcode: 'M_MISSING_PARAM', message: 'token is required' };
        const { ok } = await this.userAPI.performRegistrationTokenUse({ token });
        return ok ? undefined : { errcode: 'M_FORBIDDEN', message: 'Invalid registration token' };
      }
      case 'm.login.recaptcha': {
        const response = auth['response'];
        if (typeof response !== 'string') return { errcode: 'M_MISSING_PARAM', message: 'response is required' };
        return (await this.verifyCaptcha(response, remoteAddress(c))) ? undefined : { errcode: 'M_UNAUTHORIZED', message: 'Captcha verification failed' };
      }
      default:
        return { errcode: 'M_UNRECOGNIZED', message: `unsupported auth type ${stage}` };
    }
  }

  /** Asks the captcha provider's siteverify API whether the client solved the captcha. */
  private async verifyCaptcha(response: string, ip: string | undefined): Promise<boolean> {
    const ca = this.cfg.clientApi;
    // A configured bypass secret lets test harnesses register without a captcha service.
    if (ca.recaptchaBypassSecret && response === ca.recaptchaBypassSecret) return true;
    const form = new URLSearchParams({ secret: ca.recaptchaPrivateKey, response, ...(ip ? { remoteip: ip } : {}) });
    try {
      // Certificates are checked as for other servers (federation_api.disable_tls_validation: test set-ups only).
      const res = await postForm(ca.recaptchaSiteverifyApi, form.toString(), !this.cfg.federationApi.disableTlsValidation, CAPTCHA_TIMEOUT_MS);
      if (res.status < 200 || res.status >= 300) return false;
      const verdict = JSON.parse(res.body) as { success?: unknown };
      return verdict.success === true;
    } catch {
      return false;
    }
  }

  private async registerGuest(body: JsonBody): Promise<Response> {
    if (this.cfg.clientApi.guestsDisabled) throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is disabled');
    const displayName = optionalString(body, 'initial_device_display_name');
    const localpart = generatedLocalpart();
    const created = await this.userAPI.performAccountCreation({ localpart, isGuest: true });
    if (!created.created) throw accountError(created);
    const login = await this.userAPI.performDeviceCreation({ localpart, ...(displayName !== undefined ? { displayName } : {}) });
    return jsonResponse({ user_id: created.userId, access_token: login.accessToken, device_id: login.device.deviceId, home_server: this.cfg.global.serverName });
  }

  /** Type checks of the registration parameters, before anything is created. */
  private checkParams(params: JsonBody): void {
    for (const key of ['username', 'password', 'device_id', 'initial_device_display_name', 'guest_access_token']) optionalString(params, key);
    const password = params['password'];
    if (typeof password === 'string' && password.length > 512) throw invalidParam('password is too long');
    const inhibit = params['inhibit_login'];
    if (inhibit !== undefined && typeof inhibit !== 'boolean') throw badJson('inhibit_login must be true or false');
  }

  private async loginAfterRegistration(c: Context, body: JsonBody, userId: string, localpart: string): Promise<Response> {
    if (body['inhibit_login'] === true) return jsonResponse({ user_id: userId });
    const deviceId = optionalString(body, 'device_id');
    const displayName = optionalString(body, 'initial_device_display_name');
    const login = await this.userAPI.performDeviceCreation({
      localpart,
      ...(deviceId !== undefined ? { deviceId } : {}),
      ...(displayName !== undefined ? { displayName } : {}),
      refreshable: body['refresh_token'] === true,
      ...(remoteAddress(c) !== undefined ? { ip: remoteAddress(c)! } : {}),
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

/** POSTs a form (captcha siteverify) over HTTP(S); the answer's status and body, at most 64 KiB of it. */
function postForm(url: string, body: string, rejectUnauthorized: boolean, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      target,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(Buffer.byteLength(body)) },
        timeout: timeoutMs,
        ...(target.protocol === 'https:' ? { rejectUnauthorized } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.length > 65_536) req.destroy(new Error('siteverify answer too large'));
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('siteverify timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
