/** syncapi's topological order and history gaps (storage/topology.ts, SyncStore), on both databases, and the migration that adds them. */
import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { syncapiMigrations } from './migrations.js';
import { SyncStore, type NewStreamEvent } from './syncstore.js';
import type { SyncapiDatabase } from './tables.js';
import { dagFieldsOf } from './topology.js';

const ev = (roomId: string, eventId: string, depth: number, prevs: string[], extra: Partial<NewStreamEvent> = {}): NewStreamEvent => ({
  roomId,
  eventId,
  type: 'm.room.message',
  sender: '@a:hs',
  stateKey: null,
  json: JSON.stringify({ type: 'm.room.message', depth, prev_events: prevs, content: { body: eventId } }),
  roomVersion: '10',
  addsState: [],
  removesState: [],
  ...extra,
});
const ids = (events: Array<{ eventId: string }>) => events.map((e) => e.eventId);

it('reads depth and prev events from PDUs of every room version, and nothing from junk', () => {
  expect(dagFieldsOf({ depth: 7, prev_events: ['$a', '$b'] })).toEqual({ depth: 7, prevEventIds: ['$a', '$b'] });
  expect(dagFieldsOf({ depth: 3, prev_events: [['$a:hs', { sha256: 'x' }]] })).toEqual({ depth: 3, prevEventIds: ['$a:hs'] });
  expect(dagFieldsOf({ depth: 'deep', prev_events: 'no' })).toEqual({ depth: 0, prevEventIds: [] });
  expect(dagFieldsOf(null)).toEqual({ depth: 0, prevEventIds: [] });
});

describeEachDatabase<SyncapiDatabase>('syncapi topology', (ctx) => {
  let store: SyncStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    store = new SyncStore(ctx.db());
  });

  it('pages a room by depth, with history stored below the stream where /sync never looks', async () => {
    const R = '!topo:hs';
    // The join arrives first (depth 10), then history behind it, newest first, as backfill brings it.
    const join = await store.insertEvent(ev(R, '$join', 10, ['$m9'], { type: 'm.room.member', stateKey: '@b:hs' }));
    const streamTop = await store.maxEventPos();
    expect(await store.backwardExtremities(R, 10)).toEqual([{ eventId: '$join', depth: 10, pos: join.pos }]);
    const m9 = await store.insertHistoricalEvent(ev(R, '$m9', 9, ['$m8']));
    const m8 = await store.insertHistoricalEvent(ev(R, '$m8', 8, ['$create']));
    expect(m9.pos).toBeLessThan(0);
    expect(m8.pos).toBeLessThan(m9.pos);
    // A repeat keeps its place.
    expect(await store.insertHistoricalEvent(ev(R, '$m9', 9, ['$m8']))).toEqual({ pos: m9.pos, existed: true });
    expect(await store.insertEvent(ev(R, '$m9', 9, ['$m8']))).toEqual({ pos: m9.pos, existed: true });
    // The stream did not move, and what /sync reads of it holds only the join.
    expect(await store.maxEventPos()).toBe(streamTop);
    expect(ids((await store.roomEvents(R, 0, streamTop, 10)).events)).toEqual(['$join']);
    // The join's gap closed; $m8 lacks the create event now.
    expect(ids(await store.backwardExtremities(R, 10))).toEqual(['$m8']);

    const after = await store.insertEvent(ev(R, '$after', 11, ['$join']));
    const top = await store.maxTopoKey(R);
    expect(top).toEqual({ depth: 11, pos: after.pos });
    expect(ids(await store.roomEventsTopo(R, top!, true, 10))).toEqual(['$after', '$join', '$m9', '$m8']);
    expect(ids(await store.roomEventsTopo(R, { depth: 9, pos: m9.pos - 1 }, true, 10))).toEqual(['$m8']);
    expect(ids(await store.roomEventsTopo(R, { depth: -1, pos: 0 }, false, 2))).toEqual(['$m8', '$m9']);
    expect(ids(await store.roomEventsTopo(R, { depth: 9, pos: m9.pos }, false, 10))).toEqual(['$join', '$after']);
    expect(await store.eventKey('$m9')).toEqual({ depth: 9, pos: m9.pos, roomId: R });

    // A stream position is placed just before the room's next event after it: history behind that event comes first going back.
    expect(await store.topoKeyAtStreamPos(R, after.pos - 1)).toEqual({ depth: 11, pos: after.pos - 1 });
    expect(ids(await store.roomEventsTopo(R, await store.topoKeyAtStreamPos(R, after.pos - 1), true, 10))).toEqual(['$join', '$m9', '$m8']);
    // After the last event: the whole room.
    expect(await store.topoKeyAtStreamPos(R, after.pos + 1000)).toEqual(top);
  });

  it('keeps the gaps of a room: per missing prev event, per room, closed by the event or by being told', async () => {
    const R = '!gaps:hs';
    await store.insertEvent(ev('!elsewhere:hs', '$other', 3, []));
    // Two prev events missing, one of them held in another room: still a gap here.
    await store.insertEvent(ev(R, '$e', 5, ['$p1', '$other']));
    await store.insertEvent(ev(R, '$f', 4, ['$p2']));
    expect(ids(await store.backwardExtremities(R, 10))).toEqual(['$e', '$f']);
    expect(await store.isBackwardExtremity('$e')).toBe(true);
    await store.insertHistoricalEvent(ev(R, '$p1', 4, []));
    expect(await store.isBackwardExtremity('$e')).toBe(true);
    await store.closeGaps(R, ['$other']);
    expect(await store.isBackwardExtremity('$e')).toBe(false);
    expect(ids(await store.backwardExtremities(R, 10))).toEqual(['$f']);
    // A gap recorded by mistake (the event was stored alongside) heals when the event is seen again.
    await ctx.db().insertInto('syncapi_backward_extremities').values({ room_id: R, event_id: '$f', prev_event_id: '$p1' }).execute();
    await store.insertEvent(ev(R, '$p1', 4, []));
    expect(await ctx.db().selectFrom('syncapi_backward_extremities').select('prev_event_id').where('event_id', '=', '$f').execute()).toEqual([{ prev_event_id: '$p2' }]);
  });
});

