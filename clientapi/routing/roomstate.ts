/**
 * Reading rooms: GET /joined_rooms, /rooms/{roomId}/joined_members, /rooms/{roomId}/state and
 * /rooms/{roomId}/state/{eventType}/{stateKey}. Members read the current state; a user who
 * left (or was kicked) reads the state as it was when they left; a banned user reads nothing
 * (as in Synapse); anyone may read a world_readable room's current state.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, forbidden, jsonResponse, notFound } from '../../internal/httputil/index.js';
import { Event, type JsonObject } from '../../internal/matrix/index.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

function clientEvent(e: HeaderedEvent): JsonObject {
  return Event.fromPDU(e.pdu, e.room_version).toClientEvent('client');
}

export function addRoomStateRoutes(client: Hono, userAPI: ClientUserAPI, rsAPI: RoomserverInternalAPI): void {
  /** The state the user may read, all of it or the pairs asked for. */
  const readableState = async (userId: string, roomId: string, wanted?: Array<{ type: string; state_key: string }>): Promise<HeaderedEvent[]> => {
    if (!/^![^:]+(:.+)?$/.test(roomId)) throw new MatrixError(400, 'M_INVALID_PARAM', `${roomId} is not a room ID`);
    const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: userId });
    if (!m.room_exists) throw forbidden('You are not in this room');
    const fetch = wanted ? { state_to_fetch: wanted } : {};
    if (m.membership === 'join') return (await rsAPI.queryLatestEventsAndState({ room_id: roomId, ...fetch })).state_events;
    if (m.membership === 'leave' && m.event_id !== undefined) {
      return (await rsAPI.queryStateAfterEvents({ room_id: roomId, prev_event_ids: [m.event_id], ...fetch })).state_events;
    }
    const hv = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.history_visibility', state_key: '' }] });
    if (hv.state_events[0]?.pdu.content?.['history_visibility'] === 'world_readable') return (await rsAPI.queryLatestEventsAndState({ room_id: roomId, ...fetch })).state_events;
    throw forbidden('You are not in this room');
  };

  clientRoute(client, 'get', '/joined_rooms', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    return jsonResponse({ joined_rooms: (await rsAPI.queryRoomsForUser({ user_id: me.userId, membership: 'join' })).room_ids });
  });

  clientRoute(client, 'get', '/rooms/:roomId/joined_members', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = c.req.param('roomId') ?? '';
    const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: me.userId });
    if (!m.is_in_room) throw forbidden('You are not in this room');
    const { members } = await rsAPI.queryMembershipsForRoom({ room_id: roomId, memberships: ['join'] });
    const joined: Record<string, { display_name: string | null; avatar_url: string | null }> = {};
    for (const member of members) {
      const content = member.event.pdu.content ?? {};
      joined[member.user_id] = {
        display_name: typeof content['displayname'] === 'string' ? content['displayname'] : null,
        avatar_url: typeof content['avatar_url'] === 'string' ? content['avatar_url'] : null,
      };
    }
    return jsonResponse({ joined });
  });

  clientRoute(client, 'get', '/rooms/:roomId/state', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    return jsonResponse((await readableState(me.userId, c.req.param('roomId') ?? '')).map(clientEvent));
  });

  const one = async (c: Context, stateKey: string): Promise<Response> => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const type = c.req.param('eventType') ?? '';
    const [event] = await readableState(me.userId, c.req.param('roomId') ?? '', [{ type, state_key: stateKey }]);
    if (!event) throw notFound(`No ${type} state event with state key "${stateKey}"`);
    // ?format=event asks for the whole event rather than its content.
    return jsonResponse(c.req.query('format') === 'event' ? clientEvent(event) : (event.pdu.content ?? {}));
  };
  // The empty state key may be written with or without the trailing slash.
  clientRoute(client, 'get', '/rooms/:roomId/state/:eventType', (c) => one(c, ''));
  clientRoute(client, 'get', '/rooms/:roomId/state/:eventType/', (c) => one(c, ''));
  clientRoute(client, 'get', '/rooms/:roomId/state/:eventType/:stateKey', (c) => one(c, c.req.param('stateKey') ?? ''));
}
