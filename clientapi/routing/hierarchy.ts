/**
 * GET /_matrix/client/v1/rooms/{roomId}/hierarchy (Client-Server API "Spaces", v1.2+): the rooms
 * of a space tree, a page at a time, each with its summary and, for spaces, its m.space.child
 * events (`children_state`).
 *
 * The walk follows the spec and Synapse: depth first (a child space is entered before the next
 * sibling), children in the spec's order, only m.space.child events with a `via` count, only
 * spaces have children, each room once (loops are cut), children below `max_depth` are not
 * entered. A room shows when the user may see it (roomserver's queryRoomSummary for rooms we are
 * in: joined, invited, world_readable, public, knockable, or restricted to a room they are in).
 * Rooms we are not in are asked of their `via` servers (federationapi, Server-Server
 * `GET /hierarchy/{roomId}`), whose answer also summarises their children: a child that is not
 * a space (or is at max_depth) is taken from there without asking again, and children the
 * server says we may not see are not asked about elsewhere. A remote room shows when it is
 * public, knockable or world_readable, restricted to a room the user is joined to here, or one
 * they are invited to.
 *
 * The requested room itself must be one we are in and that the user may see (403 otherwise,
 * also for unknown rooms, so that the answer tells nothing more).
 *
 * Paging: `limit` rooms per page (default and maximum 50, as Synapse), `next_batch` names the
 * walk saved in ./hierarchypages.ts. A page also ends after MAX_EXAMINED rooms looked at, or
 * after PAGE_BUDGET_MS once it holds a room, so that a space of unreachable or hidden rooms
 * cannot hold a request for long: the client pages on.
 */
import type { Context, Hono } from 'hono';
import { forbidden, invalidParam, jsonResponse } from '../../internal/httputil/index.js';
import { isRoomIdOfAnyFormat } from '../../internal/matrix/index.js';
import { spaceChildVia } from '../../internal/matrix/spacechildren.js';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { RoomSummary, RoomserverInternalAPI, SpaceChildEvent } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { HierarchyPages, type HierarchyQueueEntry, type HierarchyWalk } from './hierarchypages.js';

export type HierarchyRoomserverAPI = Pick<RoomserverInternalAPI, 'queryRoomSummary' | 'queryMembershipForUser'>;

const MAX_LIMIT = 50;
const MAX_EXAMINED = 200;
const PAGE_BUDGET_MS = 15_000;
/** Join rules anyone may preview a room with (through a join or a knock). */
const OPEN_RULES = new Set(['public', 'knock', 'knock_restricted']);

type ShownRoom = RoomSummary & { children_state: SpaceChildEvent[] };

/** An optional non-negative integer query parameter; 400 when malformed. */
function intParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(raw)) throw invalidParam(`${name} must be a non-negative integer`);
  return Number(raw);
}

function boolParam(raw: string | undefined, name: string): boolean {
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw invalidParam(`${name} must be true or false`);
}

