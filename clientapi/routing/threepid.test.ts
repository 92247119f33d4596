/** 3PID routes on a server that sends no email or SMS: the spec's errors, never a 500. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startTestServer, type TestServer } from '../../test/harness.js';

let t: TestServer;
let token: string;
const post = (path: string, body: unknown, auth?: string) =>
  getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: `Bearer ${auth}` } : {}) },
  });

beforeAll(async () => {
  t = await startTestServer();
  const r = await post('/register', { auth: { type: 'm.login.dummy' }, username: 'threepid', password: 'pw' });
  token = r.body.access_token as string;
});
afterAll(async () => {
  await t.stop();
});

describe('requestToken', () => {
  const email = { client_secret: 'secret', email: 'a@example.org', send_attempt: 1 };
  const msisdn = { client_secret: 'secret', country: 'GB', phone_number: '07700900000', send_attempt: 1 };
  for (const prefix of ['/register', '/account/password', '/account/3pid']) {
    it(`${prefix}: validates, then says the medium is not supported`, async () => {
      const cases: Array<[string, unknown, number, string]> = [
        ['email', email, 400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED'],
        ['msisdn', msisdn, 400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED'],
        ['email', { ...email, id_server: 'evil.example' }, 400, 'M_SERVER_NOT_TRUSTED'],
        ['email', { ...email, id_server: 'matrix.org' }, 400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED'],
        ['email', { ...email, client_secret: 'has space' }, 400, 'M_INVALID_PARAM'],
        ['email', { email: 'a@example.org', send_attempt: 1 }, 400, 'M_MISSING_PARAM'],
        ['email', { ...email, email: 'not-an-address' }, 400, 'M_INVALID_PARAM'],
        ['email', { ...email, send_attempt: 'one' }, 400, 'M_BAD_JSON'],
        ['msisdn', { ...msisdn, country: undefined }, 400, 'M_MISSING_PARAM'],
      ];
      for (const [medium, body, status, errcode] of cases) {
        const r = await post(`${prefix}/${medium}/requestToken`, body);
        expect(r.status, JSON.stringify(body)).toBe(status);
        expect(r.body.errcode, JSON.stringify(body)).toBe(errcode);
      }
    });
  }
});

describe('account 3PIDs', () => {
  it('lists none, and needs a token to', async () => {
    for (const version of ['r0', 'v3', 'unstable']) {
      const r = await getJson(`${t.baseUrl}/_matrix/client/${version}/account/3pid`, { headers: { Authorization: `Bearer ${token}` } });
      expect(r.body, version).toEqual({ threepids: [] });
    }
    expect((await getJson(`${t.baseUrl}/_matrix/client/v3/account/3pid`)).body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('add asks for the password, then finds no validated session', async () => {
    const first = await post('/account/3pid/add', { client_secret: 'secret', sid: 'abc' }, token);
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const authed = await post(
      '/account/3pid/add',
      { client_secret: 'secret', sid: 'abc', auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'threepid' }, password: 'pw', session: first.body.session } },
      token,
    );
    expect(authed.status).toBe(400);
    expect(authed.body.errcode).toBe('M_THREEPID_AUTH_FAILED');
    const legacy = await post('/account/3pid', { three_pid_creds: { client_secret: 'secret', sid: 'abc', id_server: 'matrix.org' } }, token);
    expect(legacy.body.errcode).toBe('M_THREEPID_AUTH_FAILED');
    expect((await post('/account/3pid', {}, token)).body.errcode).toBe('M_MISSING_PARAM');
  });

  it('bind checks the request (threepidbind.test.ts binds); delete and unbind with nothing bound are no-support', async () => {
    const bind = await post('/account/3pid/bind', { client_secret: 'secret', sid: 'abc', id_server: 'https://matrix.org', id_access_token: 'x' }, token);
    expect(bind.status).toBe(400);
    expect(bind.body.errcode).toBe('M_INVALID_PARAM');
    expect((await post('/account/3pid/bind', { client_secret: 'secret', sid: 'abc' }, token)).body.errcode).toBe('M_MISSING_PARAM');
    for (const path of ['/account/3pid/delete', '/account/3pid/unbind']) {
      const r = await post(path, { medium: 'email', address: 'a@example.org' }, token);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ id_server_unbind_result: 'no-support' });
      expect((await post(path, { medium: 'email' }, token)).body.errcode).toBe('M_MISSING_PARAM');
    }
  });

  it('a login by third-party identifier fails as a wrong password does', async () => {
    const forms = [
      { identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@example.org' } },
      { identifier: { type: 'm.id.phone', country: 'GB', phone: '07700900000' } },
      { medium: 'email', address: 'a@example.org' },
    ];
    for (const form of forms) {
      const r = await post('/login', { type: 'm.login.password', password: 'pw', ...form });
      expect(r.status, JSON.stringify(form)).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
    expect((await post('/login', { type: 'm.login.password', password: 'pw', identifier: { type: 'm.id.thirdparty', medium: 5 } })).body.errcode).toBe('M_BAD_JSON');
  });
});
