/**
 * POST /rooms/{roomId}/forget: a user who is out of a room (left, kicked or banned) stops
 * remembering it. The roomserver keeps the flag on the user's membership (as Dendrite does);
 * the user's next membership event in the room (a re-join, an invite, a knock) clears it.
 *
 * Errors, following the spec and Synapse: still joined, invited or knocking → 400 M_UNKNOWN
 * (the spec's only error for this endpoint; Synapse says "User … in room …"). A room this
 * server does not know → 404 M_NOT_FOUND, as the other room routes here answer (the spec lists
 * no case for it; Synapse answers 200, Dendrite 403). A known room where the user never had a
 * membership → 200, as Synapse and Dendrite do: there is nothing to remember, so nothing to forget.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, invalidParam, jsonResponse, notFound } from '../../internal/httputil/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const ROOM_ID = /^![^:]+(:.+)?$/;

export type ForgetRoomserverAPI = Pick<RoomserverInternalAPI, 'performForget'>;

export function addForgetRoute(client: Hono, userAPI: ClientUserAPI, rsAPI: ForgetRoomserverAPI): void {
  clientRoute(client, 'post', '/rooms/:roomId/forget', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    // The request has no body; clients (and Sytest) send {} or nothing, so it is not read.
    const roomId = c.req.param('roomId') ?? '';
    if (!ROOM_ID.test(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    const res = await rsAPI.performForget({ room_id: roomId, user_id: me.userId });
    if (res.error === 'unknown_room') throw notFound('This server does not know that room');
    if (res.error === 'in_room') throw new MatrixError(400, 'M_UNKNOWN', `User ${me.userId} is in room ${roomId} (${res.membership ?? 'member'}): leave it before forgetting it`);
    return jsonResponse({});
  });
}
