/** Registration, login and sessions over HTTP on a real monolith. */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startTestServer, testConfig, type TestServer } from '../../test/harness.js';

let t: TestServer;
let base: string;
const post = (path: string, body: unknown, token?: string) =>
  getJson(`${base}${path}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
const get = (path: string, token?: string) => getJson(`${base}${path}`, token ? { headers: { Authorization: `Bearer ${token}` } } : undefined);

async function register(username: string, password = 'sUp3rs3kr1t', extra: Record<string, unknown> = {}) {
  return post('/_matrix/client/v3/register', { auth: { type: 'm.login.dummy' }, username, password, ...extra });
}

beforeAll(async () => {
  t = await startTestServer();
  base = t.baseUrl;
});
afterAll(async () => {
  await t.stop();
});

describe('POST /register', () => {
  it('answers an empty request with the UIA flows', async () => {
    const r = await post('/_matrix/client/v3/register', {});
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    expect(typeof r.body.session).toBe('string');
  });

  it('creates a user, lower-casing the name, and logs them in', async () => {
    const r = await register('Reg-User', 'pw', { device_id: 'MYDEVICE' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user_id: '@reg-user:localhost:8008', device_id: 'MYDEVICE' });
    const who = await get('/_matrix/client/v3/account/whoami', r.body.access_token as string);
    expect(who.body).toEqual({ user_id: '@reg-user:localhost:8008', device_id: 'MYDEVICE', is_guest: false });
  });

  it('refuses a taken name and bad names with the spec errors', async () => {
    await register('taken');
    expect((await register('taken')).body.errcode).toBe('M_USER_IN_USE');
    for (const bad of ['has space', 'é', 'a:b', '_reserved', 'x'.repeat(260)]) {
      const r = await register(bad);
      expect(r.status, bad).toBe(400);
      expect(r.body.errcode, bad).toBe('M_INVALID_USERNAME');
    }
    const available = await get('/_matrix/client/v3/register/available?username=taken');
    expect(available.body.errcode).toBe('M_USER_IN_USE');
    expect((await get('/_matrix/client/v3/register/available?username=freename')).body).toEqual({ available: true });
  });

  it('remembers the parameters of the request that opened the session, and completes idempotently', async () => {
    const opened = await post('/_matrix/client/v3/register', { username: 'SessionUser', password: 'pw', inhibit_login: true });
    expect(opened.status).toBe(401);
    const finish = { auth: { type: 'm.login.dummy', session: opened.body.session } };
    const first = await post('/_matrix/client/v3/register', finish);
    expect(first.body).toEqual({ user_id: '@sessionuser:localhost:8008' });
    const again = await post('/_matrix/client/v3/register', finish);
    expect(again.body).toEqual({ user_id: '@sessionuser:localhost:8008' });
    expect((await post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'sessionuser', password: 'pw' })).status).toBe(200);
    expect((await post('/_matrix/client/v3/register', { username: 'x', inhibit_login: 'yes' })).body.errcode).toBe('M_BAD_JSON');
  });

  it('honours inhibit_login, and lets guests in where the configuration does (test configurations do, as Sytest needs)', async () => {
    const r = await register('nologin', 'pw', { inhibit_login: true });
    expect(r.body).toEqual({ user_id: '@nologin:localhost:8008' });
    const guest = await post('/_matrix/client/v3/register?kind=guest', {});
    expect(guest.status).toBe(200);
    expect(typeof guest.body.access_token).toBe('string');
  });

  it('refuses malformed and oversized bodies', async () => {
    expect((await post('/_matrix/client/v3/register', '{oops')).body.errcode).toBe('M_NOT_JSON');
    expect((await post('/_matrix/client/v3/register', { auth: { type: 'm.login.dummy' }, username: 5 })).body.errcode).toBe('M_BAD_JSON');
    const big = await post('/_matrix/client/v3/register', { auth: { type: 'm.login.dummy' }, username: 'x', pad: 'y'.repeat(70_000) });
    expect(big.status).toBe(413);
  });

  it('is refused when registration is disabled', async () => {
    const { cfg, dir } = testConfig((doc) => {
      (doc.client_api as Record<string, unknown>).registration_disabled = true;
    });
    const closed = await startTestServer({ cfg, dir });
    try {
      const r = await getJson(`${closed.baseUrl}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: 'x' }) });
      expect(r.status).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    } finally {
      await closed.stop();
    }
  });
});

