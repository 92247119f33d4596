/**
 * User-interactive auth for sensitive calls (deleting devices, later password changes and
 * deactivation): one m.login.password stage, for the account that makes the request.
 */
import { randomBytes } from 'node:crypto';
import { MatrixError, badJson, forbidden, type JsonBody } from '../../internal/httputil/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';

const SESSION_TTL_MS = 10 * 60_000;
const flows = [{ stages: ['m.login.password'] }];

export class PasswordUIA {
  /** Session ID -> when it was issued and the operation it authorises (method and path). */
  private readonly sessions = new Map<string, { ts: number; operation: string }>();

  constructor(
    private readonly userAPI: ClientUserAPI,
    private readonly serverName: string,
  ) {}

  private challenge(operation: string, session: string | undefined, error?: { errcode: string; message: string }): MatrixError {
    const now = Date.now();
    for (const [s, v] of this.sessions) if (now - v.ts > SESSION_TTL_MS) this.sessions.delete(s);
    const id = session && this.sessions.has(session) ? session : randomBytes(18).toString('base64url');
    this.sessions.set(id, { ts: now, operation });
    return new MatrixError(401, error?.errcode ?? 'M_UNAUTHORIZED', error?.message ?? 'Authentication required', { flows, params: {}, completed: [], session: id });
  }

  /**
   * Resolves when `body.auth` proves the password of `userId` for `operation` (e.g.
   * "DELETE /devices/X"); throws the UIA 401, or 403 when the session belongs to another
   * operation or the password to another user.
   */
  async require(body: JsonBody, userId: string, operation: string): Promise<void> {
    const auth = body['auth'];
    if (auth === undefined || auth === null) throw this.challenge(operation, undefined);
    if (typeof auth !== 'object' || Array.isArray(auth)) throw badJson('auth must be an object');
    const a = auth as JsonBody;
    const session = typeof a['session'] === 'string' ? a['session'] : undefined;
    const known = session === undefined ? undefined : this.sessions.get(session);
    if (known && known.operation !== operation) throw forbidden('This authentication session was started for another request');
    if (a['type'] !== 'm.login.password') throw this.challenge(operation, session, { errcode: 'M_UNRECOGNIZED', message: `unsupported auth type ${String(a['type'])}` });
    const identifier = a['identifier'];
    const named =
      typeof identifier === 'object' && identifier !== null && !Array.isArray(identifier) && typeof (identifier as JsonBody)['user'] === 'string'
        ? ((identifier as JsonBody)['user'] as string)
        : typeof a['user'] === 'string'
          ? a['user']
          : userId;
    const namedUserId = named.startsWith('@') ? named.toLowerCase() : `@${named.toLowerCase()}:${this.serverName}`;
    if (namedUserId !== userId.toLowerCase()) throw forbidden('The authenticated user is not the one making the request');
    const password = a['password'];
    if (typeof password !== 'string') throw this.challenge(operation, session, { errcode: 'M_MISSING_PARAM', message: 'password is required' });
    const localpart = /^@([^:]+):/.exec(userId)?.[1] ?? '';
    const { ok } = await this.userAPI.performPasswordCheck({ localpart, password });
    if (!ok) throw this.challenge(operation, session, { errcode: 'M_FORBIDDEN', message: 'Invalid password' });
    if (session) this.sessions.delete(session);
  }
}
