/** GET /capabilities and GET /voip/turnServer over HTTP, with the default config and a custom one, on SQLite and PostgreSQL. */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';
import { turnCredentials } from './voip.js';

type Body = Record<string, unknown>;
const call = (t: TestServer, path: string, token: string, version = 'v3') =>
  getJson(`${t.baseUrl}/_matrix/client/${version}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
const register = async (t: TestServer, u: string) =>
  (
    await getJson(`${t.baseUrl}/_matrix/client/v3/register`, {
      method: 'POST',
      body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: u, password: 'pw' }),
      headers: { 'Content-Type': 'application/json' },
    })
  ).body.access_token as string;
const guest = async (t: TestServer) =>
  (await getJson(`${t.baseUrl}/_matrix/client/v3/register?kind=guest`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } })).body;

const ALL_VERSIONS = Object.fromEntries(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'].map((v) => [v, 'stable']));

for (const dialect of TEST_DIALECTS) {
  describe(`with the default config (and guests) [${dialect}]`, () => {
    let t: TestServer;
    let token: string;
    beforeAll(async () => {
      t = await startTestServerOn(dialect, (doc) => {
        (doc.client_api as Body).guests_disabled = false;
      });
      token = await register(t, 'alice');
    });
    afterAll(() => t?.stop());

    it('lists the capabilities', async () => {
      const r = await call(t, '/capabilities', token);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({
        capabilities: {
          'm.change_password': { enabled: true },
          'm.room_versions': { default: '10', available: ALL_VERSIONS },
          'm.set_displayname': { enabled: true },
          'm.set_avatar_url': { enabled: true },
          'm.3pid_changes': { enabled: false },
          'm.get_login_token': { enabled: false },
        },
      });
      expect((await call(t, '/capabilities', token, 'r0')).body).toEqual(r.body);
    });

    it('needs an access token, and takes a guest’s', async () => {
      const anonymous = await call(t, '/capabilities', '');
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.errcode).toBe('M_MISSING_TOKEN');
      const g = await guest(t);
      expect(typeof g.access_token).toBe('string');
      expect((await call(t, '/capabilities', g.access_token as string)).status).toBe(200);
      expect((await call(t, '/voip/turnServer', '')).status).toBe(401);
    });

    it('has no TURN server to offer', async () => {
      const r = await call(t, '/voip/turnServer', token);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({});
    });
  });

  describe(`with a custom config [${dialect}]`, () => {
    let t: TestServer;
    let token: string;
    beforeAll(async () => {
      t = await startTestServerOn(dialect, (doc) => {
        doc.room_server = { ...doc.room_server, default_room_version: '11' };
        const ca = doc.client_api as Body;
        ca.guests_disabled = false;
        ca.login_via_existing_session = { enabled: true };
        ca.turn = { turn_user_lifetime: '1h', turn_uris: ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349'], turn_shared_secret: 's3cret' };
      });
      token = await register(t, 'bob');
    });
    afterAll(() => t?.stop());

    it('reflects the config in the capabilities', async () => {
      const caps = (await call(t, '/capabilities', token)).body.capabilities as Body;
      expect(caps['m.room_versions']).toEqual({ default: '11', available: ALL_VERSIONS });
      expect(caps['m.get_login_token']).toEqual({ enabled: true });
    });

    it('hands out time-limited credentials from the shared secret, to guests too', async () => {
      const before = Math.floor(Date.now() / 1000);
      const r = await call(t, '/voip/turnServer', token);
      const after = Math.floor(Date.now() / 1000);
      expect(r.status).toBe(200);
      expect(r.body.uris).toEqual(['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349']);
      expect(r.body.ttl).toBe(3600);
      const username = r.body.username as string;
      const [expiry, userId] = [Number(username.slice(0, username.indexOf(':'))), username.slice(username.indexOf(':') + 1)];
      expect(userId).toBe('@bob:localhost:8008');
      expect(expiry).toBeGreaterThanOrEqual(before + 3600);
      expect(expiry).toBeLessThanOrEqual(after + 3600);
      expect(r.body.password).toBe(createHmac('sha1', 's3cret').update(username).digest('base64'));

      const g = await guest(t);
      const forGuest = await call(t, '/voip/turnServer', g.access_token as string);
      expect(forGuest.status).toBe(200);
      expect((forGuest.body.username as string).endsWith(`:${g.user_id as string}`)).toBe(true);
    });
  });
}

describe('turnCredentials', () => {
  const base = { turnUserLifetimeMs: 300_000, turnUris: ['turn:a.example'], turnSharedSecret: '', turnUsername: '', turnPassword: '' };

  it('uses a static username and password when there is no shared secret', () => {
    expect(turnCredentials({ ...base, turnUsername: 'u', turnPassword: 'p' }, '@x:y', 0)).toEqual({ username: 'u', password: 'p', uris: ['turn:a.example'], ttl: 300 });
  });

  it('prefers the shared secret, and signs the expiry with the user ID', () => {
    const c = turnCredentials({ ...base, turnSharedSecret: 'k', turnUsername: 'u', turnPassword: 'p' }, '@x:y', 1_000_999);
    expect(c?.username).toBe('1300:@x:y');
    expect(c?.password).toBe(createHmac('sha1', 'k').update('1300:@x:y').digest('base64'));
  });

  it('offers nothing without URIs or without credentials', () => {
    expect(turnCredentials({ ...base, turnUris: [], turnSharedSecret: 'k' }, '@x:y', 0)).toBeUndefined();
    expect(turnCredentials(base, '@x:y', 0)).toBeUndefined();
    expect(turnCredentials({ ...base, turnUsername: 'u' }, '@x:y', 0)).toBeUndefined();
  });
});
