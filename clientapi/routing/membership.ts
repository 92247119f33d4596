/**
 * Membership changes: joining (by room ID or alias), inviting, kicking, banning and
 * unbanning, as m.room.member events the roomserver builds and checks. Rooms this server
 * does not hold need a join over federation (issue #8) and are answered 404 until then.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, invalidParam, jsonResponse, missingParam, notFound, readJsonObject } from '../../internal/httputil/index.js';
import { roomVersion as lookupRoomVersion, type JsonObject } from '../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { checkNumbersForRoomVersion, readEventJson } from './eventcontent.js';
import { clientRoute } from './paths.js';
import { carryRoomUserData, predecessorOf } from './roomuserdata.js';
import { remoteInviter } from './remoteinvite.js';
import { isThreePidInviteBody, parseThreePidInvite, type ThirdPartyInvites } from './thirdpartyinvite.js';

const MAX_BODY = 16 * 1024;
const USER_ID = /^@[^:]+:.+$/;

export function addMembershipRoutes(client: Hono, serverName: string, userAPI: ClientUserAPI, rsAPI: RoomserverInternalAPI, fedAPI: Pick<FederationInternalAPI, 'performJoin' | 'performInvite'>, thirdParty?: ThirdPartyInvites): void {
  const inviteRemote = remoteInviter(serverName, rsAPI, fedAPI);

  const guestsMayJoin = async (roomId: string): Promise<boolean> => {
    const [ga] = (await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.guest_access', state_key: '' }] })).state_events;
    return ga?.pdu.content?.['guest_access'] === 'can_join';
  };

  /**
   * Joining an upgraded room brings the user's tags and direct-chat entries of the room it
   * replaced, and (once the old room's tombstone names it) this server's aliases and public
   * listing of the old room, which another server's upgrade could not move. Best effort.
   */
  const carryFromPredecessor = async (userId: string, roomId: string): Promise<void> => {
    try {
      const old = await predecessorOf(rsAPI, roomId);
      if (old === undefined) return;
      await carryRoomUserData(userAPI, userId, old, roomId);
      await rsAPI.performUpgradeDirectoryMove({ old_room_id: old, new_room_id: roomId });
    } catch {
      // The join has happened; tags and aliases stay behind.
    }
  };

  const sendMember = async (sender: string, roomId: string, target: string, content: JsonObject): Promise<string> => {
    const res = await rsAPI.performSendEvent({ user_id: sender, room_id: roomId, type: 'm.room.member', state_key: target, content });
    if (res.error === 'forbidden') throw forbidden(res.message);
    if (res.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', res.message);
    return res.event_id;
  };
  const reasonOf = (body: Record<string, unknown>): JsonObject => {
    const r = body['reason'];
    if (r === undefined) return {};
    if (typeof r !== 'string') throw badJson('reason must be a string');
    return { reason: r };
  };

  const join = async (c: Context, idOrAlias: string): Promise<Response> => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    // The body's extra fields become the join's content: numbers follow the room version's rules.
    const { body, badNumber } = await readEventJson(c, MAX_BODY);
    let roomId = idOrAlias;
    const remoteAlias = idOrAlias.startsWith('#') && /^#[^:]+:.+$/.test(idOrAlias) && idOrAlias.slice(idOrAlias.indexOf(':') + 1) !== serverName;
    if (idOrAlias.startsWith('#') && !remoteAlias) {
      const found = await rsAPI.queryRoomIdForAlias({ alias: idOrAlias });
      if (found.room_id === undefined) throw notFound(`No room has the alias ${idOrAlias}`);
      roomId = found.room_id;
    } else if (!remoteAlias && !/^![^:]+(:.+)?$/.test(idOrAlias)) {
      throw invalidParam(`${idOrAlias} is neither a room ID nor an alias`);
    }
    // A third-party invite the user proves: the invite is made first, then they join as invited.
    if (body['third_party_signed'] !== undefined && !remoteAlias) {
      if (!thirdParty) throw new MatrixError(400, 'M_UNRECOGNIZED', 'Third-party invites are not supported here');
      await thirdParty.redeemOnJoin(me.userId, roomId, body['third_party_signed']);
    }
    const { profile } = await userAPI.queryProfile({ userId: me.userId });
    // Extra fields of the body go into the event (clients use this for custom member data);
    // the membership and the third-party proof are not the client's to set that way.
    const { third_party_signed: _proof, membership: _m, ...extra } = body;
    const content: JsonObject = { ...(extra as JsonObject), ...reasonOf(body), membership: 'join' };
    if (profile?.displayName && content['displayname'] === undefined) content['displayname'] = profile.displayName;
    if (profile?.avatarUrl && content['avatar_url'] === undefined) content['avatar_url'] = profile.avatarUrl;
    const m = remoteAlias ? undefined : await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: me.userId });
    if (badNumber !== undefined && m?.room_exists === true) {
      const { room_version } = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] });
      checkNumbersForRoomVersion(badNumber, room_version === undefined ? undefined : lookupRoomVersion(room_version));
    }
    // A guest may join only rooms that let guests in (m.room.guest_access can_join).
    if (me.isGuest && m?.room_exists === true && m.membership !== 'join' && !(await guestsMayJoin(roomId))) {
      throw new MatrixError(403, 'M_FORBIDDEN', 'Guest access is not allowed in this room');
    }
    if (m === undefined || !m.room_exists) {
      // A room this server does not hold: join through the servers that do.
      const via = [...c.req.queries('server_name') ?? [], ...c.req.queries('via') ?? []];
      // An invite names a server in the room: the inviter's.
      if (m?.membership === 'invite' && m.event_id !== undefined) {
        const [inv] = (await rsAPI.queryEventsById({ event_ids: [m.event_id] })).events;
        const sender = inv?.pdu.sender;
        if (typeof sender === 'string' && sender.includes(':')) via.push(sender.slice(sender.indexOf(':') + 1));
      }
      const res = await fedAPI.performJoin({ room_id_or_alias: idOrAlias.startsWith('#') ? idOrAlias : roomId, user_id: me.userId, server_names: via, content });
      if (res.error === undefined) {
        // Only now is the room's state known here: a guest in a room closed to guests leaves again.
        if (me.isGuest && !(await guestsMayJoin(res.room_id))) {
          await rsAPI.performSendEvent({ user_id: me.userId, room_id: res.room_id, type: 'm.room.member', state_key: me.userId, content: { membership: 'leave' } });
          throw new MatrixError(403, 'M_FORBIDDEN', 'Guest access is not allowed in this room');
        }
        await carryFromPredecessor(me.userId, res.room_id);
        return jsonResponse({ room_id: res.room_id });
      }
      if (res.error === 'forbidden') throw forbidden(res.message);
      if (res.error === 'not_found') throw notFound(res.message);
      if (res.error === 'incompatible_room_version') throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', res.message, res.room_version !== undefined ? { room_version: res.room_version } : {});
      if (res.error === 'remote') throw new MatrixError(res.status ?? 400, res.errcode ?? 'M_UNKNOWN', res.message);
      throw new MatrixError(502, 'M_UNKNOWN', `Could not join the room over federation: ${res.message}`);
    }
    await sendMember(me.userId, roomId, me.userId, content);
    await carryFromPredecessor(me.userId, roomId);
    return jsonResponse({ room_id: roomId });
  };
  clientRoute(client, 'post', '/join/:roomIdOrAlias', (c) => join(c, c.req.param('roomIdOrAlias') ?? ''));
  clientRoute(client, 'post', '/rooms/:roomId/join', (c) => join(c, c.req.param('roomId') ?? ''));

  const onTarget = (membership: 'invite' | 'leave' | 'ban', path: string, guard?: (current: string | undefined) => void): void => {
    clientRoute(client, 'post', `/rooms/:roomId/${path}`, async (c: Context) => {
      const me = await requireDevice(c, userAPI);
      const body = await readJsonObject(c, { maxBytes: MAX_BODY });
      let target = body['user_id'];
      // An invite by 3PID: a bound one invites its user as usual; an unbound one is stored by the identity server.
      if (membership === 'invite' && thirdParty && isThreePidInviteBody(body)) {
        const bound = await thirdParty.invite(me.userId, c.req.param('roomId') ?? '', parseThreePidInvite(body));
        if (bound === undefined) return jsonResponse({});
        target = bound;
      }
      if (target === undefined) throw missingParam('user_id is required');
      if (typeof target !== 'string' || !USER_ID.test(target)) throw invalidParam('user_id must be a user ID');
      const roomId = c.req.param('roomId') ?? '';
      const current = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: target });
      if (!current.room_exists) throw notFound('This server does not know that room');
      guard?.(current.membership);
      if (membership === 'invite' && target.slice(target.indexOf(':') + 1) !== serverName) await inviteRemote(me.userId, roomId, target, { membership, ...reasonOf(body) });
      else await sendMember(me.userId, roomId, target, { membership, ...reasonOf(body) });
      return jsonResponse({});
    });
  };
  onTarget('invite', 'invite');
  onTarget('leave', 'kick', (m) => {
    if (m !== 'join' && m !== 'invite' && m !== 'knock') throw forbidden('The user is not in the room');
  });
  onTarget('ban', 'ban');
  onTarget('leave', 'unban', (m) => {
    if (m !== 'ban') throw forbidden('The user is not banned');
  });
}
