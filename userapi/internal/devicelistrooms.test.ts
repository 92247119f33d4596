/**
 * Which remote users we keep following as memberships change, on both databases. The
 * roomserver is an in-memory table of joined members (what it answers is the point here); the
 * two-server test (devicelist.federation.test.ts) has a remote user leave for real.
 */
import type { Kysely } from 'kysely';
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { buildEvent, generateSigningKey } from '../../internal/matrix/index.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import type { HeaderedEvent, OutputRoomEvent } from '../../roomserver/api/index.js';
import { RemoteDeviceListStore } from '../storage/devicelists.js';
import { userapiMigrations } from '../storage/migrations.js';
import type { UserapiDatabase } from '../storage/tables.js';
import { SharedRooms, type DeviceListRoomserverAPI } from './devicelistrooms.js';

const HERE = 'here.test';
const ALICE = `@alice:${HERE}`;
const BOB = '@bob:remote.test';
const CAROL = '@carol:remote.test';
const key = generateSigningKey();

/** Joined members per room. */
class FakeRooms implements DeviceListRoomserverAPI {
  joined = new Map<string, Set<string>>();
  async queryRoomsForUser(req: { user_id: string }) {
    return { room_ids: [...this.joined].filter(([, m]) => m.has(req.user_id)).map(([r]) => r) };
  }
  async queryServersInRoom(req: { room_id: string }) {
    return { servers: [...new Set([...(this.joined.get(req.room_id) ?? [])].map((u) => u.slice(u.indexOf(':') + 1)))] };
  }
  async queryMembershipsForRoom(req: { room_id: string }) {
    const members = [...(this.joined.get(req.room_id) ?? [])].map((user_id) => ({ user_id, membership: 'join', event: {} as HeaderedEvent }));
    return { room_exists: this.joined.has(req.room_id), members };
  }
}

/** The output of a membership change; `current` false for one that did not change the current state. */
function member(roomId: string, userId: string, membership: string, current = true): OutputRoomEvent {
  const ev = buildEvent({ type: 'm.room.member', state_key: userId, sender: userId, room_id: roomId, content: { membership }, prev_events: [], auth_events: [], depth: 5 }, '10', HERE, key.keyId, key);
  return {
    type: 'new_room_event',
    new_room_event: { event: { room_version: '10', pdu: ev.json as HeaderedEvent['pdu'] }, adds_state_event_ids: current ? [ev.eventId] : [], removes_state_event_ids: [], latest_event_ids: [ev.eventId] },
  };
}

describeEachDatabase<UserapiDatabase>('device list rooms', (ctx) => {
  let store: RemoteDeviceListStore;
  let rs: FakeRooms;
  let rooms: SharedRooms;
  const followed = async () => [...(await store.lists([BOB, CAROL])).keys()].sort();

  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    store = new RemoteDeviceListStore(ctx.db());
  });
  beforeEach(async () => {
    for (const t of ['userapi_remote_device_lists', 'userapi_remote_device_keys', 'userapi_remote_cross_signing_keys'] as const) await ctx.db().deleteFrom(t).execute();
    rs = new FakeRooms();
    rs.joined.set('!one:here.test', new Set([ALICE, BOB, CAROL]));
    rs.joined.set('!two:here.test', new Set([ALICE, BOB]));
    rooms = new SharedRooms(rs, HERE, store);
    await store.replaceList(BOB, 'remote.test', 1, [], new Map());
    await store.replaceList(CAROL, 'remote.test', 1, [], new Map());
  });

  it('tells who shares a joined room with one of ours', async () => {
    expect(await rooms.shares(BOB)).toBe(true);
    expect(await rooms.shares('@dan:remote.test')).toBe(false);
  });

  it('a remote user who leaves is followed only while another room is shared', async () => {
    rs.joined.get('!one:here.test')!.delete(CAROL);
    await rooms.onRoomEvent(member('!one:here.test', CAROL, 'leave'));
    expect(await followed()).toEqual([BOB]);
    rs.joined.get('!one:here.test')!.delete(BOB);
    await rooms.onRoomEvent(member('!one:here.test', BOB, 'leave'));
    // Bob is still in room two with alice.
    expect(await followed()).toEqual([BOB]);
  });

  it('when our last user leaves a room, its remote members no one else shares a room with are dropped', async () => {
    // Remembered: we are in room one.
    expect(await rooms.shares(CAROL)).toBe(true);
    rs.joined.get('!one:here.test')!.delete(ALICE);
    await rooms.onRoomEvent(member('!one:here.test', ALICE, 'leave'));
    expect(await followed()).toEqual([BOB]);
    expect(await rooms.shares(CAROL)).toBe(false);
  });

  it('joins and changes that are not of the current state drop no one', async () => {
    rs.joined.get('!one:here.test')!.delete(CAROL);
    await rooms.onRoomEvent(member('!one:here.test', CAROL, 'leave', false));
    await rooms.onRoomEvent(member('!one:here.test', CAROL, 'join'));
    await rooms.onRoomEvent({ type: 'purge_room', purge_room: { room_id: '!one:here.test' } });
    expect(await followed()).toEqual([BOB, CAROL]);
  });
});
