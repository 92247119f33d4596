/** The push rules API over HTTP, stored as m.push_rules account data. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getJson, startTestServer, type TestServer } from '../../test/harness.js';

let t: TestServer;
let token: string;
const req = (method: string, path: string, body?: unknown, auth = token) =>
  getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: `Bearer ${auth}` } : {}) },
  });

beforeAll(async () => {
  t = await startTestServer();
  token = (await req('POST', '/register', { auth: { type: 'm.login.dummy' }, username: 'pusher', password: 'pw' }, '')).body.access_token as string;
});
afterAll(async () => {
  await t.stop();
});

it('serves the predefined rules to a new user', async () => {
  const r = await req('GET', '/pushrules/');
  expect(r.status).toBe(200);
  const global = r.body.global as Record<string, Array<{ rule_id: string }>>;
  expect(global.override![0]!.rule_id).toBe('.m.rule.master');
  expect(global.content!.map((x) => x.rule_id)).toEqual(['.m.rule.contains_user_name']);
  expect((await req('GET', '/pushrules/global/')).body).toEqual(global);
  expect((await req('GET', '/pushrules/global/override/.m.rule.master/enabled')).body).toEqual({ enabled: false });
});

it('adds, orders, reads, changes and deletes rules; changes are account data', async () => {
  expect((await req('PUT', '/pushrules/global/room/!abc:localhost:8008', { actions: ['dont_notify'] })).status).toBe(200);
  expect((await req('PUT', '/pushrules/global/override/first', { actions: ['notify'], conditions: [{ kind: 'event_match', key: 'content.body', pattern: 'cake' }] })).status).toBe(200);
  expect((await req('PUT', '/pushrules/global/override/second?after=first', { actions: [], conditions: [] })).status).toBe(200);
  const rules = (await req('GET', '/pushrules/')).body.global as Record<string, Array<{ rule_id: string }>>;
  expect(rules.override!.slice(0, 3).map((x) => x.rule_id)).toEqual(['.m.rule.master', 'first', 'second']);
  expect(rules.room!.map((x) => x.rule_id)).toEqual(['!abc:localhost:8008']);

  expect((await req('GET', '/pushrules/global/override/first')).body).toEqual({
    rule_id: 'first',
    default: false,
    enabled: true,
    actions: ['notify'],
    conditions: [{ kind: 'event_match', key: 'content.body', pattern: 'cake' }],
  });
  expect((await req('PUT', '/pushrules/global/override/first/enabled', { enabled: false })).status).toBe(200);
  expect((await req('GET', '/pushrules/global/override/first/enabled')).body).toEqual({ enabled: false });
  expect((await req('PUT', '/pushrules/global/underride/.m.rule.message/actions', { actions: ['notify', { set_tweak: 'sound', value: 'default' }] })).status).toBe(200);
  expect((await req('GET', '/pushrules/global/underride/.m.rule.message/actions')).body).toEqual({ actions: ['notify', { set_tweak: 'sound', value: 'default' }] });

  const me = encodeURIComponent('@pusher:localhost:8008');
  const stored = await req('GET', `/user/${me}/account_data/m.push_rules`);
  expect(((stored.body.global as Record<string, Array<{ rule_id: string }>>).override ?? []).map((x) => x.rule_id)).toContain('first');

  expect((await req('DELETE', '/pushrules/global/override/first')).status).toBe(200);
  expect((await req('GET', '/pushrules/global/override/first')).body.errcode).toBe('M_NOT_FOUND');
});

it('lists the rules of one kind', async () => {
  expect((await req('PUT', '/pushrules/global/sender/@spam:example.com', { actions: ['dont_notify'] })).status).toBe(200);
  const r = await req('GET', '/pushrules/global/sender/');
  expect(r.status).toBe(200);
  expect(r.body).toEqual([{ rule_id: '@spam:example.com', default: false, enabled: true, actions: ['dont_notify'] }]);
  expect((await req('GET', '/pushrules/global/sender/', undefined, '')).status).toBe(401);
  expect((await req('DELETE', '/pushrules/global/sender/@spam:example.com')).status).toBe(200);
});

it('answers bad requests with spec errors', async () => {
  const cases: Array<[string, string, unknown, number, string]> = [
    ['GET', '/pushrules/global/override/nosuch', undefined, 404, 'M_NOT_FOUND'],
    ['GET', '/pushrules/device/override/x', undefined, 400, 'M_INVALID_PARAM'],
    ['GET', '/pushrules/global/sideways/x', undefined, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/global/override/.m.rule.mine', { actions: [] }, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/global/override/x', { actions: ['yell'] }, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/global/override/x?before=nosuch', { actions: [] }, 404, 'M_NOT_FOUND'],
    ['PUT', '/pushrules/global/override/x?before=a&after=b', { actions: [] }, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/global/content/x', { actions: [] }, 400, 'M_MISSING_PARAM'],
    ['PUT', '/pushrules/global/override/.m.rule.master/enabled', { enabled: 'yes' }, 400, 'M_BAD_JSON'],
    ['PUT', '/pushrules/global/override/nosuch/enabled', { enabled: true }, 404, 'M_NOT_FOUND'],
    ['DELETE', '/pushrules/global/override/.m.rule.master', undefined, 400, 'M_INVALID_PARAM'],
    // Paths short of a rule, or naming an unknown attribute (Sytest's 61push/80torture).
    ['GET', '/pushrules/global', undefined, 400, 'M_INVALID_PARAM'],
    ['GET', '/pushrules/global/room', undefined, 400, 'M_INVALID_PARAM'],
    ['GET', '/pushrules/global/sideways/', undefined, 400, 'M_INVALID_PARAM'],
    ['GET', '/pushrules/global/override/.m.rule.master/colour', undefined, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/', { actions: [] }, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/global', { actions: [] }, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/global/room', { actions: [] }, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/global/room/', { actions: [] }, 400, 'M_INVALID_PARAM'],
    ['PUT', '/pushrules/global/override/.m.rule.master/colour', { enabled: true }, 400, 'M_INVALID_PARAM'],
  ];
  for (const [method, path, body, status, errcode] of cases) {
    const r = await req(method, path, body);
    expect(r.status, `${method} ${path}`).toBe(status);
    expect(r.body.errcode, `${method} ${path}`).toBe(errcode);
  }
  expect((await req('GET', '/pushrules/', undefined, '')).status).toBe(401);
  // The account data route cannot bypass the checks.
  const me = encodeURIComponent('@pusher:localhost:8008');
  expect((await req('PUT', `/user/${me}/account_data/m.push_rules`, { global: {} })).body.errcode).toBe('M_BAD_JSON');
});

it('concurrent changes are all kept', async () => {
  await Promise.all(Array.from({ length: 10 }, (_, i) => req('PUT', `/pushrules/global/sender/@u${i}:localhost:8008`, { actions: [] })));
  const rules = (await req('GET', '/pushrules/')).body.global as Record<string, Array<{ rule_id: string }>>;
  expect(rules.sender!.length).toBe(10);
});
