import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { syncapiMigrations } from './migrations.js';
import { SyncStore, type NewStreamEvent } from './syncstore.js';
import type { SyncapiDatabase } from './tables.js';

describeEachDatabase<SyncapiDatabase>('syncapi storage', (ctx) => {
  let store: SyncStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    store = new SyncStore(ctx.db());
  });
  const ev = (roomId: string, eventId: string, extra: Partial<NewStreamEvent> = {}): NewStreamEvent => ({
    roomId,
    eventId,
    type: 'm.room.message',
    sender: '@a:hs',
    stateKey: null,
    json: JSON.stringify({ event_id: eventId }),
    roomVersion: '10',
    addsState: [],
    removesState: [],
    ...extra,
  });

  it('keeps events in stream order, once each, and pages the newest of a room', async () => {
    const a = await store.insertEvent(ev('!r:hs', '$1'));
    const b = await store.insertEvent(ev('!r:hs', '$2', { txn: { deviceId: 'D', txnId: 't' } }));
    const other = await store.insertEvent(ev('!other:hs', '$3'));
    expect(b.pos).toBeGreaterThan(a.pos);
    expect(await store.insertEvent(ev('!r:hs', '$1'))).toEqual({ pos: a.pos, existed: true });
    expect(await store.maxEventPos()).toBe(other.pos);
    const page = await store.roomEvents('!r:hs', 0, other.pos, 1);
    expect(page.limited).toBe(true);
    expect(page.events.map((e) => e.eventId)).toEqual(['$2']);
    expect(page.events[0]).toMatchObject({ deviceId: 'D', txnId: 't' });
    expect((await store.roomEvents('!r:hs', a.pos, other.pos, 10)).events.map((e) => e.eventId)).toEqual(['$2']);
    expect(await store.roomsWithEvents(b.pos, other.pos, ['!r:hs', '!other:hs'])).toEqual(new Set(['!other:hs']));
    await store.redact('$1', '{"redacted":true}');
    expect((await store.events(['$1']))[0]!.json).toBe('{"redacted":true}');
  });

  it('keeps current state and memberships', async () => {
    const join = await store.insertEvent(ev('!s:hs', '$join', { type: 'm.room.member', stateKey: '@u:hs' }));
    const name = await store.insertEvent(ev('!s:hs', '$name', { type: 'm.room.name', stateKey: '' }));
    await store.updateCurrentState('!s:hs', [{ eventId: '$join', type: 'm.room.member', stateKey: '@u:hs', membership: 'join' }], [], join.pos);
    await store.updateCurrentState('!s:hs', [{ eventId: '$name', type: 'm.room.name', stateKey: '', membership: null }], [], name.pos);
    expect((await store.currentState('!s:hs')).map((e) => e.eventId).sort()).toEqual(['$join', '$name']);
    expect(await store.roomsWithMembership('@u:hs', ['join'])).toEqual([{ roomId: '!s:hs', membership: 'join' }]);
    const leave = await store.insertEvent(ev('!s:hs', '$leave', { type: 'm.room.member', stateKey: '@u:hs' }));
    await store.updateCurrentState('!s:hs', [{ eventId: '$leave', type: 'm.room.member', stateKey: '@u:hs', membership: 'leave' }], ['$join'], leave.pos);
    expect(await store.roomsWithMembership('@u:hs', ['join'])).toEqual([]);
    expect((await store.membershipEvents('@u:hs', 0, leave.pos)).map((e) => e.eventId)).toEqual(['$join', '$leave']);
  });

  it('moves account data and invites to new positions on each change', async () => {
    const p1 = await store.accountDataChanged('@u:hs', '', 'm.direct');
    const p2 = await store.accountDataChanged('@u:hs', '!r:hs', 'm.tag');
    const p3 = await store.accountDataChanged('@u:hs', '', 'm.direct');
    expect(p3).toBeGreaterThan(p2);
    expect(await store.accountDataChanges('@u:hs', 0, p3)).toEqual([
      { roomId: '!r:hs', type: 'm.tag' },
      { roomId: '', type: 'm.direct' },
    ]);
    expect(await store.accountDataChanges('@u:hs', p2, p3)).toEqual([{ roomId: '', type: 'm.direct' }]);
    expect(p1).toBeLessThan(p2);
    expect(await store.maxAccountDataPos()).toBe(p3);

    const i1 = await store.addInvite({ eventId: '$inv', roomId: '!r:hs', targetUserId: '@u:hs', json: '{}', roomVersion: '10' });
    expect(await store.addInvite({ eventId: '$inv', roomId: '!r:hs', targetUserId: '@u:hs', json: '{}', roomVersion: '10' })).toBe(0);
    expect(await store.invites('@u:hs', 0, i1)).toEqual([{ roomId: '!r:hs', json: '{}', roomVersion: '10', retired: false }]);
    const i2 = await store.retireInvite('$inv');
    expect(i2).toBeGreaterThan(i1);
    expect(await store.invites('@u:hs', i1, i2)).toEqual([{ roomId: '!r:hs', json: '{}', roomVersion: '10', retired: true }]);
    expect(await store.retireInvite('$none')).toBe(0);
    expect(await store.maxInvitePos()).toBe(i2);
  });
});
