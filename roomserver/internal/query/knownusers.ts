/**
 * The user directory's source (POST /user_directory/search): the users a searcher may find are
 * those joined to a room the searcher is joined to, and those joined to a public room, one whose
 * join rule is `public` or whose history is `world_readable` and that a user of this server is
 * in (the spec's default, and Synapse's without `search_all_users`). Names and avatars come from
 * each user's member event.
 *
 * Whether a room is public is read from its current state once per state snapshot and cached:
 * a state change gives the room a new snapshot, so the cache never answers from stale state.
 */
import type { KnownUser, QueryKnownUsersRequest, QueryKnownUsersResponse } from '../../api/index.js';
import { inChunks } from '../../../internal/sqlutil/index.js';
import type { EventStore } from '../../storage/eventstore.js';
import type { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { EventLoader } from '../eventloader.js';

/** Candidates looked at per query, at most: bounds the work of a very short search term. */
const MAX_CANDIDATES = 20_000;

export class KnownUsers {
  private readonly publicByRoom = new Map<number, { snapshotNid: number; isPublic: boolean }>();

  constructor(
    private readonly serverName: string,
    private readonly events: EventStore,
    private readonly snapshots: StateSnapshotStore,
    private readonly loader: EventLoader,
  ) {}

  private async isPublic(room: { roomNid: number; roomVersion: string; snapshotNid: number }): Promise<boolean> {
    const cached = this.publicByRoom.get(room.roomNid);
    if (cached && cached.snapshotNid === room.snapshotNid) return cached.isPublic;
    let isPublic = false;
    if (room.snapshotNid !== 0) {
      const types = await this.events.typeNids(['m.room.join_rules', 'm.room.history_visibility']);
      const empty = (await this.events.stateKeyNids([''])).get('')!;
      const found = await this.snapshots.lookup(room.snapshotNid, [...types.values()].map((typeNid) => ({ typeNid, stateKeyNid: empty })));
      const loaded = await this.loader.byNids([...found.values()], room.roomVersion);
      for (const { event } of loaded.values()) {
        if (event.type === 'm.room.join_rules' && event.content['join_rule'] === 'public') isPublic = true;
        if (event.type === 'm.room.history_visibility' && event.content['history_visibility'] === 'world_readable') isPublic = true;
      }
    }
    this.publicByRoom.set(room.roomNid, { snapshotNid: room.snapshotNid, isPublic });
    return isPublic;
  }

  async query(req: QueryKnownUsersRequest): Promise<QueryKnownUsersResponse> {
    const db = this.events.db;
    const rooms = await db.selectFrom('roomserver_rooms').select(['room_nid', 'room_version', 'state_snapshot_nid']).execute();
    const mine = new Set(
      (await db.selectFrom('roomserver_membership').select('room_nid').where('user_id', '=', req.user_id).where('membership', '=', 'join').execute()).map((r) => Number(r.room_nid)),
    );
    const visible = new Map<number, string>();
    const publicRooms = new Set<number>();
    for (const r of rooms) {
      const room = { roomNid: Number(r.room_nid), roomVersion: r.room_version, snapshotNid: Number(r.state_snapshot_nid) };
      if (room.snapshotNid === 0) continue; // known only through an invite: not held here
      const isPublic = await this.isPublic(room);
      if (isPublic) publicRooms.add(room.roomNid);
      if (mine.has(room.roomNid) || isPublic) visible.set(room.roomNid, room.roomVersion);
    }
    const members = await inChunks([...visible.keys()], (chunk) =>
      db.selectFrom('roomserver_membership').select(['room_nid', 'user_id', 'event_nid']).where('room_nid', 'in', chunk).where('membership', '=', 'join').execute(),
    );
    // A public room counts only while a user of ours is in it: once this server has left, its
    // idea of who is there goes stale.
    const suffix = `:${this.serverName}`;
    const withLocal = new Set(members.filter((m) => m.user_id.endsWith(suffix)).map((m) => Number(m.room_nid)));
    const term = req.search_term.trim().toLowerCase();
    // One member event per user (the first seen): names differ per room only when set per room.
    const byUser = new Map<string, { eventNid: number; roomVersion: string }>();
    for (const m of members) {
      if (byUser.size >= MAX_CANDIDATES) break;
      if (!withLocal.has(Number(m.room_nid))) continue;
      // Sharing a private room is between two users: the searcher finds themself only in a public room.
      if (m.user_id === req.user_id && !publicRooms.has(Number(m.room_nid))) continue;
      if (!byUser.has(m.user_id)) byUser.set(m.user_id, { eventNid: Number(m.event_nid), roomVersion: visible.get(Number(m.room_nid))! });
    }
    const out: KnownUser[] = [];
    const byVersion = new Map<string, number[]>();
    for (const { eventNid, roomVersion } of byUser.values()) byVersion.set(roomVersion, [...(byVersion.get(roomVersion) ?? []), eventNid]);
    const contentByNid = new Map<number, Record<string, unknown>>();
    for (const [version, nids] of byVersion) for (const [nid, l] of await this.loader.byNids(nids, version)) contentByNid.set(nid, l.event.content);
    for (const [userId, { eventNid }] of [...byUser].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const content = contentByNid.get(eventNid) ?? {};
      const name = typeof content['displayname'] === 'string' ? content['displayname'] : undefined;
      const avatar = typeof content['avatar_url'] === 'string' ? content['avatar_url'] : undefined;
      if (term !== '' && !userId.toLowerCase().includes(term) && !(name !== undefined && name.toLowerCase().includes(term))) continue;
      out.push({ user_id: userId, ...(name !== undefined ? { display_name: name } : {}), ...(avatar !== undefined ? { avatar_url: avatar } : {}) });
      if (out.length >= req.limit) break;
    }
    return { users: out };
  }
}
