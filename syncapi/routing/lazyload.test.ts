/**
 * GET /sync with lazy-loading members over HTTP on a real monolith, on SQLite and PostgreSQL:
 * only the member events the timeline needs, in initial, incremental and gapped syncs; redundant
 * ones left out per device unless include_redundant_members; a new sync sequence (initial,
 * full_state) starts afresh.
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { getJson, type TestServer, clientRequester, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';
import { LazyLoadStore } from '../storage/lazyload.js';
import { syncapiMigrations } from '../storage/migrations.js';
import type { SyncapiDatabase } from '../storage/tables.js';

type Body = Record<string, unknown>;
const HS = 'localhost:8008';
const uid = (name: string) => `@${name}:${HS}`;

const llFilter = (limit: number, redundant = false) =>
  encodeURIComponent(JSON.stringify({ room: { state: { lazy_load_members: true, ...(redundant ? { include_redundant_members: true } : {}) }, timeline: { limit } } }));

interface RoomView {
  timeline: { events: Body[]; limited: boolean };
  state: { events: Body[] };
}

for (const dialect of TEST_DIALECTS) {
  describe(`lazy-loading members [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    const tokens: Record<string, string> = {};

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) {
        const r = await getJson(`${t.baseUrl}/_matrix/client/v3/register`, {
          method: 'POST',
          body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: u, password: 'pw', device_id: `${u.toUpperCase()}DEV` }),
        });
        tokens[u] = r.body.access_token as string;
      }
    }, 60_000);
    afterAll(() => t?.stop());

    /** A sync of `token` with a lazy-loading filter; the room's section (if any) and next_batch. */
    const llSync = async (token: string, roomId: string, opts: { since?: string; limit: number; redundant?: boolean; fullState?: boolean }) => {
      const params = [`filter=${llFilter(opts.limit, opts.redundant)}`];
      if (opts.since) params.push(`since=${opts.since}`);
      if (opts.fullState) params.push('full_state=true');
      const r = await req('GET', `/sync?${params.join('&')}`, token);
      expect(r.status).toBe(200);
      const room = (((r.body.rooms as Body).join as Record<string, RoomView>) ?? {})[roomId];
      return { room, next: r.body.next_batch as string };
    };

    /** The members in a state section, user -> membership. */
    const members = (room: RoomView | undefined): Record<string, string> =>
      Object.fromEntries((room?.state.events ?? []).filter((e) => e.type === 'm.room.member').map((e) => [e.state_key as string, (e.content as Body).membership as string]));

    const send = async (who: string, roomId: string, n: number): Promise<string> => {
      let last = '';
      for (let i = 0; i < n; i++) {
        const r = await req('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${who}-${Date.now()}-${i}-${Math.random()}`, tokens[who]!, { msgtype: 'm.text', body: `${who} ${i}` });
        expect(r.status).toBe(200);
        last = r.body.event_id as string;
      }
      return last;
    };

    const join = async (who: string, roomId: string): Promise<void> => {
      const r = await req('POST', `/rooms/${encodeURIComponent(roomId)}/join`, tokens[who]!, {});
      expect(r.status).toBe(200);
    };

    /** Waits until syncapi has `eventId` (seen through `who`'s unfiltered sync; never the lazy-loading devices'). */
    const arrived = async (who: string, roomId: string, eventId: string) => {
      const end = Date.now() + 5000;
      for (;;) {
        const r = await req('GET', '/sync', tokens[who]!);
        const room = (((r.body.rooms as Body).join as Record<string, RoomView>) ?? {})[roomId];
        if (room?.timeline.events.some((e) => e.event_id === eventId)) return;
        if (Date.now() > end) throw new Error(`event ${eventId} did not reach /sync`);
        await new Promise((res) => setTimeout(res, 20));
      }
    };

    const newRoom = async (): Promise<string> => {
      const r = await req('POST', '/createRoom', tokens['alice']!, { preset: 'public_chat', name: 'Lazy room' });
      expect(r.status).toBe(200);
      return r.body.room_id as string;
    };

    it('gives only the timeline senders (and the user) on an initial sync, then only new senders, once per device', async () => {
      const roomId = await newRoom();
      for (const u of ['bob', 'carol']) await join(u, roomId);
      await send('bob', roomId, 3);
      await arrived('carol', roomId, await send('carol', roomId, 2));

      const first = await llSync(tokens['alice']!, roomId, { limit: 2 });
      expect(first.room!.timeline.events.map((e) => e.sender)).toEqual([uid('carol'), uid('carol')]);
      expect(members(first.room)).toEqual({ [uid('alice')]: 'join', [uid('carol')]: 'join' });
      // Non-member state is all there.
      expect(first.room!.state.events.map((e) => e.type)).toEqual(expect.arrayContaining(['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.name']));

      // Bob speaks: his member event comes with the incremental sync, as the device never had it.
      await arrived('bob', roomId, await send('bob', roomId, 1));
      const second = await llSync(tokens['alice']!, roomId, { since: first.next, limit: 2 });
      expect(second.room!.timeline.limited).toBe(false);
      expect(members(second.room)).toEqual({ [uid('bob')]: 'join' });

      // Both speak again: nothing new to tell about them.
      await send('bob', roomId, 1);
      await arrived('carol', roomId, await send('carol', roomId, 1));
      const third = await llSync(tokens['alice']!, roomId, { since: second.next, limit: 2 });
      expect(third.room!.timeline.events).toHaveLength(2);
      expect(third.room!.state.events).toEqual([]);

      // Asked for redundant members, the senders' come again (not the user's own).
      await send('bob', roomId, 1);
      await arrived('carol', roomId, await send('carol', roomId, 1));
      const redundant = await llSync(tokens['alice']!, roomId, { since: third.next, limit: 2, redundant: true });
      expect(members(redundant.room)).toEqual({ [uid('bob')]: 'join', [uid('carol')]: 'join' });

      // Nothing happened: the room is not in the next sync at all.
      const quiet = await llSync(tokens['alice']!, roomId, { since: redundant.next, limit: 2 });
      expect(quiet.room).toBeUndefined();

      // full_state starts a new sequence: the senders and the user again.
      const full = await llSync(tokens['alice']!, roomId, { since: redundant.next, limit: 2, fullState: true });
      expect(members(full.room)).toEqual({ [uid('alice')]: 'join', [uid('bob')]: 'join', [uid('carol')]: 'join' });
    });

    it('tracks what each device was sent separately, and forgets it on an initial sync', async () => {
      const roomId = await newRoom();
      await join('bob', roomId);
      await arrived('bob', roomId, await send('bob', roomId, 1));
      const login = await getJson(`${t.baseUrl}/_matrix/client/v3/login`, {
        method: 'POST',
        body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'pw', device_id: 'ALICEPHONE' }),
      });
      expect(login.status).toBe(200);
      const phone = login.body.access_token as string;

      const laptop1 = await llSync(tokens['alice']!, roomId, { limit: 1 });
      expect(members(laptop1.room)).toEqual({ [uid('alice')]: 'join', [uid('bob')]: 'join' });
      // The phone's initial sync says nothing of the laptop's records, nor clears them.
      const phone1 = await llSync(phone, roomId, { limit: 5 });
      expect(members(phone1.room)).toEqual({ [uid('alice')]: 'join' });
      expect(phone1.room!.timeline.events.some((e) => e.type === 'm.room.member' && e.state_key === uid('bob'))).toBe(true);

      await arrived('bob', roomId, await send('bob', roomId, 1));
      expect(members((await llSync(tokens['alice']!, roomId, { since: laptop1.next, limit: 1 })).room)).toEqual({});
      // Bob's join was in the phone's timeline: it knows him already.
      expect(members((await llSync(phone, roomId, { since: phone1.next, limit: 1 })).room)).toEqual({});

      // A fresh initial sync of the laptop gives Bob's member event again.
      const again = await llSync(tokens['alice']!, roomId, { limit: 1 });
      expect(members(again.room)).toEqual({ [uid('alice')]: 'join', [uid('bob')]: 'join' });
    });

    it('in gapped syncs gives the senders, members who changed in the gap, and old leaves, without repeats', async () => {
      const roomId = await newRoom();
      for (const u of ['bob', 'carol', 'erin']) await join(u, roomId);
      await arrived('bob', roomId, await send('bob', roomId, 3));
      const first = await llSync(tokens['alice']!, roomId, { limit: 3 });
      expect(members(first.room)).toEqual({ [uid('alice')]: 'join', [uid('bob')]: 'join' });

      // Dave joins in the gap and says nothing; Carol, an old member, starts speaking.
      await join('dave', roomId);
      await arrived('carol', roomId, await send('carol', roomId, 5));
      const second = await llSync(tokens['alice']!, roomId, { since: first.next, limit: 3 });
      expect(second.room!.timeline.limited).toBe(true);
      expect(second.room!.timeline.events.every((e) => e.sender === uid('carol'))).toBe(true);
      expect(members(second.room)).toEqual({ [uid('carol')]: 'join', [uid('dave')]: 'join' });
      // No other state changed in the gap.
      expect(second.room!.state.events.every((e) => e.type === 'm.room.member')).toBe(true);

      // Dave leaves in the next gap: only his leave, not Carol again.
      const leave = await req('POST', `/rooms/${encodeURIComponent(roomId)}/leave`, tokens['dave']!, {});
      expect(leave.status).toBe(200);
      await arrived('carol', roomId, await send('carol', roomId, 5));
      const third = await llSync(tokens['alice']!, roomId, { since: second.next, limit: 3 });
      expect(third.room!.timeline.limited).toBe(true);
      expect(members(third.room)).toEqual({ [uid('dave')]: 'leave' });

      // Erin, who joined before the first sync, speaks after a gap: her member event comes.
      await send('bob', roomId, 4);
      await arrived('erin', roomId, await send('erin', roomId, 3));
      const fourth = await llSync(tokens['alice']!, roomId, { since: third.next, limit: 3 });
      expect(fourth.room!.timeline.limited).toBe(true);
      expect(members(fourth.room)).toEqual({ [uid('erin')]: 'join' });
    });

    it('leaves member events out when the state filter does not want them', async () => {
      const roomId = await newRoom();
      await join('bob', roomId);
      await arrived('bob', roomId, await send('bob', roomId, 2));
      const filter = encodeURIComponent(JSON.stringify({ room: { state: { lazy_load_members: true, types: ['m.room.name'] }, timeline: { limit: 2 } } }));
      const r = await req('GET', `/sync?filter=${filter}`, tokens['alice']!);
      const room = ((r.body.rooms as Body).join as Record<string, RoomView>)[roomId]!;
      expect(room.state.events.map((e) => e.type)).toEqual(['m.room.name']);
    });
  });
}

