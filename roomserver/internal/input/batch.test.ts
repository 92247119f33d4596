/**
 * Batches: a room's events of one request share one transaction. Each event keeps its own
 * verdict and outputs, exactly as if it had come alone, in order; a failure rolls back no
 * neighbour. On both databases.
 */
import type { Kysely } from 'kysely';
import pino from 'pino';
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { runMigrations } from '../../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../../internal/sqlutil/testing.js';
import type { Event } from '../../../internal/matrix/index.js';
import type { InputRoomEvent, OutputNewRoomEvent, OutputRoomEvent } from '../../api/index.js';
import { DirectoryStore } from '../../storage/directory.js';
import { EventStore } from '../../storage/eventstore.js';
import { roomserverMigrations } from '../../storage/migrations.js';
import { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { RoomserverDatabase } from '../../storage/tables.js';
import { RoomserverInternalAPIImpl } from '../api.js';
import { EventLoader } from '../eventloader.js';
import { Inputer, NOT_PROCESSED_AFTER_ERROR } from './inputer.js';
import { TestRoom } from './testroom.js';

const BOB = '@bob:hs.test';

describeEachDatabase<RoomserverDatabase>('roomserver input batches', (ctx) => {
  let published: Array<{ roomId: string; msgId: string; output: OutputRoomEvent }>;
  let api: RoomserverInternalAPIImpl;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'roomserver', roomserverMigrations);
    const db = ctx.db();
    const events = new EventStore(db);
    const snapshots = new StateSnapshotStore(db);
    const loader = new EventLoader(events);
    const inputer = new Inputer({
      serverName: 'hs.test',
      events,
      snapshots,
      loader,
      log: pino({ level: 'silent' }),
      publish: async (roomId, msgId, output) => void published.push({ roomId, msgId, output }),
    });
    api = new RoomserverInternalAPIImpl('hs.test', inputer, events, snapshots, loader, new DirectoryStore(db));
  });
  beforeEach(() => {
    published = [];
  });

  const newEvents = (roomId: string): OutputNewRoomEvent[] =>
    published.filter((p) => p.roomId === roomId && p.output.type === 'new_room_event').map((p) => (p.output as { new_room_event: OutputNewRoomEvent }).new_room_event);
  const statuses = async (events: InputRoomEvent[], stopAtError = false) => (await api.inputRoomEvents({ events, ...(stopAtError ? { stop_at_error: true } : {}) })).results.map((r) => r.status);
  const stored = async (e: Event) => (await api.queryEventsById({ event_ids: [e.eventId] })).events[0];
  /** A room that exists already, and a message builder chained on its last event. */
  const started = async (extraPower: Record<string, number> = {}) => {
    const room = new TestRoom('10');
    const start = room.start(extraPower);
    expect(await statuses(start.map((e) => room.input(e)))).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    published = [];
    let last = start.at(-1)!.eventId;
    const msg = (body: string, prev = [last]) => {
      const e = room.build({ type: 'm.room.message', sender: room.creator, content: { body } }, prev);
      last = e.eventId;
      return e;
    };
    return { room, start, msg };
  };

  it('stores a rejected event in the middle of a batch as rejected; its neighbours are accepted, each with its own output', async () => {
    const { room, msg } = await started();
    const m1 = msg('one');
    // Bob never joined: his message is refused by its own auth events.
    const intruder = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'let me in' } }, [m1.eventId]);
    const m2 = msg('two', [m1.eventId]);
    expect(await statuses([m1, intruder, m2].map((e) => room.input(e)))).toEqual(['accepted', 'rejected', 'accepted']);
    expect(await stored(intruder)).toMatchObject({ rejected: true });
    expect(await stored(m2)).toMatchObject({ rejected: false, soft_failed: false });
    const outs = newEvents(room.roomId);
    expect(outs.map((o) => o.event.pdu.content)).toEqual([{ body: 'one' }, { body: 'two' }]);
    expect(outs.map((o) => o.latest_event_ids)).toEqual([[m1.eventId], [m2.eventId]]);
    expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([m2.eventId]);
  });

  it('an event that fails in a batch writes nothing and takes nothing of its neighbours; stop_at_error leaves the rest for later', async () => {
    const { room, msg } = await started();
    const m1 = msg('one');
    // Its prev event is never sent: an error (nothing stored), not a verdict.
    const ghost = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'never sent' } }, [m1.eventId]);
    const orphan = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'orphan' } }, [ghost.eventId]);
    const m2 = msg('two', [m1.eventId]);
    expect(await statuses([m1, orphan, m2].map((e) => room.input(e)))).toEqual(['accepted', 'error', 'accepted']);
    expect(await stored(orphan)).toBeUndefined();
    expect(newEvents(room.roomId).map((o) => o.event.pdu.content)).toEqual([{ body: 'one' }, { body: 'two' }]);

    published = [];
    const m3 = msg('three', [m2.eventId]);
    const m4 = msg('four', [m3.eventId]);
    const res = await api.inputRoomEvents({ events: [m3, orphan, m4].map((e) => room.input(e)), stop_at_error: true });
    expect(res.results.map((r) => r.status)).toEqual(['accepted', 'error', 'error']);
    expect(res.results[1]!.error).toMatch(/missing prev events/);
    expect(res.results[2]).toEqual({ event_id: m4.eventId, status: 'error', error: NOT_PROCESSED_AFTER_ERROR });
    expect(await stored(m4)).toBeUndefined();
    expect(await statuses([room.input(m4)])).toEqual(['accepted']);
    expect(newEvents(room.roomId).map((o) => o.event.pdu.content)).toEqual([{ body: 'three' }, { body: 'four' }]);
    expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([m4.eventId]);
  });

  it('a batch spanning state changes: each event gets the state before it, its adds and removes, and soft-fails against the state the batch made current', async () => {
    const { room, msg } = await started({ [BOB]: 50 });
    const m1 = msg('before');
    const topicA = room.build({ type: 'm.room.topic', state_key: '', sender: room.creator, content: { topic: 'A' } }, [m1.eventId]);
    const m2 = msg('after A', [topicA.eventId]);
    const bobJoin = room.build({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } }, [m2.eventId]);
    const topicB = room.build({ type: 'm.room.topic', state_key: '', sender: BOB, content: { topic: 'B' } }, [bobJoin.eventId]);
    const ban = room.build({ type: 'm.room.member', state_key: BOB, sender: room.creator, content: { membership: 'ban' } }, [topicB.eventId]);
    // On a branch from before the ban: allowed by the state before it, not by the current state.
    const late = room.build({ type: 'm.room.message', sender: BOB, content: { body: 'sneaky' } }, [topicB.eventId]);
    const m3 = msg('after the ban', [ban.eventId]);
    expect(await statuses([m1, topicA, m2, bobJoin, topicB, ban, late, m3].map((e) => room.input(e)))).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'soft_failed', 'accepted']);

    const outs = newEvents(room.roomId);
    expect(outs).toHaveLength(7);
    const byBody = outs.map((o) => ({ adds: o.adds_state_event_ids, removes: o.removes_state_event_ids, latest: o.latest_event_ids }));
    expect(byBody).toEqual([
      { adds: [], removes: [], latest: [m1.eventId] },
      { adds: [topicA.eventId], removes: [], latest: [topicA.eventId] },
      { adds: [], removes: [], latest: [m2.eventId] },
      { adds: [bobJoin.eventId], removes: [], latest: [bobJoin.eventId] },
      { adds: [topicB.eventId], removes: [topicA.eventId], latest: [topicB.eventId] },
      { adds: [ban.eventId], removes: [bobJoin.eventId], latest: [ban.eventId] },
      { adds: [], removes: [], latest: [m3.eventId] },
    ]);
    const topicAt = async (e: Event) =>
      (await api.queryStateAfterEvents({ room_id: room.roomId, prev_event_ids: [e.eventId], state_to_fetch: [{ type: 'm.room.topic', state_key: '' }] })).state_events.map((s) => s.pdu.content);
    expect(await topicAt(m1)).toEqual([]);
    expect(await topicAt(m2)).toEqual([{ topic: 'A' }]);
    expect(await topicAt(m3)).toEqual([{ topic: 'B' }]);
    expect(await stored(late)).toMatchObject({ soft_failed: true });
    expect(await api.queryMembershipForUser({ room_id: room.roomId, user_id: BOB })).toMatchObject({ membership: 'ban', event_id: ban.eventId });
    const current = await api.queryLatestEventsAndState({ room_id: room.roomId, state_to_fetch: [{ type: 'm.room.topic', state_key: '' }] });
    expect(current.latest_event_ids).toEqual([m3.eventId]);
    expect(current.state_events.map((s) => s.pdu.content)).toEqual([{ topic: 'B' }]);
  });

  it('duplicates in a batch, and a batch sent again, are duplicates: stored and published once', async () => {
    const { room, msg } = await started();
    const m1 = msg('one');
    const m2 = msg('two');
    expect(await statuses([m1, m1, m2, m1].map((e) => room.input(e)))).toEqual(['accepted', 'duplicate', 'accepted', 'duplicate']);
    expect(newEvents(room.roomId).map((o) => o.event.pdu.content)).toEqual([{ body: 'one' }, { body: 'two' }]);
    published = [];
    expect(await statuses([m1, m2].map((e) => room.input(e)))).toEqual(['duplicate', 'duplicate']);
    expect(published).toEqual([]);

    // An outlier, then the same event into the DAG, in one batch: the second takes it in.
    const m3 = msg('three', [m2.eventId]);
    expect(await statuses([room.input(m3, 'outlier'), room.input(m3), room.input(m3)])).toEqual(['accepted', 'accepted', 'duplicate']);
    expect(newEvents(room.roomId).map((o) => o.event.pdu.content)).toEqual([{ body: 'three' }]);
    expect((await api.queryLatestEventsAndState({ room_id: room.roomId })).latest_event_ids).toEqual([m3.eventId]);
  });

  it('takes a request bigger than one transaction, and rooms side by side, in order', async () => {
    const a = await started();
    const b = await started();
    const aEvents = Array.from({ length: 230 }, (_, i) => a.msg(`a${i}`));
    const bEvents = Array.from({ length: 30 }, (_, i) => b.msg(`b${i}`));
    // Interleaved rooms, one request: the verdicts come back in the request's order.
    const order = aEvents.flatMap((e, i) => [{ room: a.room, e }, ...(bEvents[i] ? [{ room: b.room, e: bEvents[i] }] : [])]);
    const res = await api.inputRoomEvents({ events: order.map((x) => x.room.input(x.e)) });
    expect(res.results.every((r) => r.status === 'accepted')).toBe(true);
    expect(res.results.map((r) => r.event_id)).toEqual(order.map((x) => x.e.eventId));
    expect(newEvents(a.room.roomId).map((o) => (o.event.pdu.content as { body: string }).body)).toEqual(aEvents.map((_, i) => `a${i}`));
    expect(newEvents(b.room.roomId).map((o) => (o.event.pdu.content as { body: string }).body)).toEqual(bEvents.map((_, i) => `b${i}`));
    expect((await api.queryLatestEventsAndState({ room_id: a.room.roomId })).latest_event_ids).toEqual([aEvents.at(-1)!.eventId]);
    expect((await api.queryLatestEventsAndState({ room_id: b.room.roomId })).latest_event_ids).toEqual([bEvents.at(-1)!.eventId]);
  });
});
