/**
 * Which other servers' users share a room with ours, for following device lists: we follow a
 * user only while one of our users is joined to a room they are joined to, because only then
 * does their server send us their updates. When that ends (they leave, or our last user
 * leaves the room) we stop following them: a list we keep without updates would go stale
 * silently, and if the room is shared again the next query fetches the list afresh.
 */
import { Event } from '../../internal/matrix/index.js';
import type { OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { RemoteDeviceListStore } from '../storage/devicelists.js';

export type DeviceListRoomserverAPI = Pick<RoomserverInternalAPI, 'queryRoomsForUser' | 'queryServersInRoom' | 'queryMembershipsForRoom'>;

/** Rooms of a user looked at for one of ours: a user in more shares one among the first few if any. */
const ROOMS_LOOKED_AT = 50;
/** Whether we are in a room is remembered this long (the sweep asks about many users of the same rooms). */
const ROOM_MEMO_MS = 60_000;
const ROOM_MEMO_SIZE = 10_000;

function serverOf(userId: string): string {
  const i = userId.indexOf(':');
  return i < 0 ? '' : userId.slice(i + 1);
}

export class SharedRooms {
  private readonly memo = new Map<string, { ours: boolean; until: number }>();

  constructor(
    private readonly rsAPI: DeviceListRoomserverAPI,
    private readonly serverName: string,
    private readonly store: Pick<RemoteDeviceListStore, 'lists' | 'untrack'>,
  ) {}

  /** Whether one of our users is joined to a room the user is joined to. */
  readonly shares = async (userId: string): Promise<boolean> => {
    const { room_ids: rooms } = await this.rsAPI.queryRoomsForUser({ user_id: userId, membership: 'join' });
    for (const roomId of rooms.slice(0, ROOMS_LOOKED_AT)) if (await this.oursIn(roomId)) return true;
    return false;
  };

  /**
   * A membership change that ends a join: the user who left (remote), or every remote member
   * of a room our server is no longer in (local), is no longer followed unless another room
   * is shared.
   */
  async onRoomEvent(out: OutputRoomEvent): Promise<void> {
    if (out.type !== 'new_room_event') return;
    const { event: headered, adds_state_event_ids: added } = out.new_room_event;
    const event = Event.fromPDU(headered.pdu, headered.room_version);
    const target = event.stateKey;
    // Only a change of the current state (an old or soft-failed event changes nothing).
    if (event.type !== 'm.room.member' || target === undefined || !added.includes(event.eventId)) return;
    const roomId = event.roomId;
    this.memo.delete(roomId);
    if (event.content['membership'] === 'join') return;
    let candidates: string[];
    if (serverOf(target) !== this.serverName) candidates = [target];
    else {
      if (await this.oursIn(roomId)) return;
      const { members } = await this.rsAPI.queryMembershipsForRoom({ room_id: roomId, memberships: ['join'] });
      candidates = members.map((m) => m.user_id).filter((u) => serverOf(u) !== this.serverName);
    }
    const followed = [...(await this.store.lists(candidates)).keys()];
    const gone: string[] = [];
    for (const userId of followed) if (!(await this.shares(userId))) gone.push(userId);
    await this.store.untrack(gone);
  }

  private async oursIn(roomId: string): Promise<boolean> {
    const known = this.memo.get(roomId);
    if (known && known.until > Date.now()) return known.ours;
    const ours = (await this.rsAPI.queryServersInRoom({ room_id: roomId })).servers.includes(this.serverName);
    this.memo.delete(roomId);
    if (this.memo.size >= ROOM_MEMO_SIZE) this.memo.delete(this.memo.keys().next().value!);
    this.memo.set(roomId, { ours, until: Date.now() + ROOM_MEMO_MS });
    return ours;
  }
}
