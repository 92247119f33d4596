/**
 * POST /knock/{roomIdOrAlias}: asking to join a room whose join rule is `knock` (room versions
 * 7+) or `knock_restricted` (10+), as an m.room.member event with membership `knock`. A member
 * with the invite level accepts the knock by inviting the knocker (POST /rooms/{id}/invite) and
 * denies it by kicking them; the knocker sees the room under `rooms.knock` in /sync.
 *
 * Only rooms this server holds can be knocked on: knocking over federation (make_knock /
 * send_knock) is not there yet, so the `server_name` / `via` query parameters are ignored and an
 * unknown room is answered 404, as the spec's M_NOT_FOUND for a room that cannot be found.
 *
 * The room's auth rules decide (see internal/matrix/auth/membership.ts): knocking is refused for
 * a user who is banned, invited or joined. Those cases, and a room that is not knockable, are
 * checked here first only to give a clearer message; each is 403 M_FORBIDDEN, as the spec and
 * Synapse answer them.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, invalidParam, jsonResponse, notFound, readJsonObject } from '../../internal/httputil/index.js';
import { roomVersion as lookupRoomVersion, type JsonObject } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 16 * 1024;
const ROOM_ID = /^![^:]+(:.+)?$/;

export type KnockRoomserverAPI = Pick<RoomserverInternalAPI, 'queryRoomIdForAlias' | 'queryLatestEventsAndState' | 'performSendEvent'>;

/** Why a user may not knock on a room, or undefined when they may (the auth rules have the last word). */
export function knockRefusal(roomVersionId: string, joinRule: string | undefined, membership: string | undefined): string | undefined {
  const v = lookupRoomVersion(roomVersionId);
  if (!v?.knockJoinRule) return `Room version ${roomVersionId} does not support knocking`;
  const rule = joinRule ?? 'invite';
  if (!(rule === 'knock' || (rule === 'knock_restricted' && v.knockRestrictedJoinRule))) return `You are not allowed to knock on this room (join rule ${rule})`;
  if (membership === 'ban') return 'You are banned from this room';
  if (membership === 'join') return 'You are already in this room';
  if (membership === 'invite') return 'You are already invited to this room';
  return undefined;
}

export function addKnockRoute(client: Hono, userAPI: ClientUserAPI, rsAPI: KnockRoomserverAPI): void {
  clientRoute(client, 'post', '/knock/:roomIdOrAlias', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY, allowEmpty: true });
    const reason = body['reason'];
    if (reason !== undefined && typeof reason !== 'string') throw badJson('reason must be a string');

    const idOrAlias = c.req.param('roomIdOrAlias') ?? '';
    let roomId = idOrAlias;
    if (idOrAlias.startsWith('#')) {
      const found = await rsAPI.queryRoomIdForAlias({ alias: idOrAlias });
      if (found.room_id === undefined) throw notFound(`No room has the alias ${idOrAlias}`);
      roomId = found.room_id;
    } else if (!ROOM_ID.test(idOrAlias)) {
      throw invalidParam(`${idOrAlias} is neither a room ID nor an alias`);
    }

    const room = await rsAPI.queryLatestEventsAndState({
      room_id: roomId,
      state_to_fetch: [
        { type: 'm.room.join_rules', state_key: '' },
        { type: 'm.room.member', state_key: me.userId },
      ],
    });
    if (!room.room_exists || room.room_version === undefined) throw notFound('This server does not know that room');
    const stateContent = (type: string): JsonObject | undefined => room.state_events.find((e) => e.pdu.type === type)?.pdu.content as JsonObject | undefined;
    const rule = stateContent('m.room.join_rules')?.['join_rule'];
    const membership = stateContent('m.room.member')?.['membership'];
    const refusal = knockRefusal(room.room_version, typeof rule === 'string' ? rule : undefined, typeof membership === 'string' ? membership : undefined);
    if (refusal !== undefined) throw forbidden(refusal);

    // The knocker's profile goes with the knock, so that moderators can tell who asks.
    const { profile } = await userAPI.queryProfile({ userId: me.userId });
    const content: JsonObject = { membership: 'knock', ...(reason !== undefined ? { reason } : {}) };
    if (profile?.displayName) content['displayname'] = profile.displayName;
    if (profile?.avatarUrl) content['avatar_url'] = profile.avatarUrl;
    const res = await rsAPI.performSendEvent({ user_id: me.userId, room_id: roomId, type: 'm.room.member', state_key: me.userId, content });
    if (res.error === 'forbidden') throw forbidden(res.message);
    if (res.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', res.message);
    return jsonResponse({ room_id: roomId });
  });
}
