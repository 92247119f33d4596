/**
 * What a user keeps about a room in their account data follows the room when it is upgraded:
 * its tags, and its place among the user's direct chats (m.direct lists the new room beside the
 * old one), as Synapse does. Done for the local members at the upgrade, and again when a user
 * joins an upgraded room (a member of another server, or one who joins later).
 */
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';

type UserDataAPI = Pick<ClientUserAPI, 'queryAccountData' | 'performAccountDataUpdate'>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Copies the user's tags of `oldRoomId` to `newRoomId` (unless it has its own) and adds `newRoomId` to m.direct beside it. */
export async function carryRoomUserData(userAPI: UserDataAPI, userId: string, oldRoomId: string, newRoomId: string): Promise<void> {
  const tags = (await userAPI.queryAccountData({ userId, roomId: oldRoomId, type: 'm.tag' })).content;
  if (tags !== undefined && isObject(tags['tags']) && Object.keys(tags['tags']).length > 0) {
    const existing = (await userAPI.queryAccountData({ userId, roomId: newRoomId, type: 'm.tag' })).content;
    if (!(existing !== undefined && isObject(existing['tags']) && Object.keys(existing['tags']).length > 0)) {
      await userAPI.performAccountDataUpdate({ userId, roomId: newRoomId, type: 'm.tag', content: tags });
    }
  }
  const direct = (await userAPI.queryAccountData({ userId, type: 'm.direct' })).content;
  if (direct === undefined) return;
  let changed = false;
  const updated: Record<string, unknown> = {};
  for (const [other, rooms] of Object.entries(direct)) {
    if (Array.isArray(rooms) && rooms.includes(oldRoomId) && !rooms.includes(newRoomId)) {
      updated[other] = [...rooms, newRoomId];
      changed = true;
    } else updated[other] = rooms;
  }
  if (changed) await userAPI.performAccountDataUpdate({ userId, type: 'm.direct', content: updated });
}

/** The room a room replaced (its create event's predecessor), if any. */
export async function predecessorOf(rsAPI: Pick<RoomserverInternalAPI, 'queryLatestEventsAndState'>, roomId: string): Promise<string | undefined> {
  const [create] = (await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.create', state_key: '' }] })).state_events;
  const predecessor = create?.pdu.content?.['predecessor'];
  const id = isObject(predecessor) ? predecessor['room_id'] : undefined;
  return typeof id === 'string' ? id : undefined;
}
