/**
 * One room of a space hierarchy (Client-Server `GET /hierarchy`, Server-Server
 * `GET /hierarchy/{roomId}`): its summary (the directory entry of ./publicrooms.ts, plus room
 * version, encryption and the rooms a restricted room allows), its children when it is a space,
 * and whether the asker may see it at all.
 *
 * Who may see a room's summary follows the spec's list for the client endpoint and Synapse for
 * servers: anyone when the room is world_readable; else anyone not banned from it when it is
 * public or knockable (knock, knock_restricted, in room versions that have them); else a user
 * who is joined or invited, or who is joined to a room a restricted room allows; a server with a
 * user joined or invited there, or joined to a room a restricted room allows.
 */
import { roomVersion as lookupRoomVersion, type JsonObject, type PDUJson } from '../../../internal/matrix/index.js';
import { compareSpaceChildren, isSuggestedChild, spaceChildVia } from '../../../internal/matrix/spacechildren.js';
import type { QueryRoomSummaryRequest, QueryRoomSummaryResponse, RoomSummary, SpaceChildEvent } from '../../api/index.js';
import type { EventStore, RoomInfo } from '../../storage/eventstore.js';
import type { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { EventLoader } from '../eventloader.js';
import { PUBLIC_ROOM_STATE, publicRoomEntry } from './publicrooms.js';

const SUMMARY_STATE = [...PUBLIC_ROOM_STATE, { type: 'm.room.encryption', state_key: '' }];
const ENCRYPTION_ALGORITHMS = new Set(['m.megolm.v1.aes-sha2']);
/** A space with more children than this shows the first ones (in the spec's order). */
const MAX_CHILDREN = 1000;

export class RoomSummaries {
  constructor(
    private readonly serverName: string,
    private readonly events: EventStore,
    private readonly snapshots: StateSnapshotStore,
    private readonly loader: EventLoader,
  ) {}

  async query(req: QueryRoomSummaryRequest): Promise<QueryRoomSummaryResponse> {
    const room = await this.events.room(req.room_id);
    const joined = room && room.stateSnapshotNid !== 0 ? await this.events.members(room.roomNid, ['join']) : [];
    if (!room || !joined.some((m) => m.userId.endsWith(`:${this.serverName}`))) {
      // Not in the room; a user may still hold an invite to it (from another server).
      const invited = room !== undefined && req.user_id !== undefined && (await this.events.membership(room.roomNid, req.user_id))?.membership === 'invite';
      return { room_exists: false, accessible: invited };
    }
    const state = await this.currentState(room, SUMMARY_STATE);
    const contentOf = (type: string): JsonObject | undefined => state.get(type)?.content as JsonObject | undefined;
    const joinRules = contentOf('m.room.join_rules');
    const allowed = this.allowedRooms(room, joinRules);
    if (!(await this.accessible(room, req, contentOf, allowed, joined))) return { room_exists: true, accessible: false };

    const summary: RoomSummary = { ...publicRoomEntry(room.roomId, contentOf, joined.length), room_version: room.roomVersion };
    const algorithm = contentOf('m.room.encryption')?.['algorithm'];
    if (typeof algorithm === 'string' && ENCRYPTION_ALGORITHMS.has(algorithm)) summary.encryption = algorithm;
    if (allowed.length > 0) summary.allowed_room_ids = allowed;
    const out: QueryRoomSummaryResponse = { room_exists: true, accessible: true, room: summary };
    if (req.include_children) out.children_state = summary.room_type === 'm.space' ? await this.children(room, req.suggested_only === true) : [];
    return out;
  }

  /** The state events of these (type, state key) pairs in the room's current state, by type. */
  private async currentState(room: RoomInfo, wanted: ReadonlyArray<{ type: string; state_key: string }>): Promise<Map<string, PDUJson>> {
    const types = await this.events.typeNids(wanted.map((w) => w.type));
    const keys = await this.events.stateKeyNids(wanted.map((w) => w.state_key));
    const found = await this.snapshots.lookup(
      room.stateSnapshotNid,
      wanted.map((w) => ({ typeNid: types.get(w.type)!, stateKeyNid: keys.get(w.state_key)! })),
    );
    const loaded = await this.loader.byNids([...found.values()], room.roomVersion);
    return new Map([...loaded.values()].map((l) => [l.event.type, l.event.json]));
  }

  /** The room IDs a restricted room's join rules allow (m.room_membership entries); none for other rooms. */
  private allowedRooms(room: RoomInfo, joinRules: JsonObject | undefined): string[] {
    const rv = lookupRoomVersion(room.roomVersion);
    const rule = joinRules?.['join_rule'];
    const restricted = (rule === 'restricted' && rv?.restrictedJoinRule === true) || (rule === 'knock_restricted' && rv?.knockRestrictedJoinRule === true);
    const allow = joinRules?.['allow'];
    if (!restricted || !Array.isArray(allow)) return [];
    const ids = allow.flatMap((a) =>
      typeof a === 'object' && a !== null && !Array.isArray(a) && a['type'] === 'm.room_membership' && typeof a['room_id'] === 'string' ? [a['room_id']] : [],
    );
    return [...new Set(ids)];
  }

  private async accessible(
    room: RoomInfo,
    req: QueryRoomSummaryRequest,
    contentOf: (type: string) => JsonObject | undefined,
    allowed: readonly string[],
    joined: ReadonlyArray<{ userId: string }>,
  ): Promise<boolean> {
    const rv = lookupRoomVersion(room.roomVersion);
    if (contentOf('m.room.history_visibility')?.['history_visibility'] === 'world_readable') return true;
    const m = req.user_id !== undefined ? (await this.events.membership(room.roomNid, req.user_id))?.membership : undefined;
    // A banned user may neither join nor knock: only a world_readable room is theirs to see.
    if (m === 'ban') return false;
    const rule = contentOf('m.room.join_rules')?.['join_rule'];
    if (rule === 'public' || (rule === 'knock' && rv?.knockJoinRule === true) || (rule === 'knock_restricted' && rv?.knockRestrictedJoinRule === true)) return true;
    if (req.user_id !== undefined) {
      if (m === 'join' || m === 'invite') return true;
      for (const id of allowed) {
        const other = await this.events.room(id);
        if (other && (await this.events.membership(other.roomNid, req.user_id))?.membership === 'join') return true;
      }
      return false;
    }
    if (req.server_name !== undefined) {
      const suffix = `:${req.server_name}`;
      if (joined.some((m) => m.userId.endsWith(suffix))) return true;
      if ((await this.events.members(room.roomNid, ['invite'])).some((m) => m.userId.endsWith(suffix))) return true;
      for (const id of allowed) {
        const other = await this.events.room(id);
        if (other && (await this.events.members(other.roomNid, ['join'])).some((m) => m.userId.endsWith(suffix))) return true;
      }
    }
    return false;
  }

  /** The space's m.space.child events that name a child (a non-empty `via`), in the spec's order. */
  private async children(room: RoomInfo, suggestedOnly: boolean): Promise<SpaceChildEvent[]> {
    const typeNid = (await this.events.typeNids(['m.space.child'])).get('m.space.child')!;
    const nids = (await this.snapshots.load(room.stateSnapshotNid)).filter((e) => e.typeNid === typeNid).map((e) => e.eventNid);
    const loaded = await this.loader.byNids(nids, room.roomVersion);
    const out: SpaceChildEvent[] = [];
    for (const { event } of loaded.values()) {
      if (event.stateKey === undefined || spaceChildVia(event.content) === undefined) continue;
      if (suggestedOnly && !isSuggestedChild(event.content)) continue;
      out.push({ type: event.type, state_key: event.stateKey, content: event.content, sender: event.sender, origin_server_ts: event.originServerTs });
    }
    return out.sort(compareSpaceChildren).slice(0, MAX_CHILDREN);
  }
}