export function addHierarchyRoute(client: Hono, userAPI: ClientUserAPI, rsAPI: HierarchyRoomserverAPI, fedAPI: Pick<FederationInternalAPI, 'queryRemoteSpaceHierarchy'>, pages = new HierarchyPages()): void {
  /** Whether a room described by another server may be shown to the user (Synapse's rules). */
  const remoteRoomVisible = async (userId: string, room: RoomSummary): Promise<boolean> => {
    if ((room.join_rule !== undefined && OPEN_RULES.has(room.join_rule)) || room.world_readable) return true;
    for (const allowed of room.allowed_room_ids ?? []) {
      if ((await rsAPI.queryMembershipForUser({ room_id: allowed, user_id: userId })).membership === 'join') return true;
    }
    // Joined or invited here (an invite from another server makes a room known only by it).
    return (await rsAPI.queryRoomSummary({ room_id: room.room_id, user_id: userId })).accessible;
  };

  /** The room as the page shows it, with its children to walk and what the parent's server told of them; undefined when hidden. */
  const visit = async (walk: HierarchyWalk, entry: HierarchyQueueEntry): Promise<{ room: ShownRoom; known: Map<string, RoomSummary>; inaccessible: Set<string> } | undefined> => {
    const none = { known: new Map<string, RoomSummary>(), inaccessible: new Set<string>() };
    const local = await rsAPI.queryRoomSummary({ room_id: entry.room_id, user_id: walk.user_id, suggested_only: walk.suggested_only, include_children: true });
    if (local.room_exists) return local.accessible && local.room ? { room: { ...local.room, children_state: local.children_state ?? [] }, ...none } : undefined;

    const atMaxDepth = walk.max_depth !== undefined && entry.depth >= walk.max_depth;
    let found: { room: ShownRoom; known: Map<string, RoomSummary>; inaccessible: Set<string> } | undefined;
    if (entry.remote && (entry.remote.room_type !== 'm.space' || atMaxDepth)) {
      found = { room: { ...entry.remote, children_state: [] }, ...none };
    } else if (entry.via.length > 0) {
      const res = await fedAPI.queryRemoteSpaceHierarchy({ room_id: entry.room_id, server_names: entry.via, suggested_only: walk.suggested_only });
      if (res.error === undefined) {
        found = {
          // A room that is not a space has no children, whatever the other server says.
          room: { ...res.room, children_state: res.room.room_type === 'm.space' ? res.children_state : [] },
          known: new Map(res.children.map((c) => [c.room_id, c])),
          inaccessible: new Set(res.inaccessible_children),
        };
      }
    }
    return found && (await remoteRoomVisible(walk.user_id, found.room)) ? found : undefined;
  };

  const handler = async (c: Context): Promise<Response> => {
    // Guests too (as Synapse): they may look at world_readable and public spaces.
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const roomId = c.req.param('roomId') ?? '';
    if (!isRoomIdOfAnyFormat(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    const suggestedOnly = boolParam(c.req.query('suggested_only'), 'suggested_only');
    const maxDepth = intParam(c.req.query('max_depth'), 'max_depth');
    const rawLimit = intParam(c.req.query('limit'), 'limit');
    if (rawLimit === 0) throw invalidParam('limit must be greater than zero');
    const limit = Math.min(rawLimit ?? MAX_LIMIT, MAX_LIMIT);
    const from = c.req.query('from');

    // The space itself: one we are in and the user may see, on every page.
    const root = await rsAPI.queryRoomSummary({ room_id: roomId, user_id: me.userId });
    if (!root.room_exists || !root.accessible) throw forbidden('You are not allowed to view this room');

    let walk: HierarchyWalk;
    if (from !== undefined) {
      const saved = pages.load(from);
      if (!saved || saved.user_id !== me.userId || saved.room_id !== roomId) throw invalidParam('Unknown pagination token');
      if (saved.suggested_only !== suggestedOnly || saved.max_depth !== maxDepth) throw invalidParam('suggested_only and max_depth cannot change on paginated requests');
      walk = saved;
    } else {
      walk = { user_id: me.userId, room_id: roomId, suggested_only: suggestedOnly, max_depth: maxDepth, queue: [{ room_id: roomId, via: [], depth: 0 }], processed: [] };
    }

    const processed = new Set(walk.processed);
    const rooms: ShownRoom[] = [];
    const started = Date.now();
    let examined = 0;
    while (walk.queue.length > 0 && rooms.length < limit && examined < MAX_EXAMINED && !(rooms.length > 0 && Date.now() - started > PAGE_BUDGET_MS)) {
      const entry = walk.queue.pop()!;
      if (processed.has(entry.room_id)) continue;
      examined++;
      const seen = await visit(walk, entry);
      processed.add(entry.room_id);
      if (!seen) continue;
      rooms.push(seen.room);
      if (walk.max_depth !== undefined && entry.depth >= walk.max_depth) continue;
      // Pushed last child first, so that the first child is the next room visited.
      for (const child of [...seen.room.children_state].reverse()) {
        const via = spaceChildVia(child.content);
        if (via === undefined || !isRoomIdOfAnyFormat(child.state_key) || seen.inaccessible.has(child.state_key) || processed.has(child.state_key)) continue;
        const remote = seen.known.get(child.state_key);
        walk.queue.push({ room_id: child.state_key, via, depth: entry.depth + 1, ...(remote ? { remote } : {}) });
      }
    }
    walk.processed = [...processed];
    const out: { rooms: ShownRoom[]; next_batch?: string } = { rooms };
    if (walk.queue.some((e) => !processed.has(e.room_id))) out.next_batch = pages.save(walk);
    return jsonResponse(out);
  };
  client.get('/v1/rooms/:roomId/hierarchy', handler);
  // MSC2946's path, which some clients still use.
  client.get('/unstable/org.matrix.msc2946/rooms/:roomId/hierarchy', handler);
}
