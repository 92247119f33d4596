/** Registration with registration tokens, captchas and guests, each on its own configured server. */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startTestServer, testConfig, type TestServer } from '../../test/harness.js';

type Doc = Record<string, Record<string, unknown>>;

async function serverWith(clientApi: Record<string, unknown>): Promise<TestServer> {
  const { cfg, dir } = testConfig((doc: Doc) => {
    Object.assign(doc.client_api!, clientApi);
  });
  return startTestServer({ cfg, dir });
}

function client(t: TestServer) {
  const req = (method: string, path: string, body?: unknown, token?: string) =>
    getJson(`${t.baseUrl}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    });
  return {
    req,
    register: (body: unknown, query = '') => req('POST', `/_matrix/client/v3/register${query}`, body),
    /** An admin through shared-secret registration (the CI config's secret). */
    admin: async (name: string): Promise<string> => {
      const { body: n } = await req('GET', '/_synapse/admin/v1/register');
      const mac = createHmac('sha1', 'complement').update([n.nonce, name, 'pw', 'admin'].join('\0')).digest('hex');
      const r = await req('POST', '/_synapse/admin/v1/register', { nonce: n.nonce, username: name, password: 'pw', admin: true, mac });
      return r.body.access_token as string;
    },
  };
}

describe('registration tokens', () => {
  let t: TestServer;
  let c: ReturnType<typeof client>;
  let admin: string;
  beforeAll(async () => {
    t = await serverWith({ registration_requires_token: true, enable_registration_without_verification: false });
    c = client(t);
    admin = await c.admin('tokenadmin');
  });
  afterAll(() => t.stop());

  it('needs a valid token, counts its uses, and refuses it once used up', async () => {
    const made = await c.req('POST', '/_dendrite/admin/registrationTokens/new', { token: 'invite-1', uses_allowed: 1 }, admin);
    expect(made.status).toBe(200);
    expect(made.body).toEqual({ token: 'invite-1', uses_allowed: 1, pending: 0, completed: 0, expiry_time: null });
    expect((await c.req('GET', '/_matrix/client/v1/register/m.login.registration_token/validity?token=invite-1')).body).toEqual({ valid: true });

    const first = await c.register({ username: 'tok1', password: 'pw' });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.registration_token'] }]);
    const session = first.body.session as string;
    const wrong = await c.register({ auth: { type: 'm.login.registration_token', token: 'nope', session } });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ errcode: 'M_FORBIDDEN', completed: [], session });
    const dummy = await c.register({ auth: { type: 'm.login.dummy', session } });
    expect(dummy.body.errcode).toBe('M_UNRECOGNIZED');
    const ok = await c.register({ auth: { type: 'm.login.registration_token', token: 'invite-1', session } });
    expect(ok.status).toBe(200);
    expect(ok.body.user_id).toBe('@tok1:localhost:8008');

    const again = await c.register({ username: 'tok2', password: 'pw', auth: { type: 'm.login.registration_token', token: 'invite-1' } });
    expect(again.status).toBe(401);
    expect(again.body.errcode).toBe('M_FORBIDDEN');
    expect((await c.req('GET', '/_matrix/client/v1/register/m.login.registration_token/validity?token=invite-1')).body).toEqual({ valid: false });
    const used = await c.req('GET', '/_dendrite/admin/registrationTokens?valid=false', undefined, admin);
    expect(used.body.registration_tokens).toEqual([{ token: 'invite-1', uses_allowed: 1, pending: 0, completed: 1, expiry_time: null }]);
  });

  it('lets an admin generate, update and delete tokens, and nobody else', async () => {
    const gen = await c.req('POST', '/_dendrite/admin/registrationTokens/new', { length: 20 }, admin);
    const token = gen.body.token as string;
    expect(token).toMatch(/^[A-Za-z0-9]{20}$/);
    const updated = await c.req('POST', `/_dendrite/admin/registrationTokens/${token}`, { uses_allowed: 5, expiry_time: Date.now() + 60_000 }, admin);
    expect(updated.body).toMatchObject({ token, uses_allowed: 5 });
    expect((await c.req('GET', `/_dendrite/admin/registrationTokens/${token}`, undefined, admin)).body.uses_allowed).toBe(5);
    expect((await c.req('DELETE', `/_dendrite/admin/registrationTokens/${token}`, undefined, admin)).status).toBe(200);
    expect((await c.req('GET', `/_dendrite/admin/registrationTokens/${token}`, undefined, admin)).body.errcode).toBe('M_NOT_FOUND');

    const user = await c.register({ username: 'plainuser', password: 'pw', auth: { type: 'm.login.registration_token', token: 'invite-1' } });
    expect(user.status).toBe(401);
    const cases: Array<[string, string, unknown, number, string]> = [
      ['POST', '/_dendrite/admin/registrationTokens/new', { token: 'invite-1' }, 400, 'M_INVALID_PARAM'],
      ['POST', '/_dendrite/admin/registrationTokens/new', { token: 'bad token!' }, 400, 'M_INVALID_PARAM'],
      ['POST', '/_dendrite/admin/registrationTokens/new', { uses_allowed: -1 }, 400, 'M_INVALID_PARAM'],
      ['POST', '/_dendrite/admin/registrationTokens/new', { expiry_time: 1 }, 400, 'M_INVALID_PARAM'],
      ['POST', '/_dendrite/admin/registrationTokens/new', { length: 65 }, 400, 'M_INVALID_PARAM'],
      ['GET', '/_dendrite/admin/registrationTokens?valid=maybe', undefined, 400, 'M_INVALID_PARAM'],
      ['POST', '/_dendrite/admin/registrationTokens/nosuch', { uses_allowed: 1 }, 404, 'M_NOT_FOUND'],
    ];
    for (const [method, path, body, status, errcode] of cases) {
      const r = await c.req(method, path, body, admin);
      expect(r.status, `${method} ${path}`).toBe(status);
      expect(r.body.errcode, `${method} ${path}`).toBe(errcode);
    }
    expect((await c.req('GET', '/_dendrite/admin/registrationTokens', undefined)).status).toBe(401);
    expect((await c.req('GET', '/_matrix/client/v1/register/m.login.registration_token/validity')).body.errcode).toBe('M_MISSING_PARAM');
  });
});

describe('captcha, with a registration token', () => {
  let t: TestServer;
  let c: ReturnType<typeof client>;
  let siteverify: Server;
  const seen: string[] = [];
  beforeAll(async () => {
    // A stand-in for the captcha provider's siteverify API.
    siteverify = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        seen.push(body);
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ success: form.get('secret') === 'private-key' && form.get('response') === 'solved' }));
      });
    });
    await new Promise<void>((r) => siteverify.listen(0, '127.0.0.1', r));
    const port = (siteverify.address() as { port: number }).port;
    t = await serverWith({
      enable_registration_captcha: true,
      recaptcha_public_key: 'public-key',
      recaptcha_private_key: 'private-key',
      recaptcha_siteverify_api: `http://127.0.0.1:${port}/siteverify`,
      registration_requires_token: true,
    });
    c = client(t);
    const admin = await c.admin('captchaadmin');
    await c.req('POST', '/_dendrite/admin/registrationTokens/new', { token: 'letmein' }, admin);
  });
  afterAll(async () => {
    await t.stop();
    await new Promise((r) => siteverify.close(r));
  });

  it('asks for both stages, checks the captcha with the provider, and registers when both are done', async () => {
    const first = await c.register({ username: 'human', password: 'pw' });
    expect(first.body).toMatchObject({
      flows: [{ stages: ['m.login.recaptcha', 'm.login.registration_token'] }],
      params: { 'm.login.recaptcha': { public_key: 'public-key' } },
      completed: [],
    });
    const session = first.body.session as string;
    const robot = await c.register({ auth: { type: 'm.login.recaptcha', response: 'guess', session } });
    expect(robot.status).toBe(401);
    expect(robot.body.completed).toEqual([]);
    expect(seen.at(-1)).toContain('secret=private-key');
    const human = await c.register({ auth: { type: 'm.login.recaptcha', response: 'solved', session } });
    expect(human.status).toBe(401);
    expect(human.body.completed).toEqual(['m.login.recaptcha']);
    const done = await c.register({ auth: { type: 'm.login.registration_token', token: 'letmein', session } });
    expect(done.status).toBe(200);
    expect(done.body.user_id).toBe('@human:localhost:8008');
  });
});

