/**
 * POST /user_directory/search over HTTP: the users the searcher shares a room with, and the
 * users of public rooms (join rule public, or world_readable history), by ID or display name;
 * nobody else (Sytest's 52user-directory).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clientRequester, startTestServer, type TestServer } from '../../test/harness.js';

let t: TestServer;
const req = clientRequester(() => t);
const tokens: Record<string, string> = {};
let publicRoom = '';
const search = (body: unknown, auth = tokens['searcher']!) => req('POST', '/user_directory/search', auth, body);
const ids = async (term: string, auth?: string) => ((await search({ search_term: term }, auth)).body.results as Array<{ user_id: string }>).map((r) => r.user_id);
const enc = encodeURIComponent;

beforeAll(async () => {
  t = await startTestServer();
  const users: Array<[string, string]> = [
    ['searcher', 'The Searcher'],
    ['alice', 'Alice Liddell'],
    ['malice', 'Mal'],
    ['bob', 'Bob_100%'],
    ['gone', 'Alice Gone'],
    ['hermit', 'Alice Hermit'],
  ];
  for (const [name, display] of users) {
    const r = await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: name, password: 'pw' });
    tokens[name] = r.body.access_token as string;
    await req('PUT', `/profile/${enc(r.body.user_id as string)}/displayname`, tokens[name]!, { displayname: display });
  }
  // alice, malice and gone are in a public room; bob shares a private room with the searcher;
  // hermit is alone in a private room.
  publicRoom = (await req('POST', '/createRoom', tokens['alice']!, { preset: 'public_chat' })).body.room_id as string;
  for (const u of ['malice', 'gone']) expect((await req('POST', `/join/${enc(publicRoom)}`, tokens[u]!, {})).status).toBe(200);
  const shared = (await req('POST', '/createRoom', tokens['searcher']!, { preset: 'private_chat', invite: ['@bob:localhost:8008'] })).body.room_id as string;
  expect((await req('POST', `/join/${enc(shared)}`, tokens['bob']!, {})).status).toBe(200);
  await req('POST', '/createRoom', tokens['hermit']!, { preset: 'private_chat' });
  const first = await req('POST', '/account/deactivate', tokens['gone']!, {});
  await req('POST', '/account/deactivate', tokens['gone']!, { auth: { type: 'm.login.password', user: 'gone', password: 'pw', session: first.body.session } });
});
afterAll(async () => {
  await t.stop();
});

it('finds users of public rooms and of shared rooms by ID or display name, ignoring case; not others, not deactivated ones', async () => {
  const r = await search({ search_term: 'ALICE' });
  expect(r.status).toBe(200);
  expect(r.body).toEqual({
    results: [
      { user_id: '@alice:localhost:8008', display_name: 'Alice Liddell' },
      { user_id: '@malice:localhost:8008', display_name: 'Mal' },
    ],
    limited: false,
  });
  expect(await ids('liddell')).toEqual(['@alice:localhost:8008']);
  // Alone in a private room: found by nobody, themself included (sharing a room takes two).
  expect(await ids('hermit')).toEqual([]);
  expect(await ids('hermit', tokens['hermit'])).toEqual([]);
  // In a public room, users find themselves.
  expect(await ids('liddell', tokens['alice'])).toEqual(['@alice:localhost:8008']);
  // A shared private room: found by the searcher, not by a stranger.
  expect(await ids('bob')).toEqual(['@bob:localhost:8008']);
  expect(await ids('bob', tokens['hermit'])).toEqual([]);
});

it('follows the room: an invite-only room hides its users unless its history is world_readable; leaving hides them', async () => {
  const state = (type: string, content: Record<string, unknown>) => req('PUT', `/rooms/${enc(publicRoom)}/state/${type}/`, tokens['alice']!, content);
  expect((await state('m.room.join_rules', { join_rule: 'invite' })).status).toBe(200);
  expect(await ids('liddell')).toEqual([]);
  expect((await state('m.room.history_visibility', { history_visibility: 'world_readable' })).status).toBe(200);
  expect(await ids('liddell')).toEqual(['@alice:localhost:8008']);
  expect((await state('m.room.history_visibility', { history_visibility: 'shared' })).status).toBe(200);
  expect((await state('m.room.join_rules', { join_rule: 'public' })).status).toBe(200);
  expect(await ids('mal')).toEqual(['@malice:localhost:8008']);
  expect((await req('POST', `/rooms/${enc(publicRoom)}/leave`, tokens['malice']!, {})).status).toBe(200);
  expect(await ids('mal')).toEqual([]);
});

it('takes the term literally: % and _ are not wildcards', async () => {
  expect((await search({ search_term: '%' })).body.results).toEqual([{ user_id: '@bob:localhost:8008', display_name: 'Bob_100%' }]);
  expect((await search({ search_term: 'b_1' })).body.results).toEqual([{ user_id: '@bob:localhost:8008', display_name: 'Bob_100%' }]);
  expect((await search({ search_term: 'a_i' })).body.results).toEqual([]);
});

it('honours limit and says when it cut the answer short', async () => {
  const r = await search({ search_term: 'l', limit: 1 });
  expect((r.body.results as unknown[]).length).toBe(1);
  expect(r.body.limited).toBe(true);
  expect((await search({ search_term: 'l', limit: 0 })).body).toEqual({ results: [], limited: true });
});

it('answers bad requests with spec errors', async () => {
  expect((await search({})).body.errcode).toBe('M_MISSING_PARAM');
  expect((await search({ search_term: 5 })).body.errcode).toBe('M_BAD_JSON');
  expect((await search({ search_term: 'a', limit: -1 })).body.errcode).toBe('M_BAD_JSON');
  expect((await search({ search_term: 'a' }, '')).status).toBe(401);
  const huge = await search({ search_term: 'x'.repeat(32 * 1024) });
  expect([huge.status, huge.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
});
