/**
 * The room directory's listing (Client-Server and Server-Server /publicRooms): the published
 * rooms, each described from its current state, filtered, largest first and then by room ID so
 * that pages are stable. One implementation for both APIs; each pages with its own tokens.
 */
import type { JsonObject } from '../../../internal/matrix/index.js';
import type { PublicRoomEntry, QueryPublicRoomsRequest, QueryPublicRoomsResponse } from '../../api/index.js';

/** The state a directory entry is built from. */
export const PUBLIC_ROOM_STATE = [
  'm.room.create',
  'm.room.name',
  'm.room.topic',
  'm.room.canonical_alias',
  'm.room.avatar',
  'm.room.join_rules',
  'm.room.history_visibility',
  'm.room.guest_access',
].map((type) => ({ type, state_key: '' }));

const OPTIONAL: ReadonlyArray<[keyof PublicRoomEntry, string, string]> = [
  ['name', 'm.room.name', 'name'],
  ['topic', 'm.room.topic', 'topic'],
  ['canonical_alias', 'm.room.canonical_alias', 'alias'],
  ['avatar_url', 'm.room.avatar', 'url'],
  ['join_rule', 'm.room.join_rules', 'join_rule'],
  ['room_type', 'm.room.create', 'type'],
];

function text(content: JsonObject | undefined, key: string): string | undefined {
  const v = content?.[key];
  return typeof v === 'string' ? v : undefined;
}

/** A directory entry from a room's state (by type) and its joined member count. */
export function publicRoomEntry(roomId: string, contentOf: (type: string) => JsonObject | undefined, joined: number): PublicRoomEntry {
  const entry: PublicRoomEntry = {
    room_id: roomId,
    num_joined_members: joined,
    world_readable: text(contentOf('m.room.history_visibility'), 'history_visibility') === 'world_readable',
    guest_can_join: text(contentOf('m.room.guest_access'), 'guest_access') === 'can_join',
  };
  for (const [field, type, key] of OPTIONAL) {
    const v = text(contentOf(type), key);
    // An empty name or topic is how clients unset one: nothing to show.
    if (v !== undefined && v !== '') (entry as unknown as Record<string, unknown>)[field] = v;
  }
  return entry;
}

/** Filters, orders and pages `rooms` as the request asks. */
export function listPublicRooms(rooms: PublicRoomEntry[], req: QueryPublicRoomsRequest): QueryPublicRoomsResponse {
  let out = rooms;
  if (req.search_term !== undefined && req.search_term !== '') {
    const term = req.search_term.toLowerCase();
    out = out.filter((r) => [r.name, r.topic, r.canonical_alias].some((v) => v?.toLowerCase().includes(term)));
  }
  if (req.room_types !== undefined && req.room_types.length > 0) {
    const types = req.room_types;
    out = out.filter((r) => types.includes(r.room_type ?? null));
  }
  out.sort((a, b) => b.num_joined_members - a.num_joined_members || (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : 0));
  const end = req.limit === 0 ? out.length : Math.min(out.length, req.offset + req.limit);
  return { chunk: out.slice(req.offset, end), total: out.length };
}