describeEachDatabase<SyncapiDatabase>('syncapi migration 7', (ctx) => {
  it('gives events stored before it their depth and finds the gaps among them', async () => {
    const db = ctx.db();
    await runMigrations(db as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations.filter((m) => typeof m.version === 'number' && m.version < 7));
    const row = (roomId: string, eventId: string, json: unknown) => ({
      room_id: roomId,
      event_id: eventId,
      type: 'm.room.message',
      sender: '@a:hs',
      state_key: null,
      event_json: JSON.stringify(json),
      room_version: '1',
      adds_state: '[]',
      removes_state: '[]',
      device_id: null,
      txn_id: null,
    });
    // Inserted without the depth column, which does not exist yet.
    await (db as unknown as Kysely<Record<string, Record<string, unknown>>>)
      .insertInto('syncapi_output_room_events')
      .values([
        row('!m:hs', '$a:hs', { depth: 1, prev_events: [] }),
        row('!m:hs', '$b:hs', { depth: 2, prev_events: [['$a:hs', { sha256: 'x' }]] }),
        row('!m:hs', '$c:hs', { depth: 12, prev_events: [['$gone:hs', {}], ['$b:hs', {}]] }),
        row('!m:hs', '$d:hs', 'not an event'),
      ])
      .execute();
    await runMigrations(db as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    const store = new SyncStore(db);
    expect((await store.events(['$a:hs', '$b:hs', '$c:hs', '$d:hs'])).map((e) => [e.eventId, e.depth]).sort()).toEqual([
      ['$a:hs', 1],
      ['$b:hs', 2],
      ['$c:hs', 12],
      ['$d:hs', 0],
    ]);
    expect(await db.selectFrom('syncapi_backward_extremities').select(['event_id', 'prev_event_id']).execute()).toEqual([{ event_id: '$c:hs', prev_event_id: '$gone:hs' }]);
  });
});