describeEachDatabase<SyncapiDatabase>('lazy-loaded members storage', (ctx) => {
  let store: LazyLoadStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    store = new LazyLoadStore(ctx.db());
  });

  it('keeps the latest member event sent per device, room and member, and clears a device', async () => {
    await store.recordSent('@u:hs', 'D1', '!r:hs', [
      { targetUserId: '@a:hs', eventId: '$a1' },
      { targetUserId: '@b:hs', eventId: '$b1' },
      { targetUserId: '@a:hs', eventId: '$a2' },
    ]);
    await store.recordSent('@u:hs', 'D2', '!r:hs', [{ targetUserId: '@a:hs', eventId: '$a1' }]);
    await store.recordSent('@u:hs', 'D1', '!other:hs', [{ targetUserId: '@a:hs', eventId: '$x' }]);
    expect(await store.sentMembers('@u:hs', 'D1', '!r:hs', ['@a:hs', '@b:hs', '@c:hs'])).toEqual(new Map([['@a:hs', '$a2'], ['@b:hs', '$b1']]));
    await store.recordSent('@u:hs', 'D1', '!r:hs', [{ targetUserId: '@b:hs', eventId: '$b2' }]);
    expect(await store.sentMembers('@u:hs', 'D1', '!r:hs', ['@b:hs'])).toEqual(new Map([['@b:hs', '$b2']]));
    await store.clearDevice('@u:hs', 'D1');
    expect(await store.sentMembers('@u:hs', 'D1', '!r:hs', ['@a:hs', '@b:hs'])).toEqual(new Map());
    expect(await store.sentMembers('@u:hs', 'D1', '!other:hs', ['@a:hs'])).toEqual(new Map());
    expect(await store.sentMembers('@u:hs', 'D2', '!r:hs', ['@a:hs'])).toEqual(new Map([['@a:hs', '$a1']]));
    expect(await store.sentMembers('@u:hs', 'D2', '!r:hs', [])).toEqual(new Map());
  });
});
