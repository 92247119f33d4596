/**
 * GET /_matrix/federation/v1/hierarchy/{roomId}?suggested_only=: a space of ours, summarised for
 * another server, with its children one level down (no paging, no recursion: the asking server
 * walks further itself and filters for its user).
 *
 * The space must be one we are in and that the asking server may see (public, knockable,
 * world_readable, or one of its users joined or invited, or allowed by a restricted join rule);
 * otherwise 404, as the spec says, so that the answer does not tell unknown and hidden rooms
 * apart. Children we are not in are left out; children we hold but the server may not see are
 * listed in `inaccessible_children` so that it does not ask anyone else about them. A server
 * the space's ACL bars gets 403.
 */
import type { Context, Hono } from 'hono';
import { forbidden, invalidParam, jsonResponse, notFound } from '../../internal/httputil/index.js';
import { isRoomIdOfAnyFormat } from '../../internal/matrix/index.js';
import type { RoomSummary, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import { serverAllowedByAcl } from '../internal/acl.js';
import type { FederationAuth } from './fedauth.js';

export type HierarchyRoomserverAPI = Pick<RoomserverInternalAPI, 'queryRoomSummary' | 'queryLatestEventsAndState'>;

/** Children summarised per answer, as Synapse caps them. */
const MAX_CHILDREN = 50;

/** `suggested_only`: absent (false), `true` or `false`; anything else is 400. */
export function parseSuggestedOnly(raw: string | undefined): boolean {
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw invalidParam('suggested_only must be true or false');
}

export function addHierarchyRoute(fed: Hono, auth: FederationAuth, rsAPI: HierarchyRoomserverAPI): void {
  const handler = async (c: Context): Promise<Response> => {
    const { origin } = await auth.authenticate(c);
    const roomId = c.req.param('roomId') ?? '';
    if (!isRoomIdOfAnyFormat(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    const suggestedOnly = parseSuggestedOnly(c.req.query('suggested_only'));

    const { room_exists, state_events } = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.server_acl', state_key: '' }] });
    if (room_exists && !serverAllowedByAcl(state_events[0]?.pdu.content as Record<string, unknown> | undefined, origin)) throw forbidden('Server is banned from this room by its ACL');
    const root = await rsAPI.queryRoomSummary({ room_id: roomId, server_name: origin, suggested_only: suggestedOnly, include_children: true });
    if (!root.room_exists || !root.accessible || !root.room) throw notFound(`Unknown room: ${roomId}`);

    const childrenState = root.children_state ?? [];
    const children: RoomSummary[] = [];
    const inaccessible: string[] = [];
    for (const child of childrenState.slice(0, MAX_CHILDREN)) {
      const s = await rsAPI.queryRoomSummary({ room_id: child.state_key, server_name: origin });
      if (!s.room_exists) continue;
      if (s.accessible && s.room) children.push(s.room);
      else inaccessible.push(child.state_key);
    }
    return jsonResponse({ room: { ...root.room, children_state: childrenState }, children, inaccessible_children: inaccessible });
  };
  fed.get('/v1/hierarchy/:roomId', handler);
  // MSC2946's path, which servers older than spec v1.2 still ask.
  fed.get('/unstable/org.matrix.msc2946/hierarchy/:roomId', handler);
}
