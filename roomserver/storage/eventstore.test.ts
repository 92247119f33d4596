import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { EventStore, PLANNED_EVENT_NID, type NewEvent } from './eventstore.js';
import { NotPlannable } from './plan.js';
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

  it('reads events with their JSON, and redactions waiting for some of them, in one go', async () => {
    const room = await store.ensureRoom('!d:hs', '10');
    const a = await store.storeEvent(ev(room.roomNid, '$d-a', { json: '{"a":1}' }));
    await store.storeEvent(ev(room.roomNid, '$d-b'));
    await store.addPendingRedaction('$d-r1', '$d-a');
    await store.addPendingRedaction('$d-r2', '$d-a');
    await store.addPendingRedaction('$d-r3', '$d-unknown');
    const got = await store.eventsAndRedactionTargets(['$d-a', '$d-b', '$d-none', '$d-a'], ['$d-a', '$d-b', '$d-unknown']);
    expect(got.events.map((e) => e.eventId).sort()).toEqual(['$d-a', '$d-b']);
    expect(got.events.find((e) => e.eventId === '$d-a')).toEqual((await store.eventsByIds(['$d-a']))[0]);
    expect([...got.redactionTargets].sort()).toEqual(['$d-a', '$d-unknown']);
    expect((await store.eventsAndRedactionTargets(['$d-b'], ['$d-b'])).redactionTargets.size).toBe(0);
    const loaded = await store.eventsWithJson([a.eventNid, 999999]);
    expect(loaded).toEqual([{ stored: (await store.eventsByNids([a.eventNid]))[0], json: '{"a":1}' }]);
  });

  it('ends a batch: extremities moved, the room state, outputs in and published ones out', async () => {
    const room = await store.ensureRoom('!e:hs', '10');
    const [x, y, z] = [await store.storeEvent(ev(room.roomNid, '$e-x')), await store.storeEvent(ev(room.roomNid, '$e-y')), await store.storeEvent(ev(room.roomNid, '$e-z'))];
    await store.setForwardExtremities(room.roomNid, [x.eventNid, y.eventNid]);
    const old = await store.addToOutbox(room.roomNid, [{ msgId: 'old', payload: '0' }]);
    const nids = await store.finishBatch({
      rooms: [{ roomNid: room.roomNid, latest: [y.eventNid, z.eventNid], stateSnapshotNid: 12 }],
      outbox: { roomNid: room.roomNid, items: [{ msgId: 'n1', payload: '1' }, { msgId: 'n2', payload: '2' }] },
      removeFromOutbox: old,
    });
    expect(await store.forwardExtremities(room.roomNid)).toEqual([y.eventNid, z.eventNid].sort((a, b) => a - b));
    expect((await store.roomByNid(room.roomNid))?.stateSnapshotNid).toBe(12);
    const box = await store.outbox(room.roomNid);
    expect(box.map((o) => [o.outboxNid, o.msgId])).toEqual([[nids[0], 'n1'], [nids[1], 'n2']]);
    // Without a state change the room keeps its state; an empty end writes nothing.
    await store.finishBatch({ rooms: [{ roomNid: room.roomNid, latest: [x.eventNid] }], removeFromOutbox: nids });
    expect(await store.forwardExtremities(room.roomNid)).toEqual([x.eventNid]);
    expect((await store.roomByNid(room.roomNid))?.stateSnapshotNid).toBe(12);
    expect(await store.outbox(room.roomNid)).toEqual([]);
    expect(await store.finishBatch({ rooms: [], removeFromOutbox: [] })).toEqual([]);
  });

  it('a planned store writes its one event with the batch end as one statement, or nothing', async () => {
    if (ctx.dialect !== 'postgres') {
      expect(() => store.planned()).toThrow(NotPlannable);
      return;
    }
    const room = await store.ensureRoom('!f:hs', '10');
    const prev = await store.storeEvent(ev(room.roomNid, '$f-prev'));
    await store.setForwardExtremities(room.roomNid, [prev.eventNid]);
    const published = await store.addToOutbox(room.roomNid, [{ msgId: 'p', payload: '0' }]);

    const plan = store.planned();
    const res = await plan.storeEvent(ev(room.roomNid, '$f-new', { json: '{"new":1}' }));
    expect(res).toMatchObject({ eventNid: PLANNED_EVENT_NID, existed: false, stored: { eventId: '$f-new', eventNid: PLANNED_EVENT_NID } });
    // Nothing is written before the end, and other writes are refused.
    expect(await store.eventsByIds(['$f-new'])).toEqual([]);
    await expect(plan.setMembership(room.roomNid, 1, '@a:hs', 'join', res.eventNid)).rejects.toThrow(NotPlannable);
    await expect(plan.storeEvent(ev(room.roomNid, '$f-other'))).rejects.toThrow(NotPlannable);
    const written = await plan.finishPlanned({
      rooms: [{ roomNid: room.roomNid, latest: [res.eventNid] }],
      outbox: { roomNid: room.roomNid, items: [{ msgId: 'm', payload: '1' }] },
      removeFromOutbox: published,
    });
    expect(written?.outbox).toHaveLength(1);
    const eventNid = written!.eventNid;
    expect(eventNid).toBeGreaterThan(prev.eventNid);
    expect((await store.eventsByIds(['$f-new']))[0]).toEqual({ ...res.stored, eventNid });
    expect((await store.eventJson([eventNid])).get(eventNid)).toBe('{"new":1}');
    expect(await store.forwardExtremities(room.roomNid)).toEqual([eventNid]);
    expect((await store.outbox(room.roomNid)).map((o) => [o.outboxNid, o.msgId])).toEqual([[written!.outbox[0], 'm']]);
    const nids = written!.outbox;

    // Stored already, or awaited by a redaction: the statement writes nothing at all.
    for (const [id, pending] of [['$f-new', false], ['$f-awaited', true]] as const) {
      if (pending) await store.addPendingRedaction('$f-redaction', id);
      const again = store.planned();
      const r = await again.storeEvent(ev(room.roomNid, id));
      expect(
        await again.finishPlanned({
          rooms: [{ roomNid: room.roomNid, latest: [r.eventNid], stateSnapshotNid: 99 }],
          outbox: { roomNid: room.roomNid, items: [{ msgId: 'never', payload: '2' }] },
          removeFromOutbox: nids,
        }),
      ).toBeUndefined();
      expect(await store.forwardExtremities(room.roomNid)).toEqual([eventNid]);
      expect((await store.roomByNid(room.roomNid))?.stateSnapshotNid).toBe(0);
      expect((await store.outbox(room.roomNid)).map((o) => o.msgId)).toEqual(['m']);
    }
    expect(await store.eventsByIds(['$f-awaited'])).toEqual([]);
    expect((await store.eventsByIds(['$f-new']))[0]).toEqual({ ...res.stored, eventNid });
  });

  it('gives NIDs to new names in the insert, and finds the names another store gave', async () => {
    const a = new EventStore(ctx.db());
    const b = new EventStore(ctx.db());
    const first = await a.stateKeyNids(['@g1:hs', '@g2:hs']);
    const second = await b.stateKeyNids(['@g2:hs', '@g3:hs', '@g1:hs']);
    expect(second.get('@g1:hs')).toBe(first.get('@g1:hs'));
    expect(second.get('@g2:hs')).toBe(first.get('@g2:hs'));
    expect(new Set(second.values()).size).toBe(3);
  });
});
