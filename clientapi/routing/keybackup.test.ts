/** Key backup over HTTP on a real monolith. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getJson, startTestServer, type TestServer } from '../../test/harness.js';

let t: TestServer;
let token: string;
const req = (method: string, path: string, body?: unknown, auth = token) =>
  getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
    method,
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: `Bearer ${auth}` } : {}) },
  });
const session = (first: number, data = 'opaque') => ({ first_message_index: first, forwarded_count: 0, is_verified: false, session_data: { ciphertext: data } });

beforeAll(async () => {
  t = await startTestServer();
  token = (await req('POST', '/register', { auth: { type: 'm.login.dummy' }, username: 'backer', password: 'pw' }, '')).body.access_token as string;
});
afterAll(async () => {
  await t.stop();
});

it('creates a version, backs up keys at every level, reads and deletes them', async () => {
  expect((await req('GET', '/room_keys/version')).body.errcode).toBe('M_NOT_FOUND');
  const created = await req('POST', '/room_keys/version', { algorithm: 'm.megolm_backup.v1', auth_data: { public_key: 'pk' } });
  expect(created.status).toBe(200);
  const v = created.body.version as string;
  expect((await req('GET', '/room_keys/version')).body).toEqual({ version: v, algorithm: 'm.megolm_backup.v1', auth_data: { public_key: 'pk' }, count: 0, etag: '0' });

  expect((await req('PUT', `/room_keys/keys?version=${v}`, { rooms: { '!a:hs': { sessions: { s1: session(2) } } } })).body).toEqual({ count: 1, etag: '1' });
  expect((await req('PUT', `/room_keys/keys/${encodeURIComponent('!a:hs')}?version=${v}`, { sessions: { s2: session(0) } })).body).toEqual({ count: 2, etag: '2' });
  expect((await req('PUT', `/room_keys/keys/${encodeURIComponent('!b:hs')}/s3?version=${v}`, session(0))).body).toEqual({ count: 3, etag: '3' });

  expect((await req('GET', `/room_keys/keys/${encodeURIComponent('!b:hs')}/s3?version=${v}`)).body).toEqual(session(0));
  expect((await req('GET', `/room_keys/keys/${encodeURIComponent('!a:hs')}?version=${v}`)).body).toEqual({ sessions: { s1: session(2), s2: session(0) } });
  expect(((await req('GET', `/room_keys/keys?version=${v}`)).body.rooms as Record<string, unknown>)['!b:hs']).toEqual({ sessions: { s3: session(0) } });
  expect((await req('GET', `/room_keys/keys/${encodeURIComponent('!none:hs')}?version=${v}`)).body).toEqual({ sessions: {} });
  expect((await req('GET', `/room_keys/keys/${encodeURIComponent('!none:hs')}/x?version=${v}`)).body.errcode).toBe('M_NOT_FOUND');

  expect((await req('DELETE', `/room_keys/keys/${encodeURIComponent('!a:hs')}?version=${v}`)).body).toEqual({ count: 1, etag: '4' });
  expect((await req('PUT', `/room_keys/version/${v}`, { algorithm: 'm.megolm_backup.v1', auth_data: { public_key: 'pk2' }, version: v })).status).toBe(200);
  expect((await req('GET', `/room_keys/version/${v}`)).body.auth_data).toEqual({ public_key: 'pk2' });
  expect((await req('PUT', `/room_keys/version/${v}`, { algorithm: 'm.megolm_backup.v1', auth_data: { public_key: 'pk3' }, version: Number(v) })).status).toBe(200);
  expect((await req('DELETE', `/room_keys/version/${v}`)).status).toBe(200);
  expect((await req('GET', `/room_keys/version/${v}`)).status).toBe(404);
});

it('refuses uploads to an old version and bad requests with spec errors', async () => {
  const old = (await req('POST', '/room_keys/version', { algorithm: 'm.megolm_backup.v1', auth_data: {} })).body.version as string;
  const current = (await req('POST', '/room_keys/version', { algorithm: 'm.megolm_backup.v1', auth_data: {} })).body.version as string;
  const wrong = await req('PUT', `/room_keys/keys/${encodeURIComponent('!a:hs')}/s?version=${old}`, session(0));
  expect(wrong.status).toBe(403);
  expect(wrong.body).toMatchObject({ errcode: 'M_WRONG_ROOM_KEYS_VERSION', current_version: current });
  const cases: Array<[string, string, unknown, number, string]> = [
    ['PUT', '/room_keys/keys/x/s', session(0), 400, 'M_MISSING_PARAM'],
    ['GET', '/room_keys/keys?version=bogus', undefined, 404, 'M_NOT_FOUND'],
    ['PUT', `/room_keys/keys/x/s?version=${current}`, { ...session(0), first_message_index: -1 }, 400, 'M_BAD_JSON'],
    ['PUT', `/room_keys/keys/x/s?version=${current}`, { forwarded_count: 0, is_verified: false, session_data: {} }, 400, 'M_MISSING_PARAM'],
    ['PUT', `/room_keys/keys/x/s?version=${current}`, { ...session(0), is_verified: 'no' }, 400, 'M_BAD_JSON'],
    ['PUT', `/room_keys/keys?version=${current}`, { rooms: [] }, 400, 'M_BAD_JSON'],
    ['POST', '/room_keys/version', { auth_data: {} }, 400, 'M_MISSING_PARAM'],
    ['PUT', `/room_keys/version/${current}`, { algorithm: 'm.megolm_backup.v1', auth_data: {}, version: old }, 400, 'M_INVALID_PARAM'],
    ['PUT', `/room_keys/version/${current}`, { algorithm: 'other', auth_data: {} }, 400, 'M_INVALID_PARAM'],
    ['PUT', '/room_keys/version/424242', { algorithm: 'm.megolm_backup.v1', auth_data: {} }, 404, 'M_NOT_FOUND'],
    ['DELETE', '/room_keys/version/424242', undefined, 404, 'M_NOT_FOUND'],
  ];
  for (const [method, path, body, status, errcode] of cases) {
    const r = await req(method, path, body);
    expect(r.status, `${method} ${path}`).toBe(status);
    expect(r.body.errcode, `${method} ${path}`).toBe(errcode);
  }
  expect((await req('GET', '/room_keys/version', undefined, '')).status).toBe(401);
});
