/**
 * GET /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=&dir=: the event nearest a time
 * that the asking server may see, from this server's own history only (the spec's answer to a
 * server that lacks some history; asking further is the asker's job).
 *
 * Synapse checks only the room's server ACL here; we also require the asking server to be in
 * the room (a user of it joined) unless the room is world_readable (403 otherwise), and count
 * only events history visibility lets it see, as /backfill does: a server learns nothing of a
 * room's timeline that it could not read.
 */
import type { Context, Hono } from 'hono';
import { forbidden, invalidParam, jsonResponse, notFound } from '../../internal/httputil/index.js';
import { parseTimestampQuery } from '../../internal/httputil/timestampquery.js';
import { isRoomIdOfAnyFormat } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { RoomReader } from './events.js';
import type { FederationAuth } from './fedauth.js';

export type TimestampRoomserverAPI = Pick<RoomserverInternalAPI, 'queryEventByTimestamp' | 'queryServersInRoom' | 'queryLatestEventsAndState'>;

export function addTimestampRoute(fed: Hono, auth: FederationAuth, reader: RoomReader, rsAPI: TimestampRoomserverAPI): void {
  const handler = async (c: Context): Promise<Response> => {
    const { origin } = await auth.authenticate(c);
    const roomId = c.req.param('roomId') ?? '';
    if (!isRoomIdOfAnyFormat(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    const { ts, dir } = parseTimestampQuery((name) => c.req.query(name));
    // Unknown room: 404; barred by the room's ACL: 403.
    await reader.requireRoomAccess(roomId, origin);
    const { servers } = await rsAPI.queryServersInRoom({ room_id: roomId });
    if (!servers.includes(origin)) {
      const { state_events } = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.history_visibility', state_key: '' }] });
      if (state_events[0]?.pdu.content['history_visibility'] !== 'world_readable') throw forbidden(`${origin} is not in the room`);
    }
    const found = await rsAPI.queryEventByTimestamp({ room_id: roomId, ts, dir, server_name: origin });
    if (found.event_id === undefined || found.origin_server_ts === undefined) {
      throw notFound(`Unable to find event from ${ts} in ${dir === 'f' ? 'forward' : 'backward'} direction`);
    }
    return jsonResponse({ event_id: found.event_id, origin_server_ts: found.origin_server_ts });
  };
  fed.get('/v1/timestamp_to_event/:roomId', handler);
  // MSC3030's path, which servers from before spec v1.6 ask.
  fed.get('/unstable/org.matrix.msc3030/timestamp_to_event/:roomId', handler);
}