describe('login and sessions', () => {
  it('offers password login and logs in with every user form', async () => {
    expect((await get('/_matrix/client/r0/login')).body).toEqual({ flows: [{ type: 'm.login.password' }] });
    await register('loginuser', 'correct horse');
    for (const who of [{ identifier: { type: 'm.id.user', user: 'loginuser' } }, { identifier: { type: 'm.id.user', user: '@LoginUser:localhost:8008' } }, { user: 'loginuser' }]) {
      const r = await post('/_matrix/client/v3/login', { type: 'm.login.password', password: 'correct horse', ...who });
      expect(r.status, JSON.stringify(who)).toBe(200);
      expect(r.body.user_id).toBe('@loginuser:localhost:8008');
    }
  });

  it('refuses wrong passwords, unknown users and unknown login types', async () => {
    await register('pwuser', 'right');
    const wrong = await post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'pwuser' }, password: 'wrong' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    const nobody = await post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'nobody-here' }, password: 'x' });
    expect(nobody.status).toBe(403);
    const odd = await post('/_matrix/client/v3/login', { type: 'm.login.magic', user: 'pwuser' });
    expect(odd.status).toBe(400);
    expect(odd.body.errcode).toBe('M_UNKNOWN');
  });

  it('needs a valid token, and logout ends it', async () => {
    expect((await get('/_matrix/client/v3/account/whoami')).body.errcode).toBe('M_MISSING_TOKEN');
    expect((await get('/_matrix/client/v3/account/whoami', 'syt_bogus')).body.errcode).toBe('M_UNKNOWN_TOKEN');
    const r = await register('logoutuser');
    const token = r.body.access_token as string;
    const other = (await post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'logoutuser', password: 'sUp3rs3kr1t' })).body.access_token as string;
    expect((await get(`/_matrix/client/v3/account/whoami?access_token=${token}`)).status).toBe(200);
    expect((await post('/_matrix/client/v3/logout', {}, token)).status).toBe(200);
    expect((await get('/_matrix/client/v3/account/whoami', token)).status).toBe(401);
    expect((await get('/_matrix/client/v3/account/whoami', other)).status).toBe(200);
    expect((await post('/_matrix/client/v3/logout/all', {}, other)).status).toBe(200);
    expect((await get('/_matrix/client/v3/account/whoami', other)).body.errcode).toBe('M_UNKNOWN_TOKEN');
  });
});

describe('shared-secret registration (/_synapse/admin/v1/register)', () => {
  const mac = (nonce: string, user: string, pw: string, admin: boolean) =>
    createHmac('sha1', 'complement').update([nonce, user, pw, admin ? 'admin' : 'notadmin'].join('\0')).digest('hex');

  it('registers with a valid HMAC over a fresh nonce, once', async () => {
    const { nonce } = (await get('/_synapse/admin/v1/register')).body as { nonce: string };
    const body = { nonce, username: 'SecretUser', password: 'pw', admin: true, mac: mac(nonce, 'SecretUser', 'pw', true) };
    const r = await post('/_synapse/admin/v1/register', body);
    expect(r.status).toBe(200);
    expect(r.body.user_id).toBe('@secretuser:localhost:8008');
    const replay = await post('/_synapse/admin/v1/register', body);
    expect(replay.status).toBe(403);
  });

  it('refuses a wrong HMAC', async () => {
    const { nonce } = (await get('/_synapse/admin/v1/register')).body as { nonce: string };
    const r = await post('/_synapse/admin/v1/register', { nonce, username: 'x', password: 'pw', admin: false, mac: mac(nonce, 'x', 'pw', true) });
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_FORBIDDEN');
  });
});

const put = (path: string, body: unknown, token?: string) =>
  getJson(`${base}${path}`, { method: 'PUT', body: JSON.stringify(body), headers: token ? { Authorization: `Bearer ${token}` } : {} });
const del = (path: string, body: unknown, token?: string) =>
  getJson(`${base}${path}`, { method: 'DELETE', body: JSON.stringify(body), headers: token ? { Authorization: `Bearer ${token}` } : {} });

