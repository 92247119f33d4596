import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { EventStore, type NewEvent } from './eventstore.js';
import { roomserverMigrations } from './migrations.js';
import type { RoomserverDatabase } from './tables.js';

describeEachDatabase<RoomserverDatabase>('roomserver event store', (ctx) => {
  let store: EventStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'roomserver', roomserverMigrations);
    store = new EventStore(ctx.db());
  });

  const ev = (roomNid: number, id: string, extra: Partial<NewEvent> = {}): NewEvent => ({
    roomNid,
    eventId: id,
    type: 'm.room.message',
    stateKey: undefined,
    depth: 1,
    json: JSON.stringify({ id }),
    authEventNids: [],
    stateSnapshotNid: 5,
    rejectionReason: null,
    ...extra,
  });

  it('creates a room once, keeping its first version', async () => {
    const a = await store.ensureRoom('!a:hs', '10');
    const again = await store.ensureRoom('!a:hs', '1');
    expect(again).toEqual(a);
    expect(a).toMatchObject({ roomId: '!a:hs', roomVersion: '10', stateSnapshotNid: 0 });
    await store.setCurrentState(a.roomNid, 42);
    expect((await store.roomByNid(a.roomNid))?.stateSnapshotNid).toBe(42);
    expect(await store.room('!nope:hs')).toBeUndefined();
  });

  it('assigns NIDs once per name, from a fresh store too, and names them back', async () => {
    const first = await store.typeNids(['m.room.create', 'm.room.member', 'm.room.create']);
    expect(first.size).toBe(2);
    const other = new EventStore(ctx.db());
    const second = await other.typeNids(['m.room.member', 'm.room.create', 'x.new']);
    expect(second.get('m.room.member')).toBe(first.get('m.room.member'));
    expect(second.get('m.room.create')).toBe(first.get('m.room.create'));
    const keys = await other.stateKeyNids(['', '@a:hs']);
    const names = await new EventStore(ctx.db()).names([...second.values()], [...keys.values()]);
    expect(names.types.get(second.get('x.new')!)).toBe('x.new');
    expect(names.stateKeys.get(keys.get('@a:hs')!)).toBe('@a:hs');
  });

  it('stores events once; an outlier later gets its state; extremities and the outbox are kept', async () => {
    const room = await store.ensureRoom('!b:hs', '10');
    const create = await store.storeEvent(ev(room.roomNid, '$create', { type: 'm.room.create', stateKey: '', stateSnapshotNid: null }));
    expect(create.existed).toBe(false);
    const again = await store.storeEvent(ev(room.roomNid, '$create', { type: 'm.room.create', stateKey: '', stateSnapshotNid: 9 }));
    expect(again).toEqual({ eventNid: create.eventNid, existed: true });
    const [stored] = await store.eventsByIds(['$create']);
    expect(stored).toMatchObject({ eventId: '$create', stateSnapshotNid: 9, isRejected: false, stateKeyNid: expect.any(Number) });

    const msg = await store.storeEvent(ev(room.roomNid, '$msg', { authEventNids: [create.eventNid], rejectionReason: 'not allowed' }));
    const [m] = await store.eventsByNids([msg.eventNid]);
    expect(m).toMatchObject({ isRejected: true, rejectionReason: 'not allowed', authEventNids: [create.eventNid], stateKeyNid: null, isSoftFailed: false });

    await store.setForwardExtremities(room.roomNid, [msg.eventNid]);
    expect(await store.forwardExtremities(room.roomNid)).toEqual([msg.eventNid]);
    await store.setForwardExtremities(room.roomNid, [create.eventNid, msg.eventNid]);
    expect(await store.forwardExtremities(room.roomNid)).toEqual([create.eventNid, msg.eventNid].sort((a, b) => a - b));

    await store.addToOutbox(room.roomNid, [
      { msgId: 'a', payload: '1' },
      { msgId: 'b', payload: '2' },
    ]);
    const box = await store.outbox(room.roomNid);
    expect(box.map((o) => o.payload)).toEqual(['1', '2']);
    expect((await store.outbox()).length).toBeGreaterThanOrEqual(2);
    await store.removeFromOutbox([box[0]!.outboxNid]);
    expect((await store.outbox(room.roomNid)).map((o) => o.msgId)).toEqual(['b']);
    await store.setCurrentState(room.roomNid, 77);
    expect((await store.snapshotsInUse(room.roomNid)).sort()).toEqual([5, 77, 9].sort());
  });

  it('redacts JSON, keeping the first original', async () => {
    const room = await store.ensureRoom('!c:hs', '10');
    const { eventNid } = await store.storeEvent(ev(room.roomNid, '$secret', { json: '{"body":"secret"}' }));
    await store.redact(eventNid, '{}');
    await store.redact(eventNid, '{"again":1}');
    expect((await store.eventJson([eventNid])).get(eventNid)).toBe('{"again":1}');
    const row = await ctx.db().selectFrom('roomserver_event_json').select('unredacted_json').where('event_nid', '=', eventNid).executeTakeFirst();
    expect(row?.unredacted_json).toBe('{"body":"secret"}');
  });
});
