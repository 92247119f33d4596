/** Local peeks (MSC2753) over HTTP: peek, the `peek` section of /sync per device, unpeek, peek then join; on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

for (const dialect of TEST_DIALECTS) {
  describe(`local peeks [${dialect}]`, () => {
    let t: TestServer;
    const call = (method: string, url: string, token: string, body?: unknown) =>
      getJson(url, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      }) as Promise<{ status: number; body: Body }>;
    const req = (method: string, path: string, token: string, body?: unknown) => call(method, `${t.baseUrl}/_matrix/client/v3${path}`, token, body);
    const enc = encodeURIComponent;
    const login = async (u: string, register: boolean) =>
      register
        ? ((await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: u, password: 'pw' })).body.access_token as string)
        : ((await req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: u }, password: 'pw' })).body.access_token as string);
    const sync = async (token: string, since?: string, timeout = 0) => (await req('GET', `/sync?timeout=${timeout}${since ? `&since=${enc(since)}` : ''}`, token)).body;
    let txn = 0;
    const send = async (token: string, roomId: string, body: string) => (await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`, token, { msgtype: 'm.text', body })).body.event_id as string;
    const visibility = (token: string, roomId: string, v: string) => req('PUT', `/rooms/${enc(roomId)}/state/m.room.history_visibility/`, token, { history_visibility: v });
    /** Waits until syncapi has the event (its consumer runs behind the send; slower on PostgreSQL). */
    const synced = async (token: string, roomId: string, eventId: string) => {
      for (let i = 0; i < 250; i++) {
        if ((await req('GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`, token)).status === 200) return;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('the event never reached syncapi');
    };
    /** Syncs until the check passes (events reach syncapi asynchronously). */
    const syncUntil = async (token: string, since: string | undefined, check: (b: Body) => boolean): Promise<Body> => {
      for (let i = 0; i < 50; i++) {
        const b = await sync(token, since, 500);
        if (check(b)) return b;
        since = b.next_batch as string;
      }
      throw new Error('sync never passed the check');
    };

    let alice: string;
    let bob: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await login('alice', true);
      bob = await login('bob', true);
    });
    afterAll(() => t?.stop());

    it('peeks into a world_readable room by ID: full on the first sync, then only news, for that device only', async () => {
      const room = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      expect((await visibility(alice, room, 'world_readable')).status).toBe(200);
      const bob2 = await login('bob', false);
      const first2 = await sync(bob2);

      expect(await req('POST', `/peek/${enc(room)}`, bob, {})).toMatchObject({ status: 200, body: { room_id: room } });
      const sent = await send(alice, room, 'something to peek');
      // Bob's first sync must already hold the message: it is the one that brings the room in full.
      await synced(alice, room, sent);
      const first = await syncUntil(bob, undefined, (b) => b.rooms.peek[room]?.timeline.events.at(-1)?.content?.body === 'something to peek');
      const section = first.rooms.peek[room];
      expect(section.timeline).toHaveProperty('limited');
      expect(section.timeline).toHaveProperty('prev_batch');
      expect(section.timeline.events[0].type).toBe('m.room.create');
      expect(section.state.events).toEqual([]);
      expect(Object.keys(first.rooms.join)).toEqual([]);

      // Nothing new: the room stays out.
      const second = await sync(bob, first.next_batch as string);
      expect(second.rooms.peek[room]).toBeUndefined();

      // A new event wakes a long-polling sync of the peeking device.
      const waiting = sync(bob, second.next_batch as string, 10_000);
      await new Promise((r) => setTimeout(r, 200));
      await send(alice, room, 'something else to peek');
      let third = await waiting;
      if (!third.rooms.peek[room]) third = await syncUntil(bob, third.next_batch as string, (b) => Boolean(b.rooms.peek[room]));
      expect(third.rooms.peek[room].timeline.events.at(-1).content.body).toBe('something else to peek');
      expect(third.rooms.peek[room].timeline.events[0].type).not.toBe('m.room.create');

      // The user's other device does not peek.
      const other = await sync(bob2, first2.next_batch as string);
      expect(other.rooms.peek).toEqual({});
      expect((await sync(bob2)).rooms.peek).toEqual({});
    });

    it('peeks by alias', async () => {
      const room = (await req('POST', '/createRoom', alice, { room_alias_name: 'peekable' })).body.room_id as string;
      await visibility(alice, room, 'world_readable');
      const res = await call('POST', `${t.baseUrl}/_matrix/client/unstable/org.matrix.msc2753/peek/${enc('#peekable:localhost:8008')}`, bob, {});
      expect(res).toMatchObject({ status: 200, body: { room_id: room } });
      await send(alice, room, 'by alias');
      await syncUntil(bob, undefined, (b) => b.rooms.peek[room]?.timeline.events.at(-1)?.content?.body === 'by alias');
      expect((await req('POST', `/peek/${enc('#nothere:localhost:8008')}`, bob, {})).status).toBe(404);
      expect((await req('POST', `/peek/${enc('!nothere:localhost:8008')}`, bob, {})).status).toBe(404);
    });

    it('refuses a peek into a room whose history is not world_readable', async () => {
      for (const v of ['shared', 'invited', 'joined']) {
        const room = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
        await visibility(alice, room, v);
        expect(await req('POST', `/peek/${enc(room)}`, bob, {})).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
      }
    });

    it('stops giving the room after an unpeek', async () => {
      const room = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      await visibility(alice, room, 'world_readable');
      await req('POST', `/peek/${enc(room)}`, bob, {});
      const first = await syncUntil(bob, undefined, (b) => Boolean(b.rooms.peek[room]));
      expect(await call('POST', `${t.baseUrl}/_matrix/client/unstable/org.matrix.msc2753/unpeek/${enc(room)}`, bob, {})).toMatchObject({ status: 200, body: {} });
      await send(alice, room, 'after unpeek');
      await new Promise((r) => setTimeout(r, 300));
      expect((await sync(bob, first.next_batch as string)).rooms.peek[room]).toBeUndefined();
      expect((await sync(bob)).rooms.peek[room]).toBeUndefined();
    });

    it('turns a peek into a join without the room in both sections', async () => {
      const room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await visibility(alice, room, 'world_readable');
      await req('POST', `/peek/${enc(room)}`, bob, {});
      const first = await syncUntil(bob, undefined, (b) => Boolean(b.rooms.peek[room]));
      expect((await req('POST', `/join/${enc(room)}`, bob, {})).status).toBe(200);
      const joined = await syncUntil(bob, first.next_batch as string, (b) => Boolean(b.rooms.join[room]));
      expect(joined.rooms.peek[room]).toBeUndefined();
      await send(alice, room, 'after join');
      const later = await syncUntil(bob, joined.next_batch as string, (b) => Boolean(b.rooms.join[room]));
      expect(later.rooms.peek[room]).toBeUndefined();
      const initial = await sync(bob);
      expect(initial.rooms.peek[room]).toBeUndefined();
      expect(initial.rooms.join[room]).toBeDefined();
    });
  });
}