describe('devices', () => {
  it('lists, renames and (with the password) deletes devices', async () => {
    const a = await register('devuser', 'devpass', { device_id: 'FIRST', initial_device_display_name: 'laptop' });
    const token = a.body.access_token as string;
    await post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'devuser', password: 'devpass', device_id: 'SECOND' });
    const list = await get('/_matrix/client/v3/devices', token);
    expect((list.body.devices as Array<{ device_id: string }>).map((d) => d.device_id)).toEqual(['FIRST', 'SECOND']);
    expect((await get('/_matrix/client/v3/devices/FIRST', token)).body).toMatchObject({ device_id: 'FIRST', display_name: 'laptop' });
    expect((await get('/_matrix/client/v3/devices/NOPE', token)).status).toBe(404);
    expect((await put('/_matrix/client/v3/devices/SECOND', { display_name: 'phone' }, token)).status).toBe(200);
    expect((await get('/_matrix/client/v3/devices/SECOND', token)).body.display_name).toBe('phone');
    expect((await put('/_matrix/client/v3/devices/NOPE', { display_name: 'x' }, token)).status).toBe(404);
    expect((await put('/_matrix/client/v3/devices/SECOND', { display_name: 7 }, token)).body.errcode).toBe('M_BAD_JSON');

    const challenge = await del('/_matrix/client/v3/devices/SECOND', {}, token);
    expect(challenge.status).toBe(401);
    expect(challenge.body).toMatchObject({ flows: [{ stages: ['m.login.password'] }], params: {} });
    const session = challenge.body.session as string;
    const wrong = await del('/_matrix/client/v3/devices/SECOND', { auth: { type: 'm.login.password', user: 'devuser', password: 'nope', session } }, token);
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect(wrong.body.session).toBe(session);
    const ok = await del('/_matrix/client/v3/devices/SECOND', { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: '@devuser:localhost:8008' }, password: 'devpass', session } }, token);
    expect(ok.status).toBe(200);
    expect((await get('/_matrix/client/v3/devices/SECOND', token)).status).toBe(404);
  });

  it('binds a UIA session to the operation it was started for', async () => {
    const a = await register('uiauser', 'pw', { device_id: 'ONE' });
    const token = a.body.access_token as string;
    await post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'uiauser', password: 'pw', device_id: 'TWO' });
    const session = (await del('/_matrix/client/v3/devices/ONE', {}, token)).body.session as string;
    const reused = await del('/_matrix/client/v3/devices/TWO', { auth: { type: 'm.login.password', user: 'uiauser', password: 'pw', session } }, token);
    expect(reused.status).toBe(403);
    expect((await get('/_matrix/client/v3/devices/TWO', token)).status).toBe(200);
  });

  it('refuses UIA for another account and needs a token', async () => {
    const a = await register('devowner', 'pw1');
    await register('deveve', 'pw2');
    const r = await post('/_matrix/client/v3/delete_devices', { devices: ['X'], auth: { type: 'm.login.password', user: 'deveve', password: 'pw2' } }, a.body.access_token as string);
    expect(r.status).toBe(403);
    expect((await get('/_matrix/client/v3/devices')).status).toBe(401);
    expect((await post('/_matrix/client/v3/delete_devices', { devices: 'X' }, a.body.access_token as string)).body.errcode).toBe('M_BAD_JSON');
  });
});

