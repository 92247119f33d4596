/** performSendEvent on a real roomserver (both databases): messages sent at once go as one chain, in groups. */
import type { Kysely } from 'kysely';
import pino from 'pino';
import { beforeAll, expect, it, vi } from 'vitest';
import { Event, generateSigningKey } from '../../../internal/matrix/index.js';
import { signingIdentityFromKey } from '../../../internal/signingidentity.js';
import { runMigrations } from '../../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../../internal/sqlutil/testing.js';
import type { OutputNewRoomEvent, OutputRoomEvent } from '../../api/index.js';
import { DirectoryStore } from '../../storage/directory.js';
import { EventStore } from '../../storage/eventstore.js';
import { roomserverMigrations } from '../../storage/migrations.js';
import { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { RoomserverDatabase } from '../../storage/tables.js';
import { RoomserverInternalAPIImpl } from '../api.js';
import { EventLoader } from '../eventloader.js';
import { Inputer } from '../input/inputer.js';
import { TestRoom } from '../input/testroom.js';

describeEachDatabase<RoomserverDatabase>('roomserver performSendEvent', (ctx) => {
  let api: RoomserverInternalAPIImpl;
  let inputer: Inputer;
  const published: Array<{ roomId: string; output: OutputRoomEvent }> = [];
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'roomserver', roomserverMigrations);
    const db = ctx.db();
    const events = new EventStore(db);
    const snapshots = new StateSnapshotStore(db);
    const loader = new EventLoader(events);
    inputer = new Inputer({ serverName: 'hs.test', events, snapshots, loader, log: pino({ level: 'silent' }), publish: async (roomId, _id, output) => void published.push({ roomId, output }) });
    const identity = signingIdentityFromKey('hs.test', generateSigningKey());
    api = new RoomserverInternalAPIImpl('hs.test', inputer, events, snapshots, loader, new DirectoryStore(db), undefined, identity);
  });

  const newRoom = async (version: string) => {
    const room = new TestRoom(version);
    const start = room.start();
    const res = await api.inputRoomEvents({ events: start.map((e) => room.input(e)) });
    expect(res.results.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    // The last of the room's first events, whose state the test room knows (to build on it by hand).
    return Object.assign(room, { lastStart: start.at(-1)!.eventId });
  };
  /** The room's new messages as published, with their event IDs. */
  const messages = (roomId: string): Array<OutputNewRoomEvent & { event_id: string }> =>
    published
      .filter((p) => p.roomId === roomId && p.output.type === 'new_room_event')
      .map((p) => (p.output as { new_room_event: OutputNewRoomEvent }).new_room_event)
      .filter((o) => o.event.pdu.type === 'm.room.message')
      .map((o) => ({ ...o, event_id: Event.fromPDU(o.event.pdu, o.event.room_version).eventId }));

  for (const version of ['10', '12']) {
    it(`room version ${version}: messages sent at once are built in groups, each on the one before, none lost`, async () => {
      const room = await newRoom(version);
      const groups = vi.spyOn(inputer, 'inputBuiltMany');
      const before = groups.mock.calls.length;
      const sends = Array.from({ length: 30 }, (_, i) =>
        api.performSendEvent({ user_id: room.creator, room_id: room.roomId, type: 'm.room.message', content: { body: `m${i}` }, transaction_id: { device_id: 'DEV', transaction_id: `t${i}` } }),
      );
      const answers = await Promise.all(sends);
      expect(answers.map((a) => a.error)).toEqual(Array(30).fill(undefined));
      // Fewer turns of the room's queue than messages: those waiting went together.
      const turns = groups.mock.calls.length - before;
      expect(turns).toBeGreaterThan(0);
      expect(turns).toBeLessThan(30);
      groups.mockRestore();

      const outs = messages(room.roomId);
      expect(outs.map((o) => o.event.pdu.content?.['body'])).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`));
      expect(outs.map((o) => o.event_id)).toEqual(answers.map((a) => a.event_id));
      // One chain: each message's only prev event is the message before it, depth one more.
      for (let i = 1; i < outs.length; i++) {
        expect(outs[i]!.event.pdu.prev_events).toEqual([outs[i - 1]!.event_id]);
        expect(outs[i]!.event.pdu.depth).toBe((outs[i - 1]!.event.pdu.depth as number) + 1);
      }
      expect(outs.map((o) => o.transaction_id?.transaction_id)).toEqual(Array.from({ length: 30 }, (_, i) => `t${i}`));
      const latest = await api.queryLatestEventsAndState({ room_id: room.roomId, state_to_fetch: [] });
      expect(latest.latest_event_ids).toEqual([outs.at(-1)!.event_id]);
    });
  }

  it('refuses a sender the room does not allow without breaking the chain of the others', async () => {
    const room = await newRoom('10');
    const sends = Array.from({ length: 10 }, (_, i) =>
      api.performSendEvent({ user_id: i === 4 ? '@mallory:hs.test' : room.creator, room_id: room.roomId, type: 'm.room.message', content: { body: `m${i}` } }),
    );
    const answers = await Promise.all(sends);
    expect(answers.map((a) => a.error ?? 'ok')).toEqual(['ok', 'ok', 'ok', 'ok', 'forbidden', 'ok', 'ok', 'ok', 'ok', 'ok']);
    const outs = messages(room.roomId);
    expect(outs.map((o) => o.event.pdu.content?.['body'])).toEqual(['m0', 'm1', 'm2', 'm3', 'm5', 'm6', 'm7', 'm8', 'm9']);
    for (let i = 1; i < outs.length; i++) expect(outs[i]!.event.pdu.prev_events).toEqual([outs[i - 1]!.event_id]);
  });

  it('answers too_large for an event too big once built, alone or among others sent at once', async () => {
    const room = await newRoom('10');
    const big = 'x'.repeat(65_400); // under the body limit, over 65,536 bytes once built and signed
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => api.performSendEvent({ user_id: room.creator, room_id: room.roomId, type: 'm.room.message', content: { body: i === 2 ? big : `m${i}` } })),
    );
    expect(answers.map((a) => a.error ?? 'ok')).toEqual(['ok', 'ok', 'too_large', 'ok', 'ok', 'ok']);
    const outs = messages(room.roomId);
    expect(outs.map((o) => o.event.pdu.content?.['body'])).toEqual(['m0', 'm1', 'm3', 'm4', 'm5']);
    for (let i = 1; i < outs.length; i++) expect(outs[i]!.event.pdu.prev_events).toEqual([outs[i - 1]!.event_id]);
    const state = await api.performSendEvent({ user_id: room.creator, room_id: room.roomId, type: 'x.big', state_key: '', content: { body: big } });
    expect(state.error).toBe('too_large');
  });

  it('builds on the state as it changes between sends: a join lets a new member talk, new power levels stop him', async () => {
    const room = await newRoom('10');
    const first = await api.performSendEvent({ user_id: room.creator, room_id: room.roomId, type: 'm.room.message', content: { body: 'hi' } });
    expect(first.error).toBeUndefined();
    // Bob joins: a state change, which the next message's auth events must see.
    const latest = await api.queryLatestEventsAndState({ room_id: room.roomId, state_to_fetch: [] });
    const bobJoin = await api.performSendEvent({ user_id: '@bob:hs.test', room_id: room.roomId, type: 'm.room.member', state_key: '@bob:hs.test', content: { membership: 'join' } });
    expect(bobJoin.error).toBeUndefined();
    expect(latest.latest_event_ids).toEqual([first.event_id]);
    const said = await api.performSendEvent({ user_id: '@bob:hs.test', room_id: room.roomId, type: 'm.room.message', content: { body: 'bob here' } });
    expect(said.error).toBeUndefined();
    const [mine] = messages(room.roomId).filter((o) => o.event_id === said.event_id);
    expect(mine!.event.pdu.prev_events).toEqual([bobJoin.event_id]);
    expect(mine!.event.pdu.auth_events).toContain(bobJoin.event_id);
    const power = await api.performSendEvent({ user_id: room.creator, room_id: room.roomId, type: 'm.room.power_levels', state_key: '', content: { users: { [room.creator]: 100 }, users_default: 0, events_default: 50, state_default: 50, ban: 50, kick: 50 } });
    expect(power.error).toBeUndefined();
    const refused = await api.performSendEvent({ user_id: '@bob:hs.test', room_id: room.roomId, type: 'm.room.message', content: { body: 'muted?' } });
    expect(refused.error).toBe('forbidden');
    const allowed = await api.performSendEvent({ user_id: room.creator, room_id: room.roomId, type: 'm.room.message', content: { body: 'still me' } });
    expect(allowed.error).toBeUndefined();
    const [last] = messages(room.roomId).filter((o) => o.event_id === allowed.event_id);
    expect(last!.event.pdu.prev_events).toEqual([power.event_id]);
    expect(last!.event.pdu.auth_events).toContain(power.event_id);
  });

  it("publishes a redaction's effect before the redaction, and an event's own redaction (which waited for it) after the event", async () => {
    const room = await newRoom('10');
    const msg = await api.performSendEvent({ user_id: room.creator, room_id: room.roomId, type: 'm.room.message', content: { body: 'oops' } });
    const red = await api.performSendEvent({ user_id: room.creator, room_id: room.roomId, type: 'm.room.redaction', redacts: msg.event_id!, content: { reason: 'typo' } });
    expect(red.error).toBeUndefined();
    const kinds = (roomId: string) =>
      published
        .filter((p) => p.roomId === roomId)
        .map((p) => (p.output.type === 'redacted_event' ? `redacted ${p.output.redacted_event.redacted_event_id}` : p.output.type === 'new_room_event' ? `new ${Event.fromPDU(p.output.new_room_event.event.pdu, '10').eventId}` : p.output.type));
    // A reader who sees the redaction finds its target redacted already.
    expect(kinds(room.roomId).slice(-2)).toEqual([`redacted ${msg.event_id}`, `new ${red.event_id}`]);

    // A redaction that comes before its target (as over federation): the target is stored, then redacted.
    const target = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'late' } }, [room.lastStart]);
    const early = room.build({ type: 'm.room.redaction', sender: room.creator, content: {}, redacts: target.eventId }, [room.lastStart]);
    const res = await api.inputRoomEvents({ events: [room.input(early), room.input(target)] });
    expect(res.results.map((r) => r.status)).toEqual(['accepted', 'accepted']);
    expect(kinds(room.roomId).slice(-3)).toEqual([`new ${early.eventId}`, `new ${target.eventId}`, `redacted ${target.eventId}`]);
  });

  it('answers an unknown room for every message of the group', async () => {
    const answers = await Promise.all([1, 2, 3].map((i) => api.performSendEvent({ user_id: '@alice:hs.test', room_id: '!nowhere:hs.test', type: 'm.room.message', content: { body: `${i}` } })));
    expect(answers.map((a) => a.error)).toEqual(['forbidden', 'forbidden', 'forbidden']);
  });
});
