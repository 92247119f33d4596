/**
 * Inviting another server's user: the invite is built here, signed by the invitee's server too
 * (federation /invite), then sent into the room. Used by /invite and by createRoom's `invite`.
 */
import { MatrixError, badJson, forbidden } from '../../internal/httputil/index.js';
import type { JsonObject } from '../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';

export type RemoteInviter = (sender: string, roomId: string, target: string, content: JsonObject) => Promise<void>;

export function remoteInviter(serverName: string, rsAPI: RoomserverInternalAPI, fedAPI: Pick<FederationInternalAPI, 'performInvite'>): RemoteInviter {
  /** Stripped state an invitee on another server sees of the room. */
  const strippedState = async (roomId: string, sender: string): Promise<JsonObject[]> => {
    const types = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'];
    const { state_events } = await rsAPI.queryLatestEventsAndState({
      room_id: roomId,
      state_to_fetch: [...types.map((type) => ({ type, state_key: '' })), { type: 'm.room.member', state_key: sender }],
    });
    return state_events.map((h) => ({ type: h.pdu.type, state_key: h.pdu.state_key ?? '', sender: h.pdu.sender, content: (h.pdu.content ?? {}) as JsonObject }) as JsonObject);
  };

  return async (sender, roomId, target, content) => {
    const built = await rsAPI.performSendEvent({ user_id: sender, room_id: roomId, type: 'm.room.member', state_key: target, content, build_only: true });
    if (built.error === 'forbidden') throw forbidden(built.message);
    if (built.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', built.message);
    if (built.event === undefined) return; // already invited: nothing changes
    const signed = await fedAPI.performInvite({ event: built.event, invite_room_state: await strippedState(roomId, sender) });
    if (signed.error === 'forbidden') throw forbidden(signed.message);
    if (signed.error === 'bad_json') throw badJson(signed.message);
    if (signed.error !== undefined) throw new MatrixError(502, 'M_UNKNOWN', `The invitee's server did not take the invite: ${signed.message}`);
    const [res] = (await rsAPI.inputRoomEvents({ events: [{ kind: 'new', event: signed.event, origin: serverName }] })).results;
    if (!res || (res.status !== 'accepted' && res.status !== 'duplicate')) throw forbidden(res?.error ?? 'The invite was refused');
  };
}
