/**
 * The queries of an incremental /sync that must cost what changed, not how far back the token
 * is (routing/scale.test.ts measures that over HTTP): rooms with news, state changes since a
 * position, joins and membership changes in a range, and the room summary. On both databases.
 */
import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { syncapiMigrations } from './migrations.js';
import { SyncStore, type NewStreamEvent } from './syncstore.js';
import type { SyncapiDatabase } from './tables.js';

describeEachDatabase<SyncapiDatabase>('syncapi storage for incremental syncs', (ctx) => {
  let store: SyncStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    store = new SyncStore(ctx.db());
  });
  const message = (roomId: string, eventId: string): NewStreamEvent => ({ roomId, eventId, type: 'm.room.message', sender: '@a:hs', stateKey: null, json: JSON.stringify({ content: { body: eventId } }), roomVersion: '10', addsState: [], removesState: [] });
  /** A member event that becomes current state (replacing `replaces`), as the consumer stores it. */
  const member = async (roomId: string, eventId: string, userId: string, membership: string, replaces?: string): Promise<number> => {
    const { pos } = await store.insertEvent({
      roomId,
      eventId,
      type: 'm.room.member',
      sender: userId,
      stateKey: userId,
      json: JSON.stringify({ content: { membership } }),
      roomVersion: '10',
      addsState: [eventId],
      removesState: replaces ? [replaces] : [],
    });
    await store.updateCurrentState(roomId, [{ eventId, type: 'm.room.member', stateKey: userId, membership }], replaces ? [replaces] : [], pos);
    return pos;
  };

  it('finds the rooms with events in a range, whatever else lies in it or after it', async () => {
    const early = await store.insertEvent(message('!quiet:hs', '$q1'));
    const start = (await store.insertEvent(message('!busy:hs', '$b0'))).pos;
    for (let i = 1; i <= 30; i++) await store.insertEvent(message('!busy:hs', `$b${i}`));
    const end = (await store.insertEvent(message('!late:hs', '$late1'))).pos;
    // After the range's end: not news yet.
    await store.insertEvent(message('!after:hs', '$a1'));
    expect(early.pos).toBeLessThan(start);
    const rooms = ['!quiet:hs', '!busy:hs', '!late:hs', '!after:hs', '!none:hs'];
    expect(await store.roomsWithEvents(start, end, rooms)).toEqual(new Set(['!busy:hs', '!late:hs']));
    expect(await store.roomsWithEvents(early.pos - 1, end, rooms)).toEqual(new Set(['!quiet:hs', '!busy:hs', '!late:hs']));
    expect(await store.roomsWithEvents(end, end, rooms)).toEqual(new Set());
    expect(await store.roomsWithEvents(start, end, [])).toEqual(new Set());
  });

  it('reads the state changes after a position, oldest first, without the events that changed nothing', async () => {
    const before = await member('!s:hs', '$j1', '@u:hs', 'join');
    await store.insertEvent(message('!s:hs', '$m1'));
    await member('!s:hs', '$j2', '@v:hs', 'join');
    await store.insertEvent(message('!s:hs', '$m2'));
    await member('!s:hs', '$l1', '@u:hs', 'leave', '$j1');
    expect(await store.stateChangesAfter('!s:hs', before)).toEqual([
      { eventId: '$j2', adds: ['$j2'], removes: [] },
      { eventId: '$l1', adds: ['$l1'], removes: ['$j1'] },
    ]);
    // stateAt undoes them, newest first.
    expect((await store.stateAt('!s:hs', before)).map((e) => e.eventId)).toEqual(['$j1']);
  });

  it('tells joins and membership changes in a range from member events that changed no state', async () => {
    const from = await member('!m:hs', '$mj1', '@me:hs', 'join');
    await member('!m:hs', '$mj2', '@x:hs', 'join');
    // A member event that the roomserver did not make state (it lost state resolution): no change.
    await store.insertEvent({ roomId: '!m:hs', eventId: '$lost', type: 'm.room.member', sender: '@y:hs', stateKey: '@y:hs', json: JSON.stringify({ content: { membership: 'join' } }), roomVersion: '10', addsState: [], removesState: [] });
    const to = await member('!m:hs', '$ml', '@z:hs', 'leave');
    expect(await store.joinsInRange(['!m:hs'], from, to)).toEqual(new Set(['@x:hs']));
    expect((await store.membershipChangesInRoomsOf('@me:hs', from, to)).sort()).toEqual(['@x:hs', '@z:hs']);
    expect((await store.membershipEvents('@me:hs', 0, to)).map((e) => e.eventId)).toEqual(['$mj1']);
  });

  it('counts members and picks heroes in the order they came (joined before invited), else those who left', async () => {
    // Named so that their order by name is not their order of arrival.
    await member('!h:hs', '$hz', '@zed:hs', 'join');
    await member('!h:hs', '$hme', '@me:hs', 'join');
    await member('!h:hs', '$hy', '@yan:hs', 'invite');
    await member('!h:hs', '$hx', '@xia:hs', 'join');
    await member('!h:hs', '$hw', '@wes:hs', 'leave');
    expect(await store.memberSummary('!h:hs', '@me:hs', 5)).toEqual({ joined: 3, invited: 1, heroes: ['@zed:hs', '@xia:hs', '@yan:hs'] });
    expect(await store.memberSummary('!h:hs', '@me:hs', 2)).toEqual({ joined: 3, invited: 1, heroes: ['@zed:hs', '@xia:hs'] });
    expect(await store.memberSummary('!h:hs', '@me:hs', 0)).toEqual({ joined: 3, invited: 1, heroes: [] });
    // Alone in a room the others left: they are the heroes.
    await member('!alone:hs', '$a1', '@me:hs', 'join');
    await member('!alone:hs', '$a2', '@bo:hs', 'leave');
    await member('!alone:hs', '$a3', '@al:hs', 'ban');
    expect(await store.memberSummary('!alone:hs', '@me:hs', 5)).toEqual({ joined: 1, invited: 0, heroes: ['@bo:hs', '@al:hs'] });
  });
});
