/**
 * Dendrite's admin API for rooms and users, over HTTP on a real monolith, on SQLite and on
 * PostgreSQL: evacuating a room or a user, purging a room from every component, resetting a
 * password; and the refusals (not an admin, bad IDs, unknown rooms and users).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, getJson, registerAdmin, registerUser, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

for (const dialect of TEST_DIALECTS) {
  describe(`/_dendrite/admin rooms and users [${dialect}]`, () => {
    let t: TestServer;
    let admin: string;
    const req = clientRequester(() => t);
    const adminCall = (p: string, token: string, body?: unknown) =>
      getJson(`${t.baseUrl}/_dendrite${p}`, {
        method: 'POST',
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    const until = async (fn: () => Promise<boolean>, ms = 10000) => {
      const end = Date.now() + ms;
      while (!(await fn())) {
        if (Date.now() > end) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const createRoom = async (token: string, body: Body = { preset: 'public_chat' }) => {
      const r = await req('POST', '/createRoom', token, body);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.room_id as string;
    };
    const joinedRooms = async (token: string) => (await req('GET', '/joined_rooms', token)).body.joined_rooms as string[];
    const membership = async (token: string, roomId: string, userId: string) => {
      const r = await req('GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(userId)}`, token);
      return r.status === 200 ? (r.body.membership as string) : `status ${r.status}`;
    };
    let txn = 0;
    const send = async (token: string, roomId: string, body: string) => {
      const r = await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/a${++txn}`, token, { msgtype: 'm.text', body });
      expect(r.status).toBe(200);
      return r.body.event_id as string;
    };

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      admin = await registerAdmin(t, 'root');
    }, 60000);
    afterAll(() => t?.stop());

    it('is for admins only', async () => {
      const alice = await registerUser(req, 'plain');
      const roomId = await createRoom(alice);
      for (const p of [`/admin/evacuateRoom/${enc(roomId)}`, `/admin/purgeRoom/${enc(roomId)}`, '/admin/evacuateUser/@plain:localhost:8008', '/admin/resetPassword/@plain:localhost:8008']) {
        expect((await adminCall(p, alice, { password: 'x' })).body.errcode, p).toBe('M_FORBIDDEN');
        expect((await adminCall(p, '', { password: 'x' })).status, p).toBe(401);
      }
      // Nothing happened.
      expect(await joinedRooms(alice)).toEqual([roomId]);
    });

    it('evacuates a room: its local members leave, invites are declined', async () => {
      const alice = await registerUser(req, 'eva1');
      const bob = await registerUser(req, 'eva2');
      const carol = await registerUser(req, 'eva3');
      const roomId = await createRoom(alice);
      expect((await req('POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(200);
      expect((await req('POST', `/rooms/${enc(roomId)}/invite`, alice, { user_id: '@eva3:localhost:8008' })).status).toBe(200);
      const r = await adminCall(`/admin/evacuateRoom/${enc(roomId)}`, admin);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect((r.body.affected as string[]).sort()).toEqual(['@eva1:localhost:8008', '@eva2:localhost:8008', '@eva3:localhost:8008']);
      expect(await joinedRooms(alice)).toEqual([]);
      expect(await joinedRooms(bob)).toEqual([]);
      // The invite is declined: carol's /sync shows the room among left rooms, not invites.
      const withLeaves = enc(JSON.stringify({ room: { include_leave: true } }));
      const carolSync = async () => (await req('GET', `/sync?timeout=0&filter=${withLeaves}`, carol)).body as { rooms?: { invite?: Body; leave?: Body } };
      await until(async () => Object.keys((await carolSync()).rooms?.leave ?? {}).length > 0);
      const s = await carolSync();
      expect(Object.keys(s.rooms?.invite ?? {})).toEqual([]);
      expect(Object.keys(s.rooms?.leave ?? {})).toEqual([roomId]);
      expect(await membership(bob, roomId, '@eva2:localhost:8008')).toBe('leave');
      // Evacuating it again affects nobody.
      expect((await adminCall(`/admin/evacuateRoom/${enc(roomId)}`, admin)).body.affected).toEqual([]);
      expect((await adminCall(`/admin/evacuateRoom/${enc('!nowhere:localhost:8008')}`, admin)).body.errcode).toBe('M_NOT_FOUND');
      expect((await adminCall(`/admin/evacuateRoom/not-a-room`, admin)).body.errcode).toBe('M_INVALID_PARAM');
    });

    it('evacuates a user from every room they are in', async () => {
      const alice = await registerUser(req, 'evu1');
      const bob = await registerUser(req, 'evu2');
      const r1 = await createRoom(alice);
      const r2 = await createRoom(alice);
      const r3 = await createRoom(alice);
      for (const r of [r1, r2]) expect((await req('POST', `/rooms/${enc(r)}/join`, bob, {})).status).toBe(200);
      expect((await req('POST', `/rooms/${enc(r3)}/invite`, alice, { user_id: '@evu2:localhost:8008' })).status).toBe(200);
      const r = await adminCall('/admin/evacuateUser/@evu2:localhost:8008', admin);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect((r.body.affected as string[]).sort()).toEqual([r1, r2, r3].sort());
      expect(await joinedRooms(bob)).toEqual([]);
      expect((await joinedRooms(alice)).sort()).toEqual([r1, r2, r3].sort());
      expect(await membership(alice, r3, '@evu2:localhost:8008')).toBe('leave');
      expect((await adminCall('/admin/evacuateUser/@evu2:elsewhere.example', admin)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await adminCall('/admin/evacuateUser/nobody', admin)).body.errcode).toBe('M_INVALID_PARAM');
    });

    it('purges a room from the roomserver, /sync, search and notifications', async () => {
      const alice = await registerUser(req, 'pur1');
      const bob = await registerUser(req, 'pur2');
      const keep = await createRoom(alice);
      const roomId = await createRoom(alice);
      expect((await req('POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(200);
      await send(alice, keep, 'okapi in the kept room');
      const gone = await send(alice, roomId, 'okapi in the purged room');
      // Wait until syncapi and push have the message: searchable, and bob has a notification.
      const search = async () => {
        const r = await req('POST', '/search', alice, { search_categories: { room_events: { search_term: 'okapi' } } });
        return ((r.body.search_categories as Body).room_events as { results: Array<{ result: Body }> }).results.map((x) => x.result.room_id);
      };
      await until(async () => (await search()).length === 2);
      await until(async () => ((await req('GET', '/notifications', bob)).body.notifications as Body[]).length > 0);
      const r = await adminCall(`/admin/purgeRoom/${enc(roomId)}`, admin);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      // Gone from the roomserver: no state, no event, no joined members; the other room stays.
      expect((await req('GET', `/rooms/${enc(roomId)}/state`, alice)).status).toBeGreaterThanOrEqual(400);
      expect((await req('GET', `/rooms/${enc(roomId)}/event/${enc(gone)}`, alice)).status).toBe(404);
      expect(await joinedRooms(alice)).toEqual([keep]);
      expect(await joinedRooms(bob)).toEqual([]);
      // Gone from syncapi (a fresh /sync does not show it), search and bob's notifications.
      await until(async () => (await search()).length === 1);
      expect(await search()).toEqual([keep]);
      const s = (await req('GET', '/sync?timeout=0', alice)).body as { rooms?: { join?: Record<string, unknown> } };
      expect(Object.keys(s.rooms?.join ?? {})).toEqual([keep]);
      await until(async () => ((await req('GET', '/notifications', bob)).body.notifications as Body[]).length === 0);
      // Sending into it now fails; purging it again finds nothing.
      expect((await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/after`, alice, { msgtype: 'm.text', body: 'x' })).status).toBeGreaterThanOrEqual(400);
      expect((await adminCall(`/admin/purgeRoom/${enc(roomId)}`, admin)).body.errcode).toBe('M_NOT_FOUND');
      // The kept room still works.
      await send(alice, keep, 'still here');
    });

    it('resets a password, logging devices out when asked', async () => {
      const bob = await registerUser(req, 'pw1');
      const login = (password: string) => req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'pw1' }, password });
      let r = await adminCall('/admin/resetPassword/@pw1:localhost:8008', admin, { password: 'new-secret' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.password_updated).toBe(true);
      expect((await login('pw')).status).toBe(403);
      expect((await login('new-secret')).status).toBe(200);
      // Without logout_devices the old token still works; with it, it does not.
      expect((await req('GET', '/account/whoami', bob)).status).toBe(200);
      r = await adminCall('/admin/resetPassword/@pw1:localhost:8008', admin, { password: 'newer-secret', logout_devices: true });
      expect(r.status).toBe(200);
      expect((await req('GET', '/account/whoami', bob)).body.errcode).toBe('M_UNKNOWN_TOKEN');
      expect((await adminCall('/admin/resetPassword/@nobody:localhost:8008', admin, { password: 'x' })).body.errcode).toBe('M_NOT_FOUND');
      expect((await adminCall('/admin/resetPassword/@pw1:localhost:8008', admin, {})).body.errcode).toBe('M_MISSING_PARAM');
      expect((await adminCall('/admin/resetPassword/@pw1:localhost:8008', admin, { password: 7 })).body.errcode).toBe('M_BAD_JSON');
      expect((await adminCall('/admin/resetPassword/@pw1:elsewhere.example', admin, { password: 'x' })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await getJson(`${t.baseUrl}/_dendrite/admin/resetPassword/@pw1:localhost:8008`, { method: 'POST', body: '{not json', headers: { Authorization: `Bearer ${admin}` } })).body.errcode).toBe('M_NOT_JSON');
      const huge = await adminCall('/admin/resetPassword/@pw1:localhost:8008', admin, { password: 'x', pad: 'x'.repeat(32 * 1024) });
      expect(huge.status).toBe(413);
      expect(huge.body.errcode).toBe('M_TOO_LARGE');
      expect((await adminCall('/admin/resetPassword/@pw1:localhost:8008', admin, { password: 'x'.repeat(513) })).body.errcode).toBe('M_INVALID_PARAM');
    });
  });
}
