/**
 * GET /sync over HTTP on a real monolith, on SQLite and PostgreSQL: rooms, long-polling, account
 * data, invites, leaves, device lists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, clientRequester, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const joined = (s: Body) => ((s.rooms as Body).join as Record<string, Body>);
const ALICE = '@alice:localhost:8008';
const BOB = '@bob:localhost:8008';

const until = async (fn: () => Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

for (const dialect of TEST_DIALECTS) {
  describe(`GET /sync [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    const sync = async (token: string, params = '') => (await req('GET', `/sync${params}`, token)).body;
    let alice: string;
    let bob: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      const reg = async (u: string) => (await getJson(`${t.baseUrl}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: u, password: 'pw', device_id: `${u.toUpperCase()}DEV` }) })).body.access_token as string;
      alice = await reg('alice');
      bob = await reg('bob');
    }, 60_000);
    afterAll(() => t?.stop());

    it('gives a new room with its state and timeline on an initial sync, and the sender its transaction ID', async () => {
      const roomId = (await req('POST', '/createRoom', alice, { preset: 'public_chat', name: 'Sync room' })).body.room_id as string;
      const sent = (await req('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/tx1`, alice, { msgtype: 'm.text', body: 'first' })).body.event_id as string;
      let s: Body = {};
      await until(async () => {
        s = await sync(alice);
        const tl = (joined(s)[roomId]?.timeline as { events: Body[] } | undefined)?.events ?? [];
        return tl.some((e) => e.event_id === sent);
      });
      const room = joined(s)[roomId]!;
      const timeline = (room.timeline as { events: Body[] }).events;
      const mine = timeline.find((e) => e.event_id === sent)!;
      expect(mine).toMatchObject({ type: 'm.room.message', sender: ALICE, content: { body: 'first' }, unsigned: { transaction_id: 'tx1' } });
      expect(mine.room_id).toBeUndefined();
      const types = [...(room.state as { events: Body[] }).events, ...timeline].map((e) => e.type);
      expect(types).toEqual(expect.arrayContaining(['m.room.create', 'm.room.member', 'm.room.power_levels', 'm.room.join_rules', 'm.room.name', 'm.room.message']));
      expect(String(s.next_batch)).toMatch(/^s\d+(_\d+)+$/);
      expect((s.account_data as { events: Body[] }).events.map((e) => e.type)).toContain('m.push_rules');
      expect(s.device_one_time_keys_count).toEqual({});
    });

    it('wakes a long-polling sync when a message arrives in a shared room', async () => {
      const roomId = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      const enc = encodeURIComponent(roomId);
      expect((await req('PUT', `/rooms/${enc}/state/m.room.member/${encodeURIComponent(BOB)}`, bob, { membership: 'join' })).status).toBe(200);
      let since = '';
      // A token at or after bob's join (a sync can show the room, from the current state, before its token reaches all of it).
      await until(async () => {
        const s = await sync(bob);
        since = s.next_batch as string;
        return ((joined(s)[roomId]?.timeline as { events: Body[] } | undefined)?.events ?? []).some((e) => e.type === 'm.room.member' && e.state_key === BOB);
      });
      const started = Date.now();
      const waiting = sync(bob, `?since=${since}&timeout=10000`);
      await new Promise((r) => setTimeout(r, 100));
      await req('PUT', `/rooms/${enc}/send/m.room.message/wake`, alice, { msgtype: 'm.text', body: 'wake up' });
      const s = await waiting;
      expect(Date.now() - started).toBeLessThan(5000);
      const events = (joined(s)[roomId]!.timeline as { events: Body[] }).events;
      expect(events.map((e) => (e.content as Body).body)).toEqual(['wake up']);
      expect(joined(s)[roomId]!.state).toEqual({ events: [] });
      // Nothing new: the long-poll brings no event (the room may show again only for its unread
      // counts, which userapi publishes after the message, in batches).
      const quiet = await sync(bob, `?since=${s.next_batch as string}&timeout=200`);
      for (const room of Object.values(joined(quiet))) expect((room.timeline as { events: Body[] }).events).toEqual([]);

      // Bob leaves: his next sync lists the room under leave.
      const before = s.next_batch as string;
      await req('POST', `/rooms/${enc}/leave`, bob, {});
      let afterLeave: Body = {};
      await until(async () => {
        afterLeave = await sync(bob, `?since=${before}`);
        return ((afterLeave.rooms as Body).leave as Body)[roomId] !== undefined;
      });
      expect(joined(afterLeave)[roomId]).toBeUndefined();
    });

    it('brings invites, account data and device list changes', async () => {
      const start = (await sync(bob)).next_batch as string;
      const roomId = (await req('POST', '/createRoom', alice, { invite: [BOB], name: 'Invitation' })).body.room_id as string;
      await req('PUT', `/user/${encodeURIComponent(BOB)}/account_data/org.example.test`, bob, { x: 1 });
      let s: Body = {};
      await until(async () => {
        s = await sync(bob, `?since=${start}`);
        const inv = ((s.rooms as Body).invite as Record<string, Body>)[roomId];
        return inv !== undefined && (s.account_data as { events: Body[] }).events.length > 0;
      });
      const state = (((s.rooms as Body).invite as Record<string, Body>)[roomId]!.invite_state as { events: Body[] }).events;
      expect(state.map((e) => e.type)).toEqual(expect.arrayContaining(['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.member']));
      expect((s.account_data as { events: Body[] }).events).toEqual([{ type: 'org.example.test', content: { x: 1 } }]);

      // Bob joins; then his new device keys show in Alice's device_lists.changed.
      await req('PUT', `/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(BOB)}`, bob, { membership: 'join' });
      const aliceSince = (await sync(alice)).next_batch as string;
      await req('POST', '/keys/upload', bob, {
        device_keys: { user_id: BOB, device_id: 'BOBDEV', algorithms: ['m.megolm.v1.aes-sha2'], keys: { 'ed25519:BOBDEV': 'k' }, signatures: {} },
        one_time_keys: { 'signed_curve25519:A': { key: 'x' } },
      });
      let a: Body = {};
      await until(async () => {
        a = await sync(alice, `?since=${aliceSince}&timeout=1000`);
        return ((a.device_lists as { changed: string[] }).changed ?? []).includes(BOB);
      });
      expect((await sync(bob)).device_one_time_keys_count).toEqual({ signed_curve25519: 1 });
    });

    it('refuses tokens and parameters it does not understand', async () => {
      expect((await req('GET', '/sync?since=garbage', alice)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', '/sync?timeout=-5', alice)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', '/sync?filter=%7Bnot', alice)).body.errcode).toBe('M_BAD_JSON');
      expect((await getJson(`${t.baseUrl}/_matrix/client/v3/sync`)).status).toBe(401);
    });

    it('summarises rooms: member counts, and heroes only for rooms without a name', async () => {
      const carol = (await getJson(`${t.baseUrl}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: 'carol', password: 'pw' }) })).body.access_token as string;
      const unnamed = (await req('POST', '/createRoom', alice, { preset: 'public_chat', invite: ['@carol:localhost:8008'] })).body.room_id as string;
      await req('POST', `/rooms/${encodeURIComponent(unnamed)}/join`, bob, {});
      const named = (await req('POST', '/createRoom', alice, { preset: 'public_chat', name: 'Named' })).body.room_id as string;
      let s: Body = {};
      await until(async () => {
        s = await sync(alice);
        return (joined(s)[unnamed]?.summary as Body | undefined)?.['m.joined_member_count'] === 2 && joined(s)[named] !== undefined;
      });
      expect(joined(s)[unnamed]!.summary).toEqual({ 'm.joined_member_count': 2, 'm.invited_member_count': 1, 'm.heroes': [BOB, '@carol:localhost:8008'] });
      expect(joined(s)[named]!.summary).toEqual({ 'm.joined_member_count': 1, 'm.invited_member_count': 0 });
      expect(carol).toBeTruthy();
    });
  });
}
