/**
 * Third-party invites over federation:
 *
 * - PUT /v1/3pid/onbind: an identity server tells us that a 3PID is now bound to one of our
 *   users, with the invites it was keeping for it, each signed `{mxid, token}`. Each becomes an
 *   invite of the user (see perform/thirdpartyinvite.ts). The call is not signed by a server
 *   (identity servers have no X-Matrix keys); what makes an invite count is the identity
 *   server's signature, which the room's auth rules check. One invite failing does not stop
 *   the others; the answer is then the first failure's error (as Synapse answers: the
 *   identity server learns that an invite was not redeemed), else 200. Invites too malformed to
 *   try are skipped. Sytest's identity server calls it with POST, so both are served.
 * - PUT /v1/exchange_third_party_invite/{roomId}: the invitee's server asks us, a server of the
 *   room, to build that invite, since it cannot.
 */
import type { Context, Hono } from 'hono';
import type { Logger } from 'pino';
import { MatrixError, badJson, forbidden, jsonResponse, notFound, readJsonObject } from '../../internal/httputil/index.js';
import { domainOf, isValidUserId, type JsonObject } from '../../internal/matrix/index.js';
import type { PerformThirdPartyInviteResponse } from '../api/index.js';
import type { ThirdPartyInviteExchanger } from '../internal/perform/thirdpartyinvite.js';
import type { FederationAuth } from './fedauth.js';

const MAX_ONBIND_BODY = 1024 * 1024;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function failureError(res: Extract<PerformThirdPartyInviteResponse, { error: string }>): MatrixError {
  if (res.error === 'forbidden') return forbidden(res.message);
  if (res.error === 'not_found') return notFound(res.message);
  if (res.error === 'unreachable') return new MatrixError(502, 'M_UNKNOWN', res.message);
  return new MatrixError(400, 'M_UNKNOWN', res.message);
}

export function addThirdPartyInviteRoutes(fed: Hono, auth: FederationAuth, d: { serverName: string; exchanger: Pick<ThirdPartyInviteExchanger, 'perform'>; log: Logger }): void {
  const onbind = async (c: Context): Promise<Response> => {
    const body = await readJsonObject(c, { maxBytes: MAX_ONBIND_BODY });
    const invites = body['invites'];
    if (invites === undefined || invites === null) return jsonResponse({});
    if (!Array.isArray(invites)) throw badJson('invites must be a list');
    let failure: MatrixError | undefined;
    for (const inv of invites) {
      if (!isObject(inv) || !isObject(inv['signed'])) {
        d.log.info('onbind: skipping an invite without a signed object');
        continue;
      }
      const signed = inv['signed'];
      const userId = typeof inv['mxid'] === 'string' ? inv['mxid'] : body['mxid'];
      const roomId = inv['room_id'];
      const sender = inv['sender'];
      if (typeof userId !== 'string' || typeof roomId !== 'string' || typeof sender !== 'string' || typeof signed['token'] !== 'string') {
        d.log.info('onbind: skipping an invite without mxid, room_id, sender or token');
        continue;
      }
      if (domainOf(userId) !== d.serverName) {
        d.log.info({ user_id: userId }, 'onbind: skipping an invite of a user of another server');
        continue;
      }
      try {
        const res = await d.exchanger.perform({
          room_id: roomId,
          sender,
          user_id: userId,
          signed,
          ...(typeof inv['display_name'] === 'string' ? { display_name: inv['display_name'] } : {}),
        });
        if (res.error !== undefined) {
          d.log.warn({ room_id: roomId, user_id: userId, error: res.error, reason: res.message }, 'onbind: third-party invite not redeemed');
          failure ??= failureError(res);
        }
      } catch (e) {
        d.log.error({ room_id: roomId, user_id: userId, err: e }, 'onbind: third-party invite failed');
        failure ??= new MatrixError(502, 'M_UNKNOWN', 'The third-party invite could not be redeemed');
      }
    }
    if (failure) throw failure;
    return jsonResponse({});
  };
  fed.put('/v1/3pid/onbind', onbind);
  fed.post('/v1/3pid/onbind', onbind);

  fed.put('/v1/exchange_third_party_invite/:roomId', async (c) => {
    const { origin, body } = await auth.authenticate(c);
    if (!isObject(body)) throw badJson('The body must be an m.room.member event');
    const roomId = c.req.param('roomId') ?? '';
    if (body['room_id'] !== undefined && body['room_id'] !== roomId) throw badJson('room_id does not match the path');
    if (body['type'] !== 'm.room.member') throw badJson('The event must be an m.room.member');
    const target = body['state_key'];
    const sender = body['sender'];
    if (typeof target !== 'string' || !isValidUserId(target)) throw badJson('state_key must be the invited user');
    if (typeof sender !== 'string' || !isValidUserId(sender)) throw badJson('sender must be the inviter');
    if (domainOf(target) !== origin) throw forbidden(`${origin} may only exchange invites of its own users`);
    const content = body['content'];
    const tpi = isObject(content) ? content['third_party_invite'] : undefined;
    if (!isObject(content) || content['membership'] !== 'invite' || !isObject(tpi) || !isObject(tpi['signed'])) {
      throw badJson('content must be an invite with third_party_invite.signed');
    }
    const res = await d.exchanger.perform(
      {
        room_id: roomId,
        sender,
        user_id: target,
        signed: tpi['signed'],
        ...(typeof tpi['display_name'] === 'string' ? { display_name: tpi['display_name'] } : {}),
      },
      { exchanged: true },
    );
    if (res.error !== undefined) throw failureError(res);
    return jsonResponse({});
  });
}
