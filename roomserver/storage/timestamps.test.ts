/**
 * Events by origin_server_ts, on both databases: the migration that adds the column fills it for
 * events stored before it, new events get it as they are stored, and the scan goes nearest first
 * in either direction, in batches, leaving out outliers, rejected and soft-failed events.
 */
import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { EventStore, type NewEvent } from './eventstore.js';
import { roomserverMigrations } from './migrations.js';
import type { RoomserverDatabase } from './tables.js';
import { EventTimestampStore, originServerTsOf } from './timestamps.js';

it('reads origin_server_ts from event JSON, and nothing from JSON without a usable one', () => {
  expect(originServerTsOf('{"content":{"origin_server_ts":1},"origin_server_ts":1234}')).toBe(1234);
  expect(originServerTsOf('{"origin_server_ts":"1234"}')).toBeNull();
  expect(originServerTsOf('{"origin_server_ts":1.5}')).toBeNull();
  expect(originServerTsOf('not json')).toBeNull();
  expect(originServerTsOf('[]')).toBeNull();
});

describeEachDatabase<RoomserverDatabase>('roomserver events by timestamp', (ctx) => {
  let store: EventStore;
  let ts: EventTimestampStore;
  let roomNid: number;
  const ev = (id: string, originServerTs: number | undefined, extra: Partial<NewEvent> = {}): NewEvent => ({
    roomNid,
    eventId: id,
    type: 'm.room.message',
    stateKey: undefined,
    depth: 1,
    json: JSON.stringify(originServerTs === undefined ? { id } : { id, origin_server_ts: originServerTs }),
    authEventNids: [],
    stateSnapshotNid: 5,
    rejectionReason: null,
    ...extra,
  });

  beforeAll(async () => {
    const db = ctx.db() as unknown as Kysely<unknown>;
    // The schema as it was before timestamps, with two events stored then.
    await runMigrations(db, ctx.dialect, 'roomserver', roomserverMigrations.slice(0, 3));
    const old = ctx.db();
    await old.insertInto('roomserver_rooms').values({ room_id: '!old:hs', room_version: '10' }).execute();
    const room = await old.selectFrom('roomserver_rooms').select('room_nid').where('room_id', '=', '!old:hs').executeTakeFirstOrThrow();
    for (const [id, t] of [
      ['$old1', 500],
      ['$old2', 700],
    ] as const) {
      const [row] = await old
        .insertInto('roomserver_events')
        .values({ room_nid: Number(room.room_nid), event_id: id, event_type_nid: 1, event_state_key_nid: null, depth: 1, state_snapshot_nid: 3, rejection_reason: null, auth_event_nids: '[]' })
        .returning('event_nid')
        .execute();
      await old.insertInto('roomserver_event_json').values({ event_nid: Number(row!.event_nid), event_json: JSON.stringify({ origin_server_ts: t }), unredacted_json: null }).execute();
    }
    await runMigrations(db, ctx.dialect, 'roomserver', roomserverMigrations);
    store = new EventStore(ctx.db());
    ts = new EventTimestampStore(ctx.db());
    roomNid = (await store.ensureRoom('!r:hs', '10')).roomNid;
  });

  it('fills the timestamps of events stored before the migration', async () => {
    const room = (await store.room('!old:hs'))!;
    expect((await ts.nearest(room.roomNid, 0, 'f', 10)).map((e) => [e.eventId, e.originServerTs])).toEqual([
      ['$old1', 500],
      ['$old2', 700],
    ]);
  });

  it('finds the nearest events in both directions, in batches, ties in arrival order', async () => {
    for (const [id, t] of [
      ['$a', 1000],
      ['$b', 2000],
      ['$c', 2000],
      ['$d', 3000],
    ] as const) {
      await store.storeEvent(ev(id, t));
    }
    // Not history: an outlier, a rejected and a soft-failed event, and one without a timestamp.
    await store.storeEvent(ev('$outlier', 2000, { stateSnapshotNid: null }));
    await store.storeEvent(ev('$rejected', 2000, { rejectionReason: 'no' }));
    await store.storeEvent(ev('$soft', 2000, { softFailed: true }));
    await store.storeEvent(ev('$nots', undefined));

    const ids = (list: Array<{ eventId: string }>) => list.map((e) => e.eventId);
    expect(ids(await ts.nearest(roomNid, 1500, 'f', 10))).toEqual(['$b', '$c', '$d']);
    expect(ids(await ts.nearest(roomNid, 2000, 'f', 10))).toEqual(['$b', '$c', '$d']);
    expect(ids(await ts.nearest(roomNid, 2500, 'b', 10))).toEqual(['$c', '$b', '$a']);
    expect(ids(await ts.nearest(roomNid, 2000, 'b', 10))).toEqual(['$c', '$b', '$a']);
    expect(await ts.nearest(roomNid, 3001, 'f', 10)).toEqual([]);
    expect(await ts.nearest(roomNid, 999, 'b', 10)).toEqual([]);

    // Batches read on past the last one seen, through ties.
    const first = await ts.nearest(roomNid, 1500, 'f', 1);
    expect(ids(first)).toEqual(['$b']);
    const second = await ts.nearest(roomNid, 1500, 'f', 1, first[0]);
    expect(ids(second)).toEqual(['$c']);
    expect(ids(await ts.nearest(roomNid, 1500, 'f', 5, second[0]))).toEqual(['$d']);
    const back = await ts.nearest(roomNid, 2500, 'b', 1);
    expect(ids(await ts.nearest(roomNid, 2500, 'b', 5, back[0]))).toEqual(['$b', '$a']);
    expect(back[0]).toMatchObject({ eventId: '$c', originServerTs: 2000, eventNid: expect.any(Number) });
  });
});
