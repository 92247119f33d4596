/** POST /user_directory/search over HTTP: local users by ID or display name. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getJson, startTestServer, type TestServer } from '../../test/harness.js';

let t: TestServer;
let token: string;
const call = (method: string, path: string, body: unknown, auth?: string) =>
  getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
    method,
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: `Bearer ${auth}` } : {}) },
  });
const search = (body: unknown, auth = token) => call('POST', '/user_directory/search', body, auth);

beforeAll(async () => {
  t = await startTestServer();
  const users: Array<[string, string]> = [
    ['searcher', 'The Searcher'],
    ['alice', 'Alice Liddell'],
    ['malice', 'Mal'],
    ['bob', 'Bob_100%'],
    ['gone', 'Alice Gone'],
  ];
  for (const [name, display] of users) {
    const r = await call('POST', '/register', { auth: { type: 'm.login.dummy' }, username: name, password: 'pw' });
    const tok = r.body.access_token as string;
    if (name === 'searcher') token = tok;
    await call('PUT', `/profile/${encodeURIComponent(r.body.user_id as string)}/displayname`, { displayname: display }, tok);
    if (name === 'gone') {
      const first = await call('POST', '/account/deactivate', {}, tok);
      await call('POST', '/account/deactivate', { auth: { type: 'm.login.password', user: 'gone', password: 'pw', session: first.body.session } }, tok);
    }
  }
});
afterAll(async () => {
  await t.stop();
});

it('finds local users by ID or display name, ignoring case, IDs that start with the term first; not deactivated ones', async () => {
  const r = await search({ search_term: 'ALICE' });
  expect(r.status).toBe(200);
  expect(r.body).toEqual({
    results: [
      { user_id: '@alice:localhost:8008', display_name: 'Alice Liddell' },
      { user_id: '@malice:localhost:8008', display_name: 'Mal' },
    ],
    limited: false,
  });
  expect(((await search({ search_term: 'liddell' })).body.results as unknown[]).length).toBe(1);
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
});
