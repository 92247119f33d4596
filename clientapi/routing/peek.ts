/**
 * Peeks (MSC2753): a device reads a room without joining it.
 *
 * POST /peek/{roomIdOrAlias}[?server_name=...] (under /unstable/org.matrix.msc2753, and /r0 and
 * /v3 as Sytest calls it) → {room_id}. The roomserver decides, as in Dendrite: only rooms whose
 * history_visibility is world_readable (and that are not encrypted) may be peeked (403
 * M_FORBIDDEN otherwise); an unknown room or alias is 404 M_NOT_FOUND. A room of another server
 * is peeked over federation first (MSC2444, when enabled), through the `server_name` servers,
 * the alias's or the room ID's. syncapi then gives the room in the `peek` section of the
 * device's /sync until it unpeeks or joins. POST /unpeek/{roomId} → {} ends the peek.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, forbidden, invalidParam, jsonResponse, notFound } from '../../internal/httputil/index.js';
import type { PerformPeekResponse, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const ROOM_ID = /^![^:]+(:.+)?$/;
const ALIAS = /^#[^:]+:.+$/;
const UNSTABLE = '/unstable/org.matrix.msc2753';

export type PeekRoomserverAPI = Pick<RoomserverInternalAPI, 'performPeek' | 'performUnpeek'>;

function refusal(res: Exclude<PerformPeekResponse, { room_id: string }>): MatrixError {
  switch (res.error) {
    case 'invalid':
      return invalidParam(res.message);
    case 'not_found':
      return notFound(res.message);
    case 'forbidden':
      return forbidden(res.message);
    case 'incompatible_room_version':
      return new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', res.message);
    case 'remote':
      return new MatrixError(res.status ?? 400, res.errcode ?? 'M_UNKNOWN', res.message);
    case 'unreachable':
      return new MatrixError(502, 'M_UNKNOWN', `Could not peek the room over federation: ${res.message}`);
  }
}

export function addPeekRoutes(client: Hono, userAPI: ClientUserAPI, rsAPI: PeekRoomserverAPI): void {
  const peek = async (c: Context): Promise<Response> => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const idOrAlias = c.req.param('roomIdOrAlias') ?? '';
    if (!ALIAS.test(idOrAlias) && !ROOM_ID.test(idOrAlias)) throw invalidParam(`${idOrAlias} is neither a room ID nor an alias`);
    const res = await rsAPI.performPeek({ room_id_or_alias: idOrAlias, user_id: me.userId, device_id: me.deviceId, server_names: c.req.queries('server_name') ?? [] });
    if (res.error !== undefined) throw refusal(res);
    return jsonResponse({ room_id: res.room_id });
  };
  const unpeek = async (c: Context): Promise<Response> => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = c.req.param('roomId') ?? '';
    if (!ROOM_ID.test(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    const res = await rsAPI.performUnpeek({ room_id: roomId, user_id: me.userId, device_id: me.deviceId });
    if (res.error !== undefined) throw invalidParam(res.message);
    return jsonResponse({});
  };
  client.post(`${UNSTABLE}/peek/:roomIdOrAlias`, peek);
  client.post(`${UNSTABLE}/unpeek/:roomId`, unpeek);
  clientRoute(client, 'post', '/peek/:roomIdOrAlias', peek);
  clientRoute(client, 'post', '/unpeek/:roomId', unpeek);
}
