/**
 * Local peeks (MSC2753): a device reads a room without joining it.
 *
 * POST /peek/{roomIdOrAlias} (under /unstable/org.matrix.msc2753, and /r0 and /v3 as Sytest
 * calls it) → {room_id}: allowed only into a room of this server whose history_visibility is
 * world_readable (403 M_FORBIDDEN otherwise); an unknown room or alias → 404 M_NOT_FOUND.
 * syncapi records the peek for the device; the room then comes in the `peek` section of its
 * /sync until it unpeeks or joins. POST /unpeek/{roomId} → {} ends the peek.
 */
import type { Context, Hono } from 'hono';
import { forbidden, invalidParam, jsonResponse, notFound } from '../../internal/httputil/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { SyncInternalAPI } from '../../syncapi/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const ROOM_ID = /^![^:]+(:.+)?$/;
const ALIAS = /^#[^:]+:.+$/;
const UNSTABLE = '/unstable/org.matrix.msc2753';

export type PeekRoomserverAPI = Pick<RoomserverInternalAPI, 'queryRoomIdForAlias' | 'queryLatestEventsAndState'>;
export type PeekSyncAPI = Pick<SyncInternalAPI, 'performPeek' | 'performUnpeek'>;

export function addPeekRoutes(client: Hono, userAPI: ClientUserAPI, rsAPI: PeekRoomserverAPI, syncAPI: PeekSyncAPI): void {
  const peek = async (c: Context): Promise<Response> => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const idOrAlias = c.req.param('roomIdOrAlias') ?? '';
    let roomId = idOrAlias;
    if (ALIAS.test(idOrAlias)) {
      const found = await rsAPI.queryRoomIdForAlias({ alias: idOrAlias });
      if (found.room_id === undefined) throw notFound(`No room has the alias ${idOrAlias}`);
      roomId = found.room_id;
    } else if (!ROOM_ID.test(idOrAlias)) {
      throw invalidParam(`${idOrAlias} is neither a room ID nor an alias`);
    }
    const res = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.history_visibility', state_key: '' }] });
    // Rooms on other servers would need a federated peek (MSC2444), not served here.
    if (!res.room_exists) throw notFound('This server does not know that room');
    const visibility = res.state_events.find((e) => e.pdu.type === 'm.room.history_visibility')?.pdu.content['history_visibility'];
    if (visibility !== 'world_readable') throw forbidden('Only rooms whose history is world_readable can be peeked into');
    await syncAPI.performPeek({ user_id: me.userId, device_id: me.deviceId, room_id: roomId });
    return jsonResponse({ room_id: roomId });
  };
  const unpeek = async (c: Context): Promise<Response> => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = c.req.param('roomId') ?? '';
    if (!ROOM_ID.test(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    await syncAPI.performUnpeek({ user_id: me.userId, device_id: me.deviceId, room_id: roomId });
    return jsonResponse({});
  };
  client.post(`${UNSTABLE}/peek/:roomIdOrAlias`, peek);
  client.post(`${UNSTABLE}/unpeek/:roomId`, unpeek);
  clientRoute(client, 'post', '/peek/:roomIdOrAlias', peek);
  clientRoute(client, 'post', '/unpeek/:roomId', unpeek);
}
