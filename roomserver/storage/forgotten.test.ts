/** The forgotten flag on memberships (POST /forget): set only when out of the room, cleared by the next membership event. */
import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { EventStore } from './eventstore.js';
import { roomserverMigrations } from './migrations.js';
import type { RoomserverDatabase } from './tables.js';

describeEachDatabase<RoomserverDatabase>('roomserver forgotten memberships', (ctx) => {
  let store: EventStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'roomserver', roomserverMigrations);
    store = new EventStore(ctx.db());
  });

  it('forgets only a left or banned membership, keeps the flag for the same event and clears it on a new one', async () => {
    const room = await store.ensureRoom('!f:hs', '10');
    const [bob] = [...(await store.stateKeyNids(['@bob:hs'])).values()];
    const OUT = ['leave', 'ban'];
    expect(await store.setForgotten(room.roomNid, '@bob:hs', OUT)).toBe(false);

    await store.setMembership(room.roomNid, bob!, '@bob:hs', 'join', 10);
    expect(await store.membership(room.roomNid, '@bob:hs')).toEqual({ membership: 'join', eventNid: 10, forgotten: false });
    expect(await store.setForgotten(room.roomNid, '@bob:hs', OUT)).toBe(false);

    await store.setMembership(room.roomNid, bob!, '@bob:hs', 'leave', 11);
    expect(await store.setForgotten(room.roomNid, '@bob:hs', OUT)).toBe(true);
    expect((await store.membership(room.roomNid, '@bob:hs'))?.forgotten).toBe(true);
    // The same event again (state re-resolved to it) keeps the forget.
    await store.setMembership(room.roomNid, bob!, '@bob:hs', 'leave', 11);
    expect((await store.membership(room.roomNid, '@bob:hs'))?.forgotten).toBe(true);
    // A new membership event ends it.
    await store.setMembership(room.roomNid, bob!, '@bob:hs', 'join', 12);
    expect(await store.membership(room.roomNid, '@bob:hs')).toEqual({ membership: 'join', eventNid: 12, forgotten: false });
  });
});
