/** POST /createRoom over HTTP: the room the roomserver then holds, the alias, the directory, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`POST /createRoom and reading rooms [${dialect}]`, () => {
    let t: TestServer;
    let token: string;
    const me = '@creator:localhost:8008';
    const req = (method: string, path: string, body?: unknown, auth = token) =>
      getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: `Bearer ${auth}` } : {}) },
      });

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      token = (await req('POST', '/register', { auth: { type: 'm.login.dummy' }, username: 'creator', password: 'pw' }, '')).body.access_token as string;
      await req('PUT', `/profile/${encodeURIComponent(me)}/displayname`, { displayname: 'The Creator' });
    }, 60_000);
    afterAll(() => t?.stop());

    it('creates a private room by default, with the creator joined under their display name', async () => {
      const r = await req('POST', '/createRoom', {});
      expect(r.status).toBe(200);
      const roomId = r.body.room_id as string;
      expect(roomId).toMatch(/^![A-Za-z0-9]+:localhost:8008$/);
      const rs = t.server.apis.roomserver;
      const state = await rs.queryLatestEventsAndState({ room_id: roomId });
      const byKey = new Map(state.state_events.map((e) => [`${e.pdu.type}|${e.pdu.state_key}`, e.pdu.content]));
      expect(byKey.get('m.room.join_rules|')).toEqual({ join_rule: 'invite' });
      expect(byKey.get(`m.room.member|${me}`)).toEqual({ membership: 'join', displayname: 'The Creator' });
      expect(state.room_version).toBe('10');
      expect((await rs.queryPublishedRooms({ room_id: roomId })).room_ids).toEqual([]);
    });

    it('creates a public room with an alias, published, of the version asked for', async () => {
      const r = await req('POST', '/createRoom', { visibility: 'public', room_alias_name: 'lobby', name: 'Lobby', room_version: '12', invite: ['@friend:localhost:8008'] });
      expect(r.status).toBe(200);
      const roomId = r.body.room_id as string;
      const rs = t.server.apis.roomserver;
      expect(await rs.queryRoomIdForAlias({ alias: '#lobby:localhost:8008' })).toEqual({ room_id: roomId });
      expect((await rs.queryPublishedRooms({ room_id: roomId })).room_ids).toEqual([roomId]);
      const state = await rs.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.name', state_key: '' }, { type: 'm.room.canonical_alias', state_key: '' }] });
      expect(state.room_version).toBe('12');
      expect(state.state_events.map((e) => e.pdu.content).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([{ alias: '#lobby:localhost:8008' }, { name: 'Lobby' }]);
      expect((await rs.queryMembershipForUser({ room_id: roomId, user_id: '@friend:localhost:8008' })).membership).toBe('invite');

      const again = await req('POST', '/createRoom', { room_alias_name: 'lobby' });
      expect(again.status).toBe(400);
      expect(again.body.errcode).toBe('M_ROOM_IN_USE');
    });

    it('answers bad requests with spec errors', async () => {
      const cases: Array<[unknown, string]> = [
        [{ room_version: '99' }, 'M_UNSUPPORTED_ROOM_VERSION'],
        [{ visibility: 'hidden' }, 'M_BAD_JSON'],
        [{ preset: 'party' }, 'M_BAD_JSON'],
        [{ invite: ['not a user'] }, 'M_INVALID_PARAM'],
        [{ initial_state: [{ type: 'm.room.topic' }] }, 'M_BAD_JSON'],
        [{ room_alias_name: 'has:colon' }, 'M_INVALID_PARAM'],
        [{ name: 5 }, 'M_BAD_JSON'],
        [{ power_level_content_override: [] }, 'M_BAD_JSON'],
      ];
      for (const [body, errcode] of cases) {
        const r = await req('POST', '/createRoom', body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.body.errcode, JSON.stringify(body)).toBe(errcode);
      }
      expect((await req('POST', '/createRoom', {}, '')).status).toBe(401);
    });

    it('lets members read the room: joined rooms, joined members, the state and single state events', async () => {
      const roomId = (await req('POST', '/createRoom', { name: 'Readable' })).body.room_id as string;
      const enc = encodeURIComponent(roomId);
      expect(((await req('GET', '/joined_rooms')).body.joined_rooms as string[])).toContain(roomId);
      expect((await req('GET', `/rooms/${enc}/joined_members`)).body).toEqual({ joined: { [me]: { display_name: 'The Creator', avatar_url: null } } });
      const state = (await req('GET', `/rooms/${enc}/state`)).body as unknown as Array<{ type: string; state_key: string; event_id: string; room_id: string }>;
      expect(state.map((e) => e.type).sort()).toEqual(['m.room.create', 'm.room.guest_access', 'm.room.history_visibility', 'm.room.join_rules', 'm.room.member', 'm.room.name', 'm.room.power_levels']);
      expect(state.every((e) => e.room_id === roomId && e.event_id.startsWith('$'))).toBe(true);
      expect((await req('GET', `/rooms/${enc}/state/m.room.name`)).body).toEqual({ name: 'Readable' });
      expect((await req('GET', `/rooms/${enc}/state/m.room.name/`)).body).toEqual({ name: 'Readable' });
      expect((await req('GET', `/rooms/${enc}/state/m.room.member/${encodeURIComponent(me)}?format=event`)).body).toMatchObject({ type: 'm.room.member', state_key: me, content: { membership: 'join' } });
      expect((await req('GET', `/rooms/${enc}/state/m.room.topic`)).body.errcode).toBe('M_NOT_FOUND');

      const other = (await req('POST', '/register', { auth: { type: 'm.login.dummy' }, username: 'outsider', password: 'pw' }, '')).body.access_token as string;
      for (const path of [`/rooms/${enc}/state`, `/rooms/${enc}/state/m.room.name`, `/rooms/${enc}/joined_members`]) {
        const r = await req('GET', path, undefined, other);
        expect(r.status, path).toBe(403);
        expect(r.body.errcode, path).toBe('M_FORBIDDEN');
      }
      expect((await req('GET', '/rooms/notaroom/state')).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', '/joined_rooms', undefined, other)).body).toEqual({ joined_rooms: [] });
    });

    it('sends messages (once per transaction ID) and state, refuses what the room does not allow, and lets members leave', async () => {
      const roomId = (await req('POST', '/createRoom', {})).body.room_id as string;
      const enc = encodeURIComponent(roomId);
      const sent = await req('PUT', `/rooms/${enc}/send/m.room.message/txn1`, { msgtype: 'm.text', body: 'hello' });
      expect(sent.status).toBe(200);
      expect(String(sent.body.event_id)).toMatch(/^\$/);
      expect((await req('PUT', `/rooms/${enc}/send/m.room.message/txn1`, { msgtype: 'm.text', body: 'hello' })).body.event_id).toBe(sent.body.event_id);
      const second = await req('PUT', `/rooms/${enc}/send/m.room.message/txn2`, { msgtype: 'm.text', body: 'again' });
      expect(second.body.event_id).not.toBe(sent.body.event_id);
      const latest = await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] });
      expect(latest.latest_event_ids).toEqual([second.body.event_id]);

      expect((await req('PUT', `/rooms/${enc}/state/m.room.topic`, { topic: 'set by state' })).status).toBe(200);
      expect((await req('GET', `/rooms/${enc}/state/m.room.topic`)).body).toEqual({ topic: 'set by state' });

      const other = (await req('POST', '/register', { auth: { type: 'm.login.dummy' }, username: 'stranger', password: 'pw' }, '')).body.access_token as string;
      const refused = await req('PUT', `/rooms/${enc}/send/m.room.message/t`, { body: 'let me in' }, other);
      expect(refused.status).toBe(403);
      expect(refused.body.errcode).toBe('M_FORBIDDEN');
      expect((await req('PUT', '/rooms/notaroom/send/m.room.message/t', { body: 'x' })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('PUT', `/rooms/${enc}/send/m.room.message/big`, JSON.stringify({ body: 'x'.repeat(70_000) }))).status).toBe(413);

      expect((await req('POST', `/rooms/${enc}/leave`, {})).status).toBe(200);
      expect((await req('GET', '/joined_rooms')).body.joined_rooms).not.toContain(roomId);
      // A user who left reads the state as it was when they left.
      expect((await req('GET', `/rooms/${enc}/state/m.room.topic`)).body).toEqual({ topic: 'set by state' });
      expect((await req('GET', `/rooms/${enc}/state/m.room.member/${encodeURIComponent(me)}`)).body).toEqual({ membership: 'leave' });
      expect((await req('PUT', `/rooms/${enc}/send/m.room.message/after`, { body: 'gone' })).status).toBe(403);
    });

    it('lets initial_state take the place of the preset defaults it names', async () => {
      const reg = await getJson(`${t.baseUrl}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: 'presetter', password: 'pw' }) });
      const auth = { Authorization: `Bearer ${reg.body.access_token as string}` };
      const created = await getJson(`${t.baseUrl}/_matrix/client/v3/createRoom`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ preset: 'private_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] }),
      });
      const roomId = created.body.room_id as string;
      // The room's whole history, once syncapi has it: one history visibility event, the asked-for one.
      const end = Date.now() + 5000;
      let hv: Array<Record<string, unknown>> = [];
      for (;;) {
        const page = await getJson(`${t.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=f&limit=50`, { headers: auth });
        const chunk = (page.body.chunk as Array<Record<string, unknown>> | undefined) ?? [];
        hv = chunk.filter((e) => e.type === 'm.room.history_visibility');
        if (chunk.some((e) => e.type === 'm.room.guest_access') || Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(hv.map((e) => e.content)).toEqual([{ history_visibility: 'joined' }]);
    });
  });
}
