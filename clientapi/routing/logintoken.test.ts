/** m.login.token through login via an existing session (POST /v1/login/get_token), and erasure on deactivation. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startTestServer, testConfig, type TestServer } from '../../test/harness.js';

let t: TestServer;
const req = (method: string, path: string, body?: unknown, token?: string) =>
  getJson(`${t.baseUrl}/_matrix/client${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let token: string;
let userId: string;

beforeAll(async () => {
  const { cfg, dir } = testConfig((doc) => {
    (doc.client_api as Record<string, unknown>).login_via_existing_session = { enabled: true, require_ui_auth: true, token_timeout: '700ms' };
  });
  t = await startTestServer({ cfg, dir });
  const r = await req('POST', '/v3/register', { auth: { type: 'm.login.dummy' }, username: 'qr', password: 'pw' });
  token = r.body.access_token as string;
  userId = r.body.user_id as string;
});
afterAll(async () => {
  await t.stop();
});

describe('login via an existing session', () => {
  const getToken = async (): Promise<Record<string, unknown>> => {
    const first = await req('POST', '/v1/login/get_token', {}, token);
    expect(first.status).toBe(401);
    const r = await req('POST', '/v1/login/get_token', { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'qr' }, password: 'pw', session: first.body.session } }, token);
    expect(r.status).toBe(200);
    return r.body;
  };

  it('advertises m.login.token with get_login_token', async () => {
    expect((await req('GET', '/v3/login')).body).toEqual({ flows: [{ type: 'm.login.password' }, { type: 'm.login.token', get_login_token: true }] });
  });

  it('issues a single-use token after the password, which signs in a new device of the same user', async () => {
    const issued = await getToken();
    expect(issued.expires_in_ms).toBe(700);
    const login = await req('POST', '/v3/login', { type: 'm.login.token', token: issued.login_token, device_id: 'NEWPHONE' });
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ user_id: userId, device_id: 'NEWPHONE' });
    const again = await req('POST', '/v3/login', { type: 'm.login.token', token: issued.login_token });
    expect(again.status).toBe(403);
    expect(again.body.errcode).toBe('M_FORBIDDEN');
  });

  it('refuses expired, unknown and malformed tokens', async () => {
    const issued = await getToken();
    await sleep(800);
    expect((await req('POST', '/v3/login', { type: 'm.login.token', token: issued.login_token })).body.errcode).toBe('M_FORBIDDEN');
    expect((await req('POST', '/v3/login', { type: 'm.login.token', token: 'syl_nope' })).body.errcode).toBe('M_FORBIDDEN');
    expect((await req('POST', '/v3/login', { type: 'm.login.token', token: 5 })).body.errcode).toBe('M_BAD_JSON');
    expect((await req('POST', '/v1/login/get_token', {})).status).toBe(401);
  });

  it('is not there where it is not enabled (the default)', async () => {
    const other = await startTestServer();
    try {
      const reg = await getJson(`${other.baseUrl}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: 'x', password: 'pw' }) });
      const r = await getJson(`${other.baseUrl}/_matrix/client/v1/login/get_token`, { method: 'POST', body: '{}', headers: { Authorization: `Bearer ${String(reg.body.access_token)}` } });
      expect(r.status).toBe(404);
      expect(r.body.errcode).toBe('M_UNRECOGNIZED');
      expect((await getJson(`${other.baseUrl}/_matrix/client/v3/login`)).body).toEqual({ flows: [{ type: 'm.login.password' }] });
    } finally {
      await other.stop();
    }
  });
});

it('deactivation with erase clears the profile', async () => {
  const r = await req('POST', '/v3/register', { auth: { type: 'm.login.dummy' }, username: 'forgetme', password: 'pw' });
  const tok = r.body.access_token as string;
  const uid = encodeURIComponent(r.body.user_id as string);
  await req('PUT', `/v3/profile/${uid}/avatar_url`, { avatar_url: 'mxc://x/y' }, tok);
  expect((await req('GET', `/v3/profile/${uid}`)).body).toEqual({ displayname: 'forgetme', avatar_url: 'mxc://x/y' });
  expect((await req('POST', '/v3/account/deactivate', { erase: 'yes' }, tok)).body.errcode).toBe('M_BAD_JSON');
  const first = await req('POST', '/v3/account/deactivate', { erase: true }, tok);
  const done = await req('POST', '/v3/account/deactivate', { erase: true, auth: { type: 'm.login.password', user: 'forgetme', password: 'pw', session: first.body.session } }, tok);
  expect(done.status).toBe(200);
  expect((await req('GET', `/v3/profile/${uid}`)).body).toEqual({});
});
