/**
 * PushService on room events in batches: the room's members are read from the roomserver once
 * and then followed from the room's own events (joins, leaves, display names), a batch's
 * notifications are stored together with one count publish per (user, room), and a user with
 * a pusher still gets one push per event carrying the badge as of that event.
 */
import type { Kysely } from 'kysely';
import pino from 'pino';
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { buildEvent, generateSigningKey, type Event, type JsonObject } from '../../internal/matrix/index.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import type { OutputRoomEvent, QueryMembershipsForRoomResponse } from '../../roomserver/api/index.js';
import type { OutputNotificationData } from '../api/push.js';
import { userapiMigrations } from '../storage/migrations.js';
import { PushStore } from '../storage/push.js';
import type { UserapiDatabase } from '../storage/tables.js';
import { PushService, type PushRoomserverAPI } from './push.js';
import type { GatewayNotification, PushGatewayClient } from './pushgateway.js';

const key = generateSigningKey();
const SERVER = 'hs.test';

describeEachDatabase<UserapiDatabase>('push on room events in batches', (ctx) => {
  let store: PushStore;
  let push: PushService;
  /** What the roomserver answers for the room's joined members: set per test. */
  let joined: string[] = [];
  let memberReads = 0;
  const published: OutputNotificationData[] = [];
  const pushed: Array<{ userId: string; n: GatewayNotification }> = [];
  let roomCount = 0;

  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    store = new PushStore(ctx.db());
    const rsAPI: PushRoomserverAPI = {
      queryMembershipsForRoom: async (): Promise<QueryMembershipsForRoomResponse> => {
        memberReads++;
        return { room_exists: true, members: joined.map((u) => ({ user_id: u, membership: 'join', event: { room_version: '10', pdu: { content: { membership: 'join' } } as unknown as Event['json'] } })) };
      },
      queryLatestEventsAndState: async () => ({ room_exists: true, latest_event_ids: [], depth: 0, state_events: [] }),
      queryEventsById: async () => ({ events: [] }),
    };
    const gateway = { send: (_url: string, userId: string, n: GatewayNotification) => void pushed.push({ userId, n }) } as unknown as PushGatewayClient;
    push = new PushService({ serverName: SERVER, store, rsAPI, pushRulesContent: async () => undefined, publish: async (m) => void published.push(m), gateway, log: pino({ level: 'silent' }) });
  });
  beforeEach(() => {
    memberReads = 0;
    published.length = 0;
    pushed.length = 0;
  });

  function room() {
    const roomId = `!push${roomCount++}:${SERVER}`;
    let depth = 0;
    const event = (sender: string, type: string, content: JsonObject, stateKey?: string): Event =>
      buildEvent({ type, sender, room_id: roomId, content, prev_events: [], auth_events: [], depth: ++depth, ...(stateKey !== undefined ? { state_key: stateKey } : {}) }, '10', SERVER, key.keyId, key);
    const out = (e: Event, adds: string[] = [], removes: string[] = []): OutputRoomEvent => ({ type: 'new_room_event', new_room_event: { event: { room_version: '10', pdu: e.json }, adds_state_event_ids: adds, removes_state_event_ids: removes, latest_event_ids: [e.eventId] } });
    return {
      roomId,
      message: (sender: string, body: string) => out(event(sender, 'm.room.message', { msgtype: 'm.text', body })),
      member: (userId: string, membership: string, extra: JsonObject = {}) => {
        const e = event(userId, 'm.room.member', { membership, ...extra }, userId);
        return out(e, [e.eventId]);
      },
      named: (sender: string, name: string) => {
        const e = event(sender, 'm.room.name', { name }, '');
        return out(e, [e.eventId]);
      },
      /** A state change that brings several events at once (a join over federation, state resolution). */
      resolved: (sender: string) => {
        const e = event(sender, 'm.room.topic', { topic: 'resolved' }, '');
        return out(e, [e.eventId, `$${'x'.repeat(43)}`]);
      },
    };
  }
  const unread = async (userId: string, roomId: string) => (await store.counts(userId, [roomId])).get(roomId)?.notification_count ?? 0;

  it('reads the members once, then follows joins, leaves and display names from the events', async () => {
    const r = room();
    const [alice, bob, carol] = [`@alice:${SERVER}`, '@bob:remote.test', `@carol:${SERVER}`];
    joined = [alice, bob];
    await push.onRoomEvents([r.message(bob, 'one')]);
    expect([await unread(alice, r.roomId), await unread(carol, r.roomId)]).toEqual([1, 0]);

    // Carol joins; the roomserver would still say the old members: the join event itself counts.
    await push.onRoomEvents([r.member(carol, 'join', { displayname: 'Carol C' }), r.message(bob, 'two, for Carol C')]);
    expect([await unread(alice, r.roomId), await unread(carol, r.roomId)]).toEqual([2, 1]);
    // Alice leaves in the middle of a batch: the message before it still notifies her, the one after does not.
    await push.onRoomEvents([r.message(bob, 'three'), r.member(alice, 'leave'), r.message(bob, 'four')]);
    expect([await unread(alice, r.roomId), await unread(carol, r.roomId)]).toEqual([3, 3]);
    expect(memberReads).toBe(1);

    // A change it cannot follow event by event makes it read the room again.
    joined = [bob, carol];
    await push.onRoomEvents([r.resolved(bob), r.message(bob, 'five')]);
    expect(memberReads).toBe(2);
    expect([await unread(alice, r.roomId), await unread(carol, r.roomId)]).toEqual([3, 4]);
  });

  it('uses a display name learnt from a member event for mentions', async () => {
    const r = room();
    const [dave, bob] = [`@dave:${SERVER}`, '@bob:remote.test'];
    joined = [dave, bob];
    // Read once (without a display name), then Dave takes one with a member event.
    await push.onRoomEvents([r.message(bob, 'hello there'), r.member(dave, 'join', { displayname: 'Davina' }), r.message(bob, 'hello Davina')]);
    expect(memberReads).toBe(1);
    const [n] = await store.notifications(dave, undefined, 10, true);
    expect(n?.event['content']).toMatchObject({ body: 'hello Davina' });
  });

  it('stores a batch together and publishes each changed count once, with its final value', async () => {
    const r = room();
    const [erin, bob] = [`@erin:${SERVER}`, '@bob:remote.test'];
    joined = [erin, bob];
    await push.onRoomEvents([r.message(bob, 'a'), r.message(bob, 'b'), r.message(bob, 'c')]);
    expect(published).toEqual([{ user_id: erin, room_id: r.roomId, notification_count: 3, highlight_count: 0 }]);
    // A batch delivered again changes nothing and publishes nothing.
    expect(await unread(erin, r.roomId)).toBe(3);
  });

  it('pushes each event with the badge as of that event when the user has a pusher', async () => {
    const r = room();
    const [fred, bob] = [`@fred:${SERVER}`, '@bob:remote.test'];
    joined = [fred, bob];
    await store.setPusher({ pushkey: 'k', kind: 'http', app_id: 'app', app_display_name: 'A', device_display_name: 'D', lang: 'en', data: { url: 'https://gw.test/_matrix/push/v1/notify' }, userId: fred, deviceId: 'DEV', pushkeyTs: 1 }, false);
    // The room is named later in the same batch: the earlier pushes still say what it was then.
    await push.onRoomEvents([r.message(bob, 'x'), r.message(bob, 'y'), r.message(bob, 'z'), r.named(bob, 'Renamed'), r.message(bob, 'w')]);
    expect(pushed.map((p) => [p.userId, p.n['content'], (p.n['counts'] as { unread: number }).unread, p.n['room_name']])).toEqual([
      [fred, { msgtype: 'm.text', body: 'x' }, 1, undefined],
      [fred, { msgtype: 'm.text', body: 'y' }, 2, undefined],
      [fred, { msgtype: 'm.text', body: 'z' }, 3, undefined],
      [fred, { msgtype: 'm.text', body: 'w' }, 4, 'Renamed'],
    ]);
    expect(published.map((p) => p.notification_count)).toEqual([1, 2, 3, 4]);
  });
});