describe('profiles', () => {
  it('starts with the localpart, and only the owner may change it', async () => {
    const a = await register('profuser');
    const b = await register('profother');
    const me = '@profuser:localhost:8008';
    expect((await get(`/_matrix/client/v3/profile/${encodeURIComponent(me)}`)).body).toEqual({ displayname: 'profuser' });
    expect((await put(`/_matrix/client/v3/profile/${encodeURIComponent(me)}/displayname`, { displayname: 'Prof' }, a.body.access_token as string)).status).toBe(200);
    expect((await put(`/_matrix/client/v3/profile/${encodeURIComponent(me)}/avatar_url`, { avatar_url: 'mxc://x/y' }, a.body.access_token as string)).status).toBe(200);
    expect((await get(`/_matrix/client/v3/profile/${encodeURIComponent(me)}`)).body).toEqual({ displayname: 'Prof', avatar_url: 'mxc://x/y' });
    expect((await get(`/_matrix/client/v3/profile/${encodeURIComponent(me)}/displayname`)).body).toEqual({ displayname: 'Prof' });
    const theirs = await put(`/_matrix/client/v3/profile/${encodeURIComponent(me)}/displayname`, { displayname: 'Hacked' }, b.body.access_token as string);
    expect(theirs.status).toBe(403);
    expect((await put(`/_matrix/client/v3/profile/${encodeURIComponent(me)}/displayname`, { displayname: 5 }, a.body.access_token as string)).body.errcode).toBe('M_BAD_JSON');
    expect((await put(`/_matrix/client/v3/profile/${encodeURIComponent(me)}/displayname`, { displayname: 'x' })).status).toBe(401);
    expect((await get('/_matrix/client/v3/profile/%40nobody%3Alocalhost%3A8008')).status).toBe(404);
  });
});

describe('filters', () => {
  it('stores a valid filter and reads it back, for its owner only', async () => {
    const a = await register('filteruser');
    const b = await register('filtereve');
    const me = encodeURIComponent('@filteruser:localhost:8008');
    const filter = {
      room: { rooms: ['!abc:localhost:8008', '!V5g0HmuDdj1E6gRQw6hW2AxFEy0jRj3dpPQBBcxbJBw'], timeline: { limit: 10, types: ['m.room.message'], senders: ['@filteruser:localhost:8008'] }, state: { lazy_load_members: true } },
      event_format: 'client',
      presence: { not_types: ['*'] },
    };
    const created = await post(`/_matrix/client/v3/user/${me}/filter`, filter, a.body.access_token as string);
    expect(created.status).toBe(200);
    const id = created.body.filter_id as string;
    expect(typeof id).toBe('string');
    expect((await get(`/_matrix/client/v3/user/${me}/filter/${id}`, a.body.access_token as string)).body).toEqual(filter);
    expect((await get(`/_matrix/client/v3/user/${me}/filter/${id}`, b.body.access_token as string)).status).toBe(403);
    expect((await get(`/_matrix/client/v3/user/${me}/filter/999999`, a.body.access_token as string)).status).toBe(404);
    expect((await get(`/_matrix/client/v3/user/${me}/filter/notanumber`, a.body.access_token as string)).status).toBe(404);
    expect((await post(`/_matrix/client/v3/user/${me}/filter`, filter, b.body.access_token as string)).status).toBe(403);
  });

  it.each([
    [{ room: { timeline: { limit: -1 } } }, /room.timeline.limit/],
    [{ room: { timeline: { types: 'm.room.message' } } }, /room.timeline.types must be a list/],
    [{ event_format: 'xml' }, /event_format/],
    [{ room: { include_leave: 'yes' } }, /include_leave/],
    [{ presence: [] }, /presence must be an object/],
    [{ room: { timeline: { rooms: ['not_a_room_id'] } } }, /room.timeline.rooms must list room IDs/],
    [{ room: { not_rooms: ['#alias:hs'] } }, /room.not_rooms must list room IDs/],
    [{ room: { timeline: { senders: ['not_a_sender_id'] } } }, /room.timeline.senders must list user IDs/],
    [{ presence: { not_senders: ['@nocolon'] } }, /presence.not_senders must list user IDs/],
  ])('refuses the malformed filter %j', async (filter, message) => {
    const a = await register(`badfilter${Math.random().toString(36).slice(2, 8)}`);
    const r = await post(`/_matrix/client/v3/user/${encodeURIComponent(a.body.user_id as string)}/filter`, filter, a.body.access_token as string);
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_BAD_JSON');
    expect(r.body.error).toMatch(message);
  });
});

