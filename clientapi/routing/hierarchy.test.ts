/**
 * GET /_matrix/client/v1/rooms/{roomId}/hierarchy on one real server, on SQLite and PostgreSQL:
 * a space with a subspace and rooms of every kind of access, walked depth first in the spec's
 * order, filtered per user, with suggested_only, max_depth, paging and bad parameters. (Rooms
 * held by another server are covered by federationapi/routing/hierarchy.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const HS = 'localhost:8008';

for (const dialect of TEST_DIALECTS) {
  describe(`GET /hierarchy [${dialect}]`, () => {
    let t: TestServer;
    let alice: string;
    let bob: string;
    let carol: string;
    /** The space S and its rooms: A, S2 (a subspace with B, P and a loop back to S), W, R, and X (no via). */
    const r: Record<'S' | 'A' | 'S2' | 'B' | 'P' | 'W' | 'R' | 'X', string> = { S: '', A: '', S2: '', B: '', P: '', W: '', R: '', X: '' };
    const name: Record<string, string> = {};

    const req = (method: string, p: string, token: string, body?: unknown, prefix = '/_matrix/client/v3') =>
      getJson(`${t.baseUrl}${prefix}${p}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    const register = async (user: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: user, password: 'pw' })).body.access_token as string;
    const createRoom = async (label: string, body: Body) => {
      const res = await req('POST', '/createRoom', alice, { name: label, ...body });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      name[res.body.room_id as string] = label;
      return res.body.room_id as string;
    };
    const addChild = async (parent: string, child: string, content: Body) => {
      const res = await req('PUT', `/rooms/${enc(parent)}/state/m.space.child/${enc(child)}`, alice, content);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    };
    const hierarchy = (token: string, roomId: string, query = '', prefix = '/_matrix/client/v1') => req('GET', `/rooms/${enc(roomId)}/hierarchy${query ? `?${query}` : ''}`, token, undefined, prefix);
    /** The names of the rooms of a whole walk, page by page. */
    const walk = async (token: string, query = ''): Promise<string[]> => {
      const res = await hierarchy(token, r.S, query);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return (res.body.rooms as Body[]).map((room) => name[room.room_id as string] ?? String(room.room_id));
    };

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      [alice, bob, carol] = [await register('alice'), await register('bob'), await register('carol')];
      const space = { creation_content: { type: 'm.space' } };
      r.S = await createRoom('S', { preset: 'public_chat', ...space, topic: 'the top' });
      r.A = await createRoom('A', { preset: 'public_chat' });
      r.S2 = await createRoom('S2', { preset: 'public_chat', ...space });
      r.B = await createRoom('B', { preset: 'public_chat' });
      r.P = await createRoom('P', { preset: 'private_chat' });
      r.W = await createRoom('W', { preset: 'private_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'world_readable' } }] });
      r.R = await createRoom('R', {
        preset: 'private_chat',
        room_version: '10',
        initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: r.S }] } }],
      });
      r.X = await createRoom('X', { preset: 'public_chat' });
      const via = [HS];
      await addChild(r.S, r.A, { via, order: 'a', suggested: true });
      await addChild(r.S, r.S2, { via, order: 'b', suggested: true });
      await addChild(r.S, r.W, { via, order: 'c' });
      await addChild(r.S, r.R, { via });
      // A child event without a via (a removed child) names no child.
      await addChild(r.S, r.X, {});
      await addChild(r.S2, r.B, { via, order: 'a', suggested: true });
      await addChild(r.S2, r.P, { via, order: 'b' });
      // A loop back to the top: cut, not walked again.
      await addChild(r.S2, r.S, { via });
      expect((await req('POST', `/join/${enc(r.S)}`, bob, {})).status).toBe(200);
    }, 120_000);
    afterAll(() => t?.stop());

    it('walks the space depth first in the spec order, showing each user what they may see', async () => {
      expect(await walk(alice)).toEqual(['S', 'A', 'S2', 'B', 'P', 'W', 'R']);
      // Bob is not in P (invite only); R lets in members of S, which he is.
      expect(await walk(bob)).toEqual(['S', 'A', 'S2', 'B', 'W', 'R']);
      // Carol is in nothing: only rooms open to anyone (public or world_readable).
      expect(await walk(carol)).toEqual(['S', 'A', 'S2', 'B', 'W']);
      // MSC2946's unstable path answers the same.
      const unstable = await hierarchy(carol, r.S, '', '/_matrix/client/unstable/org.matrix.msc2946');
      expect((unstable.body.rooms as Body[]).length).toBe(5);
    });

    it('describes each room with its summary and a space with its stripped child events', async () => {
      const res = await hierarchy(bob, r.S);
      const rooms = res.body.rooms as Body[];
      const top = rooms[0]!;
      expect(top).toMatchObject({
        room_id: r.S,
        name: 'S',
        topic: 'the top',
        room_type: 'm.space',
        join_rule: 'public',
        num_joined_members: 2,
        world_readable: false,
        guest_can_join: false,
        room_version: expect.any(String),
      });
      const children = top.children_state as Body[];
      // In the spec's order (order keys first, then the rest), X (no via) left out.
      expect(children.map((c) => c.state_key)).toEqual([r.A, r.S2, r.W, r.R]);
      for (const c of children) {
        expect(Object.keys(c).sort()).toEqual(['content', 'origin_server_ts', 'sender', 'state_key', 'type']);
        expect(c).toMatchObject({ type: 'm.space.child', sender: `@alice:${HS}`, origin_server_ts: expect.any(Number) });
      }
      expect(children[0]!.content).toEqual({ via: [HS], order: 'a', suggested: true });
      const byName = new Map(rooms.map((room) => [name[room.room_id as string], room]));
      // Rooms that are not spaces have no children, and no room_type.
      expect(byName.get('A')).toMatchObject({ join_rule: 'public', children_state: [] });
      expect(byName.get('A')!.room_type).toBeUndefined();
      expect(byName.get('W')).toMatchObject({ world_readable: true, join_rule: 'invite' });
      expect(byName.get('R')).toMatchObject({ join_rule: 'restricted', allowed_room_ids: [r.S], room_version: '10' });
    });

    it('keeps to suggested rooms and to max_depth when asked', async () => {
      expect(await walk(bob, 'suggested_only=true')).toEqual(['S', 'A', 'S2', 'B']);
      const suggested = await hierarchy(bob, r.S, 'suggested_only=true');
      expect(((suggested.body.rooms as Body[])[0]!.children_state as Body[]).map((c) => c.state_key)).toEqual([r.A, r.S2]);
      expect(await walk(bob, 'max_depth=0')).toEqual(['S']);
      expect(await walk(bob, 'max_depth=1')).toEqual(['S', 'A', 'S2', 'W', 'R']);
      expect(await walk(alice, 'max_depth=1&suggested_only=true')).toEqual(['S', 'A', 'S2']);
    });

    it('pages with limit and from, with stable tokens bound to the walk they continue', async () => {
      const pages: string[][] = [];
      const tokens: string[] = [];
      let from: string | undefined;
      for (let i = 0; i < 10; i++) {
        const res = await hierarchy(alice, r.S, `limit=2${from ? `&from=${enc(from)}` : ''}`);
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        pages.push((res.body.rooms as Body[]).map((room) => name[room.room_id as string]!));
        from = res.body.next_batch as string | undefined;
        if (from === undefined) break;
        tokens.push(from);
      }
      expect(pages).toEqual([['S', 'A'], ['S2', 'B'], ['P', 'W'], ['R']]);
      // The same token again gives the same page.
      const again = await hierarchy(alice, r.S, `limit=2&from=${enc(tokens[0]!)}`);
      expect((again.body.rooms as Body[]).map((room) => name[room.room_id as string])).toEqual(['S2', 'B']);
      expect(again.body.next_batch).toEqual(expect.any(String));

      const refused = async (token: string, query: string) => {
        const res = await hierarchy(token, r.S, query);
        expect([query, res.status, res.body.errcode]).toEqual([query, 400, 'M_INVALID_PARAM']);
      };
      await refused(alice, `limit=2&max_depth=1&from=${enc(tokens[0]!)}`);
      await refused(alice, `limit=2&suggested_only=true&from=${enc(tokens[0]!)}`);
      await refused(alice, 'from=not-a-token');
      // Another user's token is not theirs to use.
      await refused(bob, `limit=2&from=${enc(tokens[0]!)}`);
      // Nor is it good for another room.
      const other = await hierarchy(alice, r.S2, `limit=2&from=${enc(tokens[0]!)}`);
      expect([other.status, other.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    });

    it('refuses rooms the user may not see with 403, and bad parameters with 400', async () => {
      for (const [token, roomId] of [
        [carol, r.P],
        [carol, '!unknown:localhost:8008'],
      ] as const) {
        const res = await hierarchy(token, roomId);
        expect([res.status, res.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      }
      // Alice is in P: a room that is not a space is a hierarchy of one.
      const single = await hierarchy(alice, r.P);
      expect((single.body.rooms as Body[]).map((room) => room.room_id)).toEqual([r.P]);
      for (const query of ['limit=0', 'limit=-1', 'limit=abc', 'max_depth=-1', 'max_depth=x', 'suggested_only=yes']) {
        const res = await hierarchy(bob, r.S, query);
        expect([query, res.status, res.body.errcode]).toEqual([query, 400, 'M_INVALID_PARAM']);
      }
      const badRoom = await hierarchy(bob, 'nope');
      expect([badRoom.status, badRoom.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      const anonymous = await hierarchy('', r.S);
      expect(anonymous.status).toBe(401);
      // A large limit is capped, not refused.
      expect((await hierarchy(bob, r.S, 'limit=1000')).status).toBe(200);
    });
  });
}