describe('guests', () => {
  let t: TestServer;
  let c: ReturnType<typeof client>;
  beforeAll(async () => {
    t = await serverWith({ guests_disabled: false });
    c = client(t);
  });
  afterAll(() => t.stop());

  it('registers a guest, who may use the guest routes and no others', async () => {
    const g = await c.register({ initial_device_display_name: 'Guest phone' }, '?kind=guest');
    expect(g.status).toBe(200);
    expect(g.body.user_id).toMatch(/^@\d+:localhost:8008$/);
    const token = g.body.access_token as string;
    expect((await c.req('GET', '/_matrix/client/v3/account/whoami', undefined, token)).body).toMatchObject({ user_id: g.body.user_id, is_guest: true });
    const uid = encodeURIComponent(g.body.user_id as string);
    expect((await c.req('PUT', `/_matrix/client/v3/profile/${uid}/displayname`, { displayname: 'Visitor' }, token)).status).toBe(200);
    const devices = await c.req('GET', '/_matrix/client/v3/devices', undefined, token);
    expect(devices.status).toBe(200);
    // Where the device was last seen from: this test's loopback connection.
    expect(devices.body.devices).toEqual([expect.objectContaining({ device_id: g.body.device_id, display_name: 'Guest phone', last_seen_ip: '127.0.0.1' })]);
    const avatar = await c.req('PUT', `/_matrix/client/v3/profile/${uid}/avatar_url`, { avatar_url: 'mxc://x/y' }, token);
    expect(avatar.status).toBe(403);
    expect(avatar.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    for (const [method, path] of [['POST', '/_matrix/client/v3/user_directory/search'], ['POST', '/_matrix/client/v3/account/password'], ['POST', `/_matrix/client/v3/user/${uid}/openid/request_token`]] as const) {
      expect((await c.req(method, path, {}, token)).body.errcode, path).toBe('M_GUEST_ACCESS_FORBIDDEN');
    }
  });

  it('upgrades a guest to a full account with the same user ID, only with that guest\'s token', async () => {
    const g = await c.register({}, '?kind=guest');
    const other = await c.register({}, '?kind=guest');
    const guestId = g.body.user_id as string;
    const localpart = guestId.slice(1, guestId.indexOf(':'));
    // Another guest's token cannot upgrade this guest; neither can a full user's.
    const stolen = await c.register({ username: localpart, password: 'pw2', guest_access_token: other.body.access_token, auth: { type: 'm.login.dummy' } });
    expect(stolen.status).toBe(403);
    const upgraded = await c.register({ username: localpart, password: 'pw2', guest_access_token: g.body.access_token, auth: { type: 'm.login.dummy' } });
    expect(upgraded.status, JSON.stringify(upgraded.body)).toBe(200);
    expect(upgraded.body.user_id).toBe(guestId);
    const token = upgraded.body.access_token as string;
    expect((await c.req('GET', '/_matrix/client/v3/account/whoami', undefined, token)).body).toMatchObject({ user_id: guestId, is_guest: false });
    // A full account now: its password logs in, and guest-only limits are gone.
    const login = await c.req('POST', '/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: localpart }, password: 'pw2' });
    expect(login.status).toBe(200);
    expect((await c.req('POST', '/_matrix/client/v3/user_directory/search', { search_term: 'x' }, token)).status).toBe(200);
    // It is no guest any more: its old token cannot upgrade again.
    const again = await c.register({ username: localpart, password: 'pw3', guest_access_token: token, auth: { type: 'm.login.dummy' } });
    expect(again.status).toBe(403);
    const full = await c.register({ username: 'fulluser', password: 'pw', auth: { type: 'm.login.dummy' } });
    expect((await c.register({ password: 'pw', guest_access_token: full.body.access_token, auth: { type: 'm.login.dummy' } })).status).toBe(403);
  });

  it('lets guests join only rooms open to guests, and removes them when guest access is revoked', async () => {
    const owner = await c.register({ username: 'roomowner', password: 'pw', auth: { type: 'm.login.dummy' } });
    const ownerToken = owner.body.access_token as string;
    const guest = await c.register({}, '?kind=guest');
    // A room without guest access: a guest may not join it, even when it is public.
    const closed = (await c.req('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, ownerToken)).body.room_id as string;
    const refused = await c.req('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(closed)}/join`, {}, guest.body.access_token as string);
    expect(refused.status).toBe(403);
    expect(refused.body.errcode).toBe('M_FORBIDDEN');
    const created = await c.req('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat', initial_state: [{ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'can_join' } }] }, ownerToken);
    const roomId = created.body.room_id as string;
    const room = encodeURIComponent(roomId);
    expect((await c.req('POST', `/_matrix/client/v3/rooms/${room}/join`, {}, guest.body.access_token as string)).status).toBe(200);
    const memberOf = async (userId: string) => (await c.req('GET', `/_matrix/client/v3/rooms/${room}/state/m.room.member/${encodeURIComponent(userId)}`, undefined, ownerToken)).body.membership;
    expect(await memberOf(guest.body.user_id as string)).toBe('join');
    // Other state changes leave guests alone; revoking guest access does not.
    expect((await c.req('PUT', `/_matrix/client/v3/rooms/${room}/state/m.room.topic`, { topic: 'tea' }, ownerToken)).status).toBe(200);
    expect(await memberOf(guest.body.user_id as string)).toBe('join');
    expect((await c.req('PUT', `/_matrix/client/v3/rooms/${room}/state/m.room.guest_access`, { guest_access: 'forbidden' }, ownerToken)).status).toBe(200);
    expect(await memberOf(guest.body.user_id as string)).toBe('leave');
    expect(await memberOf(owner.body.user_id as string)).toBe('join');
  });

  it('refuses guests where they are disabled (the default outside test configurations)', async () => {
    const other = await serverWith({ guests_disabled: true });
    try {
      const r = await client(other).register({}, '?kind=guest');
      expect(r.status).toBe(403);
      expect(r.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    } finally {
      await other.stop();
    }
  });
});

describe('captcha siteverify over HTTPS', () => {
  // Sytest's siteverify stand-in serves HTTPS with a self-signed certificate; certificates are
  // checked as for other servers, so only federation_api.disable_tls_validation lets it through.
  let siteverify: import('node:https').Server;
  let url = '';
  beforeAll(async () => {
    const { createServer: createHttpsServer } = await import('node:https');
    const { generateTlsMaterial } = await import('../../setup/tlscert.js');
    const tls = await generateTlsMaterial({ hosts: ['127.0.0.1'], keySize: 2048 });
    siteverify = createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ success: form.get('secret') === 'sytest_recaptcha_private_key' && form.get('response') === 'sytest_captcha_response' }));
      });
    });
    await new Promise<void>((r) => siteverify.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(siteverify.address() as { port: number }).port}/recaptcha/api/siteverify`;
  });
  afterAll(async () => {
    await new Promise((r) => siteverify?.close(r));
  });

  for (const disableTlsValidation of [true, false]) {
    it(`${disableTlsValidation ? 'takes' : 'does not take'} a self-signed provider with disable_tls_validation ${disableTlsValidation} (Sytest "Register with a recaptcha")`, async () => {
      const { cfg, dir } = testConfig((doc: Doc) => {
        Object.assign(doc.client_api!, { recaptcha_public_key: 'sytest_recaptcha_public_key', recaptcha_private_key: 'sytest_recaptcha_private_key', recaptcha_siteverify_api: url });
        (doc.federation_api as Record<string, unknown>).disable_tls_validation = disableTlsValidation;
      });
      const t = await startTestServer({ cfg, dir });
      try {
        const r = await client(t).register({ username: `captcha${String(disableTlsValidation)}`, password: 'my secret', auth: { type: 'm.login.recaptcha', response: 'sytest_captcha_response' } });
        expect(r.status).toBe(401);
        expect(r.body.completed).toEqual(disableTlsValidation ? ['m.login.recaptcha'] : []);
      } finally {
        await t.stop();
      }
    });
  }
});