describe('password change', () => {
  it('needs the old password, then logs other devices out', async () => {
    const a = await register('pwchange', 'old-pw', { device_id: 'KEEP' });
    const token = a.body.access_token as string;
    const other = (await post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'pwchange', password: 'old-pw' })).body.access_token as string;
    const challenge = await post('/_matrix/client/v3/account/password', { new_password: 'new-pw' }, token);
    expect(challenge.status).toBe(401);
    const wrong = await post('/_matrix/client/v3/account/password', { new_password: 'new-pw', auth: { type: 'm.login.password', user: 'pwchange', password: 'bad' } }, token);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    const ok = await post('/_matrix/client/v3/account/password', { new_password: 'new-pw', auth: { type: 'm.login.password', user: 'pwchange', password: 'old-pw', session: challenge.body.session } }, token);
    expect(ok.status).toBe(200);
    expect((await get('/_matrix/client/v3/account/whoami', token)).status).toBe(200);
    expect((await get('/_matrix/client/v3/account/whoami', other)).status).toBe(401);
    expect((await post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'pwchange', password: 'old-pw' })).status).toBe(403);
    expect((await post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'pwchange', password: 'new-pw' })).status).toBe(200);
  });

  it('refuses a malformed request before asking for auth', async () => {
    const a = await register('pwbad', 'pw');
    expect((await post('/_matrix/client/v3/account/password', { new_password: 3 }, a.body.access_token as string)).body.errcode).toBe('M_BAD_JSON');
    expect((await post('/_matrix/client/v3/account/password', { new_password: 'x' })).status).toBe(401);
  });
});

describe('deactivation', () => {
  it('needs the password, then ends every session and login for good', async () => {
    const a = await register('leaver', 'pw');
    const token = a.body.access_token as string;
    const wrong = await post('/_matrix/client/v3/account/deactivate', { auth: { type: 'm.login.password', user: 'leaver', password: 'nope' } }, token);
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ errcode: 'M_FORBIDDEN', completed: [] });
    const ok = await post('/_matrix/client/v3/account/deactivate', { auth: { type: 'm.login.password', user: 'leaver', password: 'pw' } }, token);
    expect(ok.body).toEqual({ id_server_unbind_result: 'no-support' });
    expect((await get('/_matrix/client/v3/account/whoami', token)).status).toBe(401);
    expect((await post('/_matrix/client/v3/login', { type: 'm.login.password', user: 'leaver', password: 'pw' })).status).toBe(403);
    expect((await register('leaver')).body.errcode).toBe('M_USER_IN_USE');
  });

  it('leaves the rooms the user was in and declines their invites', async () => {
    const owner = (await register('roomowner', 'pw')).body.access_token as string;
    const goner = (await register('goner', 'pw')).body.access_token as string;
    const GONER = '@goner:localhost:8008';
    const joined = (await post('/_matrix/client/v3/createRoom', { preset: 'public_chat' }, owner)).body.room_id as string;
    await post(`/_matrix/client/v3/rooms/${encodeURIComponent(joined)}/join`, {}, goner);
    const invited = (await post('/_matrix/client/v3/createRoom', { invite: [GONER] }, owner)).body.room_id as string;
    const ok = await post('/_matrix/client/v3/account/deactivate', { auth: { type: 'm.login.password', user: 'goner', password: 'pw' } }, goner);
    expect(ok.status).toBe(200);
    for (const roomId of [joined, invited]) {
      expect((await t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: GONER })).membership).toBe('leave');
    }
  });
});

