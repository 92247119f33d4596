/** The room directory over HTTP: aliases, a room's local aliases, publishing and /publicRooms, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`the room directory [${dialect}]`, () => {
    let t: TestServer;
    const req = (method: string, path: string, token: string, body?: unknown, raw?: string) =>
      getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
        method,
        ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    const reg = async (u: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: u, password: 'pw' })).body.access_token as string;
    const createRoom = async (token: string, body: Record<string, unknown> = {}) => {
      const res = await req('POST', '/createRoom', token, body);
      expect(res.status).toBe(200);
      return res.body.room_id as string;
    };
    const alias = (a: string) => `/directory/room/${encodeURIComponent(a)}`;
    const SERVER = 'localhost:8008';
    let alice: string;
    let bob: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await reg('alice');
      bob = await reg('bob');
    });
    afterAll(() => t?.stop());

    describe('/directory/room/{roomAlias}', () => {
      it('maps, resolves and removes an alias', async () => {
        const room = await createRoom(alice);
        expect(await req('PUT', alias(`#dogs:${SERVER}`), alice, { room_id: room })).toMatchObject({ status: 200, body: {} });
        // Resolving needs no account.
        expect(await req('GET', alias(`#dogs:${SERVER}`), '')).toMatchObject({ status: 200, body: { room_id: room, servers: [SERVER] } });
        expect((await req('GET', `/rooms/${encodeURIComponent(room)}/aliases`, alice)).body).toEqual({ aliases: [`#dogs:${SERVER}`] });
        expect(await req('DELETE', alias(`#dogs:${SERVER}`), alice)).toMatchObject({ status: 200, body: {} });
        expect(await req('GET', alias(`#dogs:${SERVER}`), '')).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
        expect(await req('DELETE', alias(`#dogs:${SERVER}`), alice)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
        // The /r0 prefix serves the same routes.
        expect((await getJson(`${t.baseUrl}/_matrix/client/r0${alias(`#dogs:${SERVER}`)}`)).status).toBe(404);
      });

      it('refuses a taken alias with 409 M_UNKNOWN, and aliases created by createRoom count', async () => {
        const room = await createRoom(alice, { room_alias_name: 'cats' });
        const other = await createRoom(alice);
        expect(await req('PUT', alias(`#cats:${SERVER}`), alice, { room_id: other })).toMatchObject({ status: 409, body: { errcode: 'M_UNKNOWN' } });
        expect(await req('PUT', alias(`#cats:${SERVER}`), alice, { room_id: room })).toMatchObject({ status: 409, body: { errcode: 'M_UNKNOWN' } });
        expect((await req('GET', alias(`#cats:${SERVER}`), alice)).body.room_id).toBe(room);
      });

      it('rejects bad aliases, bad room IDs, unknown rooms and bad bodies', async () => {
        const room = await createRoom(alice);
        const put = (a: string, body?: unknown, raw?: string) => req('PUT', alias(a), alice, body, raw);
        expect(await put('#elsewhere:example.org', { room_id: room })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await put('no-sigil:localhost:8008', { room_id: room })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await put('#no-server', { room_id: room })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await put(`#:${SERVER}`, { room_id: room })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await put(`#${'x'.repeat(260)}:${SERVER}`, { room_id: room })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await put(`#ok:${SERVER}`, { room_id: `!nope:${SERVER}` })).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
        expect(await put(`#ok:${SERVER}`, { room_id: 'garbage' })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await put(`#ok:${SERVER}`, {})).toMatchObject({ status: 400, body: { errcode: 'M_MISSING_PARAM' } });
        expect(await put(`#ok:${SERVER}`, { room_id: 5 })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
        expect(await put(`#ok:${SERVER}`, undefined, '{not json')).toMatchObject({ status: 400, body: { errcode: 'M_NOT_JSON' } });
        expect((await req('PUT', alias(`#ok:${SERVER}`), '', { room_id: room })).body.errcode).toBe('M_MISSING_TOKEN');
        expect(await req('GET', alias('#bad'), '')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        // Other servers' aliases would need federation: unknown for now.
        // Another server's alias is asked of that server; one that cannot be reached is a 502.
        expect(await req('GET', alias('#x:example.org'), '')).toMatchObject({ status: 502, body: { errcode: 'M_UNKNOWN' } });
        expect(await req('DELETE', alias('#bad'), alice)).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect((await req('DELETE', alias(`#ok:${SERVER}`), '')).status).toBe(401);
      });

      it("lets an alias's creator and the room's moderators remove it, nobody else", async () => {
        const room = await createRoom(alice, { preset: 'public_chat' });
        expect((await req('PUT', alias(`#bobs:${SERVER}`), bob, { room_id: room })).status).toBe(200);
        expect((await req('PUT', alias(`#alices:${SERVER}`), alice, { room_id: room })).status).toBe(200);
        expect(await req('DELETE', alias(`#alices:${SERVER}`), bob)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        expect((await req('DELETE', alias(`#bobs:${SERVER}`), bob)).status).toBe(200);
        expect((await req('PUT', alias(`#bobs:${SERVER}`), bob, { room_id: room })).status).toBe(200);
        // Alice (power 100) may remove Bob's alias from her room.
        expect((await req('DELETE', alias(`#bobs:${SERVER}`), alice)).status).toBe(200);
        expect((await req('GET', alias(`#alices:${SERVER}`), '')).status).toBe(200);
      });

      it('lists every server with joined members, ours first', async () => {
        const room = await createRoom(alice, { preset: 'public_chat', room_alias_name: 'servers' });
        expect((await req('POST', `/join/${encodeURIComponent(room)}`, bob, {})).status).toBe(200);
        expect((await req('GET', alias(`#servers:${SERVER}`), '')).body.servers).toEqual([SERVER]);
      });
    });

    describe('/rooms/{roomId}/aliases', () => {
      it('answers members and world_readable rooms, and refuses others', async () => {
        const room = await createRoom(alice, { preset: 'public_chat', room_alias_name: 'members' });
        const path = `/rooms/${encodeURIComponent(room)}/aliases`;
        expect(await req('GET', path, bob)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        await req('POST', `/join/${encodeURIComponent(room)}`, bob, {});
        expect(await req('GET', path, bob)).toMatchObject({ status: 200, body: { aliases: [`#members:${SERVER}`] } });
        expect((await req('POST', `/rooms/${encodeURIComponent(room)}/kick`, alice, { user_id: `@bob:${SERVER}` })).status).toBe(200);
        expect((await req('GET', path, bob)).status).toBe(403);

        const open = await createRoom(alice, { initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }] });
        expect(await req('GET', `/rooms/${encodeURIComponent(open)}/aliases`, bob)).toMatchObject({ status: 200, body: { aliases: [] } });

        expect(await req('GET', `/rooms/${encodeURIComponent(`!unknown:${SERVER}`)}/aliases`, bob)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        expect(await req('GET', '/rooms/garbage/aliases', bob)).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect((await req('GET', path, '')).status).toBe(401);
      });
    });

    describe('/directory/list/room/{roomId}', () => {
      it('reads and sets visibility, for those who may', async () => {
        const room = await createRoom(alice, { preset: 'public_chat' });
        const path = `/directory/list/room/${encodeURIComponent(room)}`;
        expect(await req('GET', path, '')).toMatchObject({ status: 200, body: { visibility: 'private' } });
        expect(await req('PUT', path, alice, { visibility: 'public' })).toMatchObject({ status: 200, body: {} });
        expect((await req('GET', path, '')).body).toEqual({ visibility: 'public' });

        // Bob is not in the room, then is in it without the power to.
        expect(await req('PUT', path, bob, { visibility: 'private' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        await req('POST', `/join/${encodeURIComponent(room)}`, bob, {});
        expect(await req('PUT', path, bob, { visibility: 'private' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        expect((await req('GET', path, '')).body).toEqual({ visibility: 'public' });

        expect(await req('PUT', path, alice, { visibility: 'private' })).toMatchObject({ status: 200 });
        expect((await req('GET', path, '')).body).toEqual({ visibility: 'private' });
        // The spec's default visibility is public.
        expect((await req('PUT', path, alice, {})).status).toBe(200);
        expect((await req('GET', path, '')).body).toEqual({ visibility: 'public' });
      });

      it('knows createRoom visibility, and rejects bad input and unknown rooms', async () => {
        const room = await createRoom(alice, { visibility: 'public' });
        const path = `/directory/list/room/${encodeURIComponent(room)}`;
        expect((await req('GET', path, '')).body).toEqual({ visibility: 'public' });
        expect(await req('PUT', path, alice, { visibility: 'secret' })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await req('PUT', path, alice, undefined, '[')).toMatchObject({ status: 400, body: { errcode: 'M_NOT_JSON' } });
        expect((await req('PUT', path, '', { visibility: 'private' })).status).toBe(401);
        const unknown = `/directory/list/room/${encodeURIComponent(`!unknown:${SERVER}`)}`;
        expect(await req('GET', unknown, '')).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
        expect(await req('PUT', unknown, alice, { visibility: 'public' })).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
        expect(await req('GET', '/directory/list/room/garbage', '')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
      });
    });

    describe('/publicRooms', () => {
      let big: string;
      let small: string;
      let space: string;
      let hidden: string;

      beforeAll(async () => {
        big = await createRoom(alice, {
          visibility: 'public',
          name: 'Zebra crossing',
          topic: 'stripes',
          room_alias_name: 'zebra',
          initial_state: [{ type: 'm.room.guest_access', content: { guest_access: 'can_join' } }],
        });
        await req('POST', `/join/${encodeURIComponent(big)}`, bob, {});
        small = await createRoom(alice, { visibility: 'public', name: 'Quiet corner', topic: 'About ZEBRAS and more' });
        space = await createRoom(alice, { visibility: 'public', name: 'Zebra space', creation_content: { type: 'm.space' } });
        hidden = await createRoom(alice, { preset: 'public_chat', name: 'Zebra hidden' });
      });

      const search = (body: Record<string, unknown>, token = alice) => req('POST', '/publicRooms', token, body);

      it('describes published rooms, largest first', async () => {
        const res = await search({ filter: { generic_search_term: 'zebra' } });
        expect(res.status).toBe(200);
        const chunk = res.body.chunk as Array<Record<string, unknown>>;
        expect(chunk.map((r) => r.room_id)).toEqual([big, ...[small, space].sort()]);
        expect(chunk[0]).toEqual({
          room_id: big,
          num_joined_members: 2,
          name: 'Zebra crossing',
          topic: 'stripes',
          canonical_alias: `#zebra:${SERVER}`,
          join_rule: 'public',
          world_readable: false,
          guest_can_join: true,
        });
        expect(chunk.find((r) => r.room_id === space)).toMatchObject({ room_type: 'm.space', num_joined_members: 1 });
        expect(res.body.total_room_count_estimate).toBe(3);
        expect(res.body.next_batch).toBeUndefined();
        expect(chunk.some((r) => r.room_id === hidden)).toBe(false);
      });

      it('searches name, topic and alias case-insensitively, and filters room types', async () => {
        const ids = async (body: Record<string, unknown>) => ((await search(body)).body.chunk as Array<{ room_id: string }>).map((r) => r.room_id).sort();
        expect(await ids({ filter: { generic_search_term: 'STRIPES' } })).toEqual([big]);
        expect(await ids({ filter: { generic_search_term: 'quiet' } })).toEqual([small]);
        expect(await ids({ filter: { generic_search_term: `#zebra:${SERVER}` } })).toEqual([big]);
        expect(await ids({ filter: { generic_search_term: 'no such room anywhere' } })).toEqual([]);
        expect(await ids({ filter: { generic_search_term: 'zebra', room_types: ['m.space'] } })).toEqual([space]);
        expect(await ids({ filter: { generic_search_term: 'zebra', room_types: [null] } })).toEqual([big, small].sort());
        // No application service networks exist, so a network lists nothing.
        expect(await ids({ third_party_instance_id: 'irc' })).toEqual([]);
      });

      it('pages with limit and next_batch, forwards and back', async () => {
        const first = await search({ limit: 1, filter: { generic_search_term: 'zebra' } });
        expect((first.body.chunk as unknown[]).length).toBe(1);
        expect(first.body.prev_batch).toBeUndefined();
        const seen = [(first.body.chunk as Array<{ room_id: string }>)[0]?.room_id];
        let next = first.body.next_batch as string | undefined;
        let last = first;
        while (next !== undefined) {
          last = await search({ limit: 1, since: next, filter: { generic_search_term: 'zebra' } });
          seen.push(...(last.body.chunk as Array<{ room_id: string }>).map((r) => r.room_id));
          next = last.body.next_batch as string | undefined;
        }
        expect(seen).toEqual([big, ...[small, space].sort()]);
        const back = await search({ limit: 1, since: last.body.prev_batch, filter: { generic_search_term: 'zebra' } });
        expect((back.body.chunk as Array<{ room_id: string }>)[0]?.room_id).toBe(seen[1]);

        // GET pages the whole list the same way, without an account.
        const all = await req('GET', '/publicRooms', '');
        expect(all.status).toBe(200);
        const total = all.body.total_room_count_estimate as number;
        expect((all.body.chunk as unknown[]).length).toBe(total);
        const page1 = await req('GET', '/publicRooms?limit=2', '');
        expect((page1.body.chunk as unknown[]).length).toBe(2);
        const page2 = await req('GET', `/publicRooms?limit=2&since=${encodeURIComponent(page1.body.next_batch as string)}`, '');
        expect([...(page1.body.chunk as unknown[]), ...(page2.body.chunk as unknown[])]).toEqual((all.body.chunk as unknown[]).slice(0, 4));
        const counts = (all.body.chunk as Array<{ num_joined_members: number }>).map((r) => r.num_joined_members);
        expect(counts).toEqual([...counts].sort((a, b) => b - a));
      });

      it('drops unpublished rooms', async () => {
        await req('PUT', `/directory/list/room/${encodeURIComponent(space)}`, alice, { visibility: 'private' });
        const res = await search({ filter: { generic_search_term: 'zebra' } });
        expect((res.body.chunk as Array<{ room_id: string }>).map((r) => r.room_id)).toEqual([big, small]);
        await req('PUT', `/directory/list/room/${encodeURIComponent(space)}`, alice, { visibility: 'public' });
      });

      it('rejects bad tokens, unreachable or malformed servers and bad bodies', async () => {
        expect(await req('GET', '/publicRooms?since=bogus', '')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await search({ since: 'o-1' })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await req('GET', '/publicRooms?limit=ten', '')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        // Another server's list is asked of it: one that cannot be reached is a 502, a malformed name a 400.
        expect(await req('GET', '/publicRooms?server=unreachable.invalid', '')).toMatchObject({ status: 502, body: { errcode: 'M_UNKNOWN' } });
        expect((await req('GET', `/publicRooms?server=${SERVER}`, '')).status).toBe(200);
        expect(await req('POST', '/publicRooms?server=unreachable.invalid', alice, {})).toMatchObject({ status: 502, body: { errcode: 'M_UNKNOWN' } });
        expect(await req('GET', `/publicRooms?server=${encodeURIComponent('bad server!')}`, '')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await search({ limit: 'ten' })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
        expect(await search({ filter: 'zebra' })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
        expect(await search({ filter: { generic_search_term: 7 } })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
        expect(await search({ include_all_networks: true, third_party_instance_id: 'irc' })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
        expect(await req('POST', '/publicRooms', alice, undefined, '{')).toMatchObject({ status: 400, body: { errcode: 'M_NOT_JSON' } });
        expect((await search({}, '')).status).toBe(401);
        // An empty body is an empty query.
        expect((await req('POST', '/publicRooms', alice, undefined, '')).status).toBe(200);
      });
    });

    describe('deleting a canonical alias', () => {
      it('takes it out of the room\'s m.room.canonical_alias event', async () => {
        const room = (await req('POST', '/createRoom', alice, { preset: 'public_chat', room_alias_name: 'canonical-gone' })).body.room_id as string;
        const state = async () => (await req('GET', `/rooms/${encodeURIComponent(room)}/state/m.room.canonical_alias`, alice)).body;
        expect((await state()).alias).toBe(`#canonical-gone:${SERVER}`);
        expect((await req('DELETE', alias(`#canonical-gone:${SERVER}`), alice)).status).toBe(200);
        expect((await state()).alias).toBeUndefined();
      });
    });
  });
}
