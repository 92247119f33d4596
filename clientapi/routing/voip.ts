/**
 * GET /voip/turnServer (Client-Server API, "Voice over IP"): the TURN servers from the config
 * (`client_api.turn`) and credentials for them. With a shared secret the credentials are the
 * time-limited kind TURN servers such as coturn check themselves (`use-auth-secret`): the
 * username is `<expiry in seconds>:<user ID>` and the password base64(HMAC-SHA1(secret,
 * username)); otherwise the static username and password. Without URIs or credentials the
 * answer is an empty object, which clients read as "no TURN server".
 */
import { createHmac } from 'node:crypto';
import type { Hono } from 'hono';
import { jsonResponse } from '../../internal/httputil/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

export interface TurnCredentials {
  username: string;
  password: string;
  uris: string[];
  ttl: number;
}

/** Credentials for `userId` at `nowMs`, or undefined when the config offers no TURN server. */
export function turnCredentials(turn: Config['clientApi']['turn'], userId: string, nowMs: number): TurnCredentials | undefined {
  if (turn.turnUris.length === 0) return undefined;
  const ttl = Math.max(0, Math.floor(turn.turnUserLifetimeMs / 1000));
  if (turn.turnSharedSecret !== '') {
    const username = `${Math.floor(nowMs / 1000) + ttl}:${userId}`;
    const password = createHmac('sha1', turn.turnSharedSecret).update(username).digest('base64');
    return { username, password, uris: [...turn.turnUris], ttl };
  }
  if (turn.turnUsername !== '' && turn.turnPassword !== '') {
    return { username: turn.turnUsername, password: turn.turnPassword, uris: [...turn.turnUris], ttl };
  }
  return undefined;
}

export function addVoipRoute(client: Hono, cfg: Config, userAPI: ClientUserAPI): void {
  clientRoute(client, 'get', '/voip/turnServer', async (c) => {
    // The config has no switch for guests (Synapse's turn_allow_guests defaults to true).
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    return jsonResponse(turnCredentials(cfg.clientApi.turn, me.userId, Date.now()) ?? {});
  });
}
