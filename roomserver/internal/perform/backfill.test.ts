/** PerformBackfill on a real roomserver (both databases), with a stand-in for federationapi that records what it is asked. */
import type { Kysely } from 'kysely';
import pino from 'pino';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../../internal/sqlutil/testing.js';
import { Event } from '../../../internal/matrix/index.js';
import type { PerformRemoteBackfillRequest, PerformRemoteBackfillResponse } from '../../../federationapi/api/index.js';
import { DirectoryStore } from '../../storage/directory.js';
import { EventStore } from '../../storage/eventstore.js';
import { roomserverMigrations } from '../../storage/migrations.js';
import { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { RoomserverDatabase } from '../../storage/tables.js';
import { RoomserverInternalAPIImpl } from '../api.js';
import { EventLoader } from '../eventloader.js';
import { Inputer } from '../input/inputer.js';
import { TestRoom } from '../input/testroom.js';

describeEachDatabase<RoomserverDatabase>('roomserver backfill', (ctx) => {
  let api: RoomserverInternalAPIImpl;
  const asked: PerformRemoteBackfillRequest[] = [];
  let answer: (req: PerformRemoteBackfillRequest) => Promise<PerformRemoteBackfillResponse> = async () => ({ error: 'unreachable', message: 'nobody' });
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'roomserver', roomserverMigrations);
    const db = ctx.db();
    const events = new EventStore(db);
    const snapshots = new StateSnapshotStore(db);
    const loader = new EventLoader(events);
    const log = pino({ level: 'silent' });
    const inputer = new Inputer({ serverName: 'hs.test', events, snapshots, loader, log, publish: async () => {} });
    const federation = {
      performRemoteBackfill: async (req: PerformRemoteBackfillRequest) => {
        asked.push(req);
        return answer(req);
      },
    };
    api = new RoomserverInternalAPIImpl('hs.test', inputer, events, snapshots, loader, new DirectoryStore(db), undefined, undefined, undefined, undefined, { federation: () => federation, log });
  });

  /** A room of remote.test with a member from third.test, and our user's join after a gap: A's messages m1..m3, B holds m1 and the join (after m3). */
  const setUp = async () => {
    const room = new TestRoom('10', 'remote.test', '@alice:remote.test');
    const start = room.start();
    const third = room.build({ type: 'm.room.member', state_key: '@tess:third.test', sender: '@tess:third.test', content: { membership: 'join' } }, [start[3]!.eventId]);
    const m1 = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'm1' } }, [third.eventId]);
    const m2 = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'm2' } }, [m1.eventId]);
    const m3 = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'm3' } }, [m2.eventId]);
    const join = room.build({ type: 'm.room.member', state_key: '@bob:hs.test', sender: '@bob:hs.test', content: { membership: 'join' } }, [m3.eventId]);
    const inputs = [...start, third, m1].map((e) => room.input(e));
    const state = [...start, third].map((e) => e.eventId);
    inputs.push({ ...room.input(join), state_event_ids: state });
    const res = await api.inputRoomEvents({ events: inputs });
    expect(res.results.map((r) => r.status)).toEqual(Array(inputs.length).fill('accepted'));
    return { room, start, m1, m2, m3, join };
  };

  it('asks the servers of the room for what it lacks, senders at the gap first, never itself', async () => {
    const { room, m1, m2, m3, join } = await setUp();
    answer = async (req) => {
      // What federationapi does with an answer: the events go in as history, oldest first.
      const res = await api.inputRoomEvents({ events: [m2, m3].map((e) => room.input(e, 'old')) });
      expect(res.results.map((r) => r.status)).toEqual(['accepted', 'accepted']);
      expect(req.event_ids).toEqual([m3.eventId]);
      return { event_ids: [m2.eventId, m3.eventId], server: 'remote.test' };
    };
    const res = await api.performBackfill({ room_id: room.roomId, event_ids: [join.eventId], limit: 500 });
    expect(res.error).toBeUndefined();
    expect(asked.at(-1)).toEqual({ room_id: room.roomId, event_ids: [m3.eventId], limit: 100, server_names: ['remote.test', 'third.test'] });
    expect(res.event_ids).toEqual([m2.eventId, m3.eventId]);
    expect(res.not_shown_event_ids).toEqual([]);

    // m2's prev event is held here with its state: answered without asking anyone.
    const before = asked.length;
    const here = await api.performBackfill({ room_id: room.roomId, event_ids: [m2.eventId], limit: 10 });
    expect(asked.length).toBe(before);
    expect(here.event_ids).toEqual([m1.eventId]);
  });

  it('tells of prev events never to be shown (rejected, of another room), and of failures', async () => {
    const { room, start, join } = await setUp();
    // An intruder's message: stored, rejected.
    const intruder = room.build({ type: 'm.room.message', sender: '@mallory:evil.test', content: { body: 'hi' } }, [join.eventId]);
    const other = new TestRoom('10', 'remote.test', '@alice:remote.test');
    const otherStart = other.start();
    await api.inputRoomEvents({ events: otherStart.map((e) => other.input(e)) });
    // Its prev events: the rejected one, and an event of the other room.
    const after = room.build({ type: 'm.room.message', sender: room.creator, content: { body: 'after' } }, [intruder.eventId, otherStart[3]!.eventId], { authFrom: [join.eventId] });
    // (Its state given, as federation does for an event whose prev events it cannot follow.)
    const stateIds = (await api.queryStateAfterEvents({ room_id: room.roomId, prev_event_ids: [join.eventId] })).state_events.map((h) => Event.fromPDU(h.pdu, h.room_version).eventId);
    const res = await api.inputRoomEvents({ events: [room.input(intruder), { ...room.input(after), state_event_ids: stateIds }] });
    expect(res.results.map((r) => r.status)).toEqual(['rejected', 'accepted']);
    const before = asked.length;
    const out = await api.performBackfill({ room_id: room.roomId, event_ids: [after.eventId], limit: 10 });
    expect(out.not_shown_event_ids.sort()).toEqual([intruder.eventId, otherStart[3]!.eventId].sort());
    expect(out.event_ids).toEqual([]);
    expect(asked.length).toBe(before);

    // Nothing from anyone: an error, nothing else.
    answer = async () => ({ error: 'unreachable', message: 'all down' });
    const gap = await setUp();
    const failed = await api.performBackfill({ room_id: gap.room.roomId, event_ids: [gap.join.eventId], limit: 10 });
    expect(failed).toMatchObject({ event_ids: [], not_shown_event_ids: [], error: 'unreachable' });
    expect((await api.performBackfill({ room_id: '!nope:hs.test', event_ids: [start[0]!.eventId], limit: 10 })).error).toBe('unknown_room');
  });
});