describe('account data and tags', () => {
  it('stores global and room account data, publishes each change for syncapi, and guards the owner', async () => {
    const seen: Array<{ user_id: string; room_id: string; type: string }> = [];
    const prefix = t.cfg.global.jetstream.topicPrefix;
    const sub = await t.server.bus.consume({ stream: `${prefix}OutputClientData`, durable: 'test-accountdata' }, async (m) => {
      seen.push(JSON.parse(new TextDecoder().decode(m.data)) as { user_id: string; room_id: string; type: string });
    });
    const a = await register('aduser');
    const b = await register('adeve');
    const token = a.body.access_token as string;
    const me = encodeURIComponent('@aduser:localhost:8008');
    expect((await put(`/_matrix/client/v3/user/${me}/account_data/org.example.pref`, { theme: 'dark' }, token)).status).toBe(200);
    expect((await get(`/_matrix/client/v3/user/${me}/account_data/org.example.pref`, token)).body).toEqual({ theme: 'dark' });
    expect((await get(`/_matrix/client/v3/user/${me}/account_data/org.example.none`, token)).status).toBe(404);
    const room = encodeURIComponent('!room:localhost:8008');
    expect((await put(`/_matrix/client/v3/user/${me}/rooms/${room}/account_data/org.example.r`, { x: 1 }, token)).status).toBe(200);
    expect((await get(`/_matrix/client/v3/user/${me}/rooms/${room}/account_data/org.example.r`, token)).body).toEqual({ x: 1 });
    expect((await get(`/_matrix/client/v3/user/${me}/account_data/org.example.r`, token)).status).toBe(404);
    expect((await put(`/_matrix/client/v3/user/${me}/account_data/m.fully_read`, { event_id: '$x' }, token)).body.errcode).toBe('M_BAD_JSON');
    expect((await put(`/_matrix/client/v3/user/${me}/account_data/x`, [1, 2] as unknown as Record<string, unknown>, token)).body.errcode).toBe('M_BAD_JSON');
    expect((await get(`/_matrix/client/v3/user/${me}/account_data/org.example.pref`, b.body.access_token as string)).status).toBe(403);
    expect((await put(`/_matrix/client/v3/user/${me}/rooms/notaroom/account_data/x`, {}, token)).body.errcode).toBe('M_BAD_JSON');
    expect((await put(`/_matrix/client/v3/user/${me}/account_data/m.ignored_user_list`, { ignored_users: ['@x:y'] }, token)).body.errcode).toBe('M_BAD_JSON');
    expect((await put(`/_matrix/client/v3/user/${me}/account_data/m.ignored_user_list`, { ignored_users: { notauser: {} } }, token)).body.errcode).toBe('M_BAD_JSON');
    expect((await get(`/_matrix/client/v3/user/${me}/account_data/m.ignored_user_list`, token)).status).toBe(404);

    expect((await put(`/_matrix/client/v3/user/${me}/rooms/${room}/tags/u.work`, { order: 0.5 }, token)).status).toBe(200);
    expect((await put(`/_matrix/client/v3/user/${me}/rooms/${room}/tags/m.favourite`, {}, token)).status).toBe(200);
    expect((await get(`/_matrix/client/v3/user/${me}/rooms/${room}/tags`, token)).body).toEqual({ tags: { 'u.work': { order: 0.5 }, 'm.favourite': {} } });
    expect((await del(`/_matrix/client/v3/user/${me}/rooms/${room}/tags/u.work`, {}, token)).status).toBe(200);
    expect((await get(`/_matrix/client/v3/user/${me}/rooms/${room}/tags`, token)).body).toEqual({ tags: { 'm.favourite': {} } });
    expect((await put(`/_matrix/client/v3/user/${me}/rooms/${room}/tags/bad`, { order: 'first' }, token)).body.errcode).toBe('M_BAD_JSON');

    await new Promise((r) => setTimeout(r, 50));
    await sub.unsubscribe();
    const mine = seen.filter((m) => m.user_id === '@aduser:localhost:8008');
    expect(mine.map((m) => `${m.room_id}|${m.type}`)).toEqual([
      '|org.example.pref',
      '!room:localhost:8008|org.example.r',
      '!room:localhost:8008|m.tag',
      '!room:localhost:8008|m.tag',
      '!room:localhost:8008|m.tag',
    ]);
  });
});

describe('OpenID', () => {
  it('issues a token that the federation userinfo endpoint resolves to the user', async () => {
    const a = await register('openiduser');
    const me = encodeURIComponent('@openiduser:localhost:8008');
    const r = await post(`/_matrix/client/v3/user/${me}/openid/request_token`, {}, a.body.access_token as string);
    expect(r.body).toMatchObject({ token_type: 'Bearer', matrix_server_name: 'localhost:8008', expires_in: 3600 });
    const info = await get(`/_matrix/federation/v1/openid/userinfo?access_token=${r.body.access_token as string}`);
    expect(info.body).toEqual({ sub: '@openiduser:localhost:8008' });
    const bad = await get('/_matrix/federation/v1/openid/userinfo?access_token=nope');
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await get('/_matrix/federation/v1/openid/userinfo')).status).toBe(401);
    // The OpenID token is not a client access token.
    expect((await get('/_matrix/client/v3/account/whoami', r.body.access_token as string)).status).toBe(401);
    const other = await register('openideve');
    expect((await post(`/_matrix/client/v3/user/${me}/openid/request_token`, {}, other.body.access_token as string)).status).toBe(403);
  });
});
