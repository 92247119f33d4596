/**
 * GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event?ts=&dir= (Client-Server API v1.6+,
 * MSC3030): the ID and origin_server_ts of the event nearest `ts` in direction `dir` (f: the
 * first at or after it, b: the last at or before it) among those the user may see.
 *
 * Who may ask: a user joined to the room, one who was in it (left, kicked or banned: they see
 * history up to then, as Synapse allows "departed users"), or anyone when the room is
 * world_readable; others, and unknown rooms, get 403. History visibility then decides which
 * events count (the roomserver's check, event by event).
 *
 * Other servers are asked (federationapi, Server-Server `GET /timestamp_to_event`) when this
 * server may lack the answer, the cases Synapse asks in: no event here in that direction, the
 * one found borders a gap in our copy of the room (see roomserver/internal/query/timestamp.ts),
 * or this server is not in the room any more. The servers with joined users go first, those in
 * the room longest before the others (by the depth of their users' join events), as the spec
 * suggests. A remote event is used only when it is closer than ours, was backfilled here, and
 * the user may see it.
 */
import type { Context, Hono } from 'hono';
import { forbidden, invalidParam, jsonResponse, notFound } from '../../internal/httputil/index.js';
import { parseTimestampQuery } from '../../internal/httputil/timestampquery.js';
import { domainOf, isRoomIdOfAnyFormat } from '../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';

export type TimestampRoomserverAPI = Pick<
  RoomserverInternalAPI,
  'queryMembershipForUser' | 'queryLatestEventsAndState' | 'queryEventByTimestamp' | 'queryServersInRoom' | 'queryMembershipsForRoom' | 'queryVisibleEvents'
>;

/** Memberships of users who may still ask about a room's history. */
const MAY_ASK = new Set(['join', 'leave', 'ban']);

export function addTimestampToEventRoute(client: Hono, serverName: string, userAPI: ClientUserAPI, rsAPI: TimestampRoomserverAPI, fedAPI: Pick<FederationInternalAPI, 'performRemoteTimestampToEvent'>): void {
  /** Other servers with users joined to the room, those in it longest first. */
  const otherServers = async (roomId: string): Promise<string[]> => {
    const { members } = await rsAPI.queryMembershipsForRoom({ room_id: roomId, memberships: ['join'] });
    const since = new Map<string, number>();
    for (const m of members) {
      const server = domainOf(m.user_id);
      if (server === undefined) continue;
      const depth = typeof m.event.pdu.depth === 'number' ? m.event.pdu.depth : Number.MAX_SAFE_INTEGER;
      since.set(server, Math.min(since.get(server) ?? Number.MAX_SAFE_INTEGER, depth));
    }
    const others = [...since.entries()].filter(([s]) => s !== serverName).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    return others.map(([s]) => s);
  };

  const handler = async (c: Context): Promise<Response> => {
    const me = await requireDevice(c, userAPI);
    const roomId = c.req.param('roomId') ?? '';
    if (!isRoomIdOfAnyFormat(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    const { ts, dir } = parseTimestampQuery((name) => c.req.query(name));

    const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: me.userId });
    const notAllowed = forbidden('You are not allowed to view this room');
    if (!m.room_exists) throw notAllowed;
    if (m.membership === undefined || !MAY_ASK.has(m.membership)) {
      const { state_events } = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.history_visibility', state_key: '' }] });
      if (state_events[0]?.pdu.content['history_visibility'] !== 'world_readable') throw notAllowed;
    }

    const local = await rsAPI.queryEventByTimestamp({ room_id: roomId, ts, dir, user_id: me.userId });
    let best = local.event_id !== undefined && local.origin_server_ts !== undefined ? { event_id: local.event_id, origin_server_ts: local.origin_server_ts } : undefined;
    const { servers } = await rsAPI.queryServersInRoom({ room_id: roomId });
    const weAreIn = servers.includes(serverName);
    if ((best === undefined || local.next_to_gap === true || !weAreIn) && servers.some((s) => s !== serverName)) {
      const remote = await fedAPI.performRemoteTimestampToEvent({
        room_id: roomId,
        ts,
        dir,
        server_names: await otherServers(roomId),
        ...(best !== undefined ? { nearest_local_ts: best.origin_server_ts } : {}),
      });
      if (remote.error === undefined) {
        const { visible_event_ids } = await rsAPI.queryVisibleEvents({ event_ids: [remote.event_id], user_id: me.userId });
        if (visible_event_ids.includes(remote.event_id)) best = { event_id: remote.event_id, origin_server_ts: remote.origin_server_ts };
      }
    }
    if (best === undefined) throw notFound(`Unable to find event from ${ts} in ${dir === 'f' ? 'forward' : 'backward'} direction`);
    return jsonResponse(best);
  };
  client.get('/v1/rooms/:roomId/timestamp_to_event', handler);
  // MSC3030's path, which some clients still use.
  client.get('/unstable/org.matrix.msc3030/rooms/:roomId/timestamp_to_event', handler);
}
