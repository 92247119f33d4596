/** End-to-end keys over HTTP on a real monolith: upload, query, claim, cross-signing. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, signJson, type SigningKey } from '../../internal/matrix/index.js';
import { getJson, startTestServer, type TestServer } from '../../test/harness.js';

let t: TestServer;
let base: string;
const post = (path: string, body: unknown, token?: string) =>
  getJson(`${base}/_matrix/client/v3${path}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });

interface Session {
  userId: string;
  deviceId: string;
  token: string;
}
async function register(username: string, deviceId: string): Promise<Session> {
  const r = await post('/register', { auth: { type: 'm.login.dummy' }, username, password: 'pw', device_id: deviceId, initial_device_display_name: `${username}'s phone` });
  expect(r.status).toBe(200);
  return { userId: r.body.user_id as string, deviceId, token: r.body.access_token as string };
}

function deviceKeys(s: Session, ed = 'edkey') {
  return {
    user_id: s.userId,
    device_id: s.deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${s.deviceId}`]: 'curvekey', [`ed25519:${s.deviceId}`]: ed },
    signatures: { [s.userId]: { [`ed25519:${s.deviceId}`]: 'sig' } },
  };
}

function crossKey(userId: string, usage: string, key: SigningKey, signer?: SigningKey) {
  const obj = { user_id: userId, usage: [usage], keys: { [`ed25519:${key.publicKeyBase64}`]: key.publicKeyBase64 } };
  return signer ? signJson(obj, userId, `ed25519:${signer.publicKeyBase64}`, signer) : obj;
}

let alice: Session;
let bob: Session;

beforeAll(async () => {
  t = await startTestServer();
  base = t.baseUrl;
  alice = await register('alice', 'ALICEDEV');
  bob = await register('bob', 'BOBDEV');
});
afterAll(async () => {
  await t.stop();
});

describe('keys/upload, keys/query, keys/claim', () => {
  it('uploads device and one-time keys, and others see them', async () => {
    const up = await post(
      '/keys/upload',
      { device_keys: deviceKeys(alice), one_time_keys: { 'signed_curve25519:AAAAAQ': { key: 'otk1', signatures: {} } }, fallback_keys: { 'signed_curve25519:FB': { key: 'fb', fallback: true } } },
      alice.token,
    );
    expect(up.status).toBe(200);
    expect(up.body).toEqual({ one_time_key_counts: { signed_curve25519: 1 } });

    const q = await post('/keys/query', { device_keys: { [alice.userId]: [] } }, bob.token);
    expect(q.status).toBe(200);
    expect(q.body).toEqual({
      device_keys: { [alice.userId]: { ALICEDEV: { ...deviceKeys(alice), unsigned: { device_display_name: "alice's phone" } } } },
      failures: {},
      master_keys: {},
      self_signing_keys: {},
      user_signing_keys: {},
    });

    const claim = await post('/keys/claim', { one_time_keys: { [alice.userId]: { ALICEDEV: 'signed_curve25519' } } }, bob.token);
    expect(claim.body).toEqual({ one_time_keys: { [alice.userId]: { ALICEDEV: { 'signed_curve25519:AAAAAQ': { key: 'otk1', signatures: {} } } } }, failures: {} });
    const fallback = await post('/keys/claim', { one_time_keys: { [alice.userId]: { ALICEDEV: 'signed_curve25519' } } }, bob.token);
    expect(fallback.body.one_time_keys).toEqual({ [alice.userId]: { ALICEDEV: { 'signed_curve25519:FB': { key: 'fb', fallback: true } } } });
    const counts = await post('/keys/upload', {}, alice.token);
    expect(counts.body).toEqual({ one_time_key_counts: {} });
  });

  it('a device the user renames shows its new name; a logged-out device disappears from keys/query', async () => {
    const dev = await post('/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'pw', device_id: 'SECOND' });
    const second: Session = { userId: alice.userId, deviceId: 'SECOND', token: dev.body.access_token as string };
    await post('/keys/upload', { device_keys: deviceKeys(second) }, second.token);
    await getJson(`${base}/_matrix/client/v3/devices/SECOND`, {
      method: 'PUT',
      body: JSON.stringify({ display_name: 'Laptop' }),
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${second.token}` },
    });
    let q = await post('/keys/query', { device_keys: { [alice.userId]: ['SECOND'] } }, bob.token);
    expect((q.body.device_keys as Record<string, Record<string, { unsigned: unknown }>>)[alice.userId]!['SECOND']!.unsigned).toEqual({ device_display_name: 'Laptop' });
    expect((await post('/logout', {}, second.token)).status).toBe(200);
    q = await post('/keys/query', { device_keys: { [alice.userId]: [] } }, bob.token);
    expect(Object.keys((q.body.device_keys as Record<string, object>)[alice.userId]!)).toEqual(['ALICEDEV']);
  });

  it('reports remote servers in failures', async () => {
    const q = await post('/keys/query', { device_keys: { '@carol:elsewhere.example': [] } }, bob.token);
    expect(q.status).toBe(200);
    // The server is asked over federation; one that cannot be reached is reported, the rest of the answer stands.
    const failure = (q.body.failures as Record<string, { status: number; message: string }>)['elsewhere.example'];
    expect(failure?.status).toBe(503);
    expect(failure?.message).toMatch(/elsewhere\.example/);
    expect(q.body.device_keys).toEqual({});
  });

  it('answers bad requests with spec errors', async () => {
    const cases: Array<[string, unknown, number, string]> = [
      ['/keys/upload', { device_keys: { ...deviceKeys(alice), user_id: bob.userId } }, 400, 'M_INVALID_PARAM'],
      ['/keys/upload', { device_keys: { ...deviceKeys(alice), device_id: 'OTHER' } }, 400, 'M_INVALID_PARAM'],
      ['/keys/upload', { device_keys: 'nope' }, 400, 'M_BAD_JSON'],
      ['/keys/upload', { one_time_keys: { 'signed_curve25519:AAAAAQ': { key: 'different' } } }, 200, ''],
      ['/keys/upload', { one_time_keys: { 'signed_curve25519:AAAAAQ': { key: 'changed' } } }, 400, 'M_INVALID_PARAM'],
      ['/keys/query', {}, 400, 'M_BAD_JSON'],
      ['/keys/query', { device_keys: { notauser: [] } }, 400, 'M_INVALID_PARAM'],
      ['/keys/query', { device_keys: { [alice.userId]: 'ALICEDEV' } }, 400, 'M_BAD_JSON'],
      ['/keys/query', { device_keys: {}, timeout: -1 }, 400, 'M_BAD_JSON'],
      ['/keys/claim', { one_time_keys: { [alice.userId]: { ALICEDEV: 5 } } }, 400, 'M_BAD_JSON'],
      ['/keys/claim', '{not json', 400, 'M_NOT_JSON'],
    ];
    for (const [path, body, status, errcode] of cases) {
      const r = await post(path, body, alice.token);
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(status);
      if (errcode) expect(r.body.errcode, `${path} ${JSON.stringify(body)}`).toBe(errcode);
    }
    expect((await post('/keys/query', { device_keys: {} })).status).toBe(401);
    const huge = JSON.stringify({ one_time_keys: { 'x:1': 'y'.repeat(2 * 1024 * 1024) } });
    expect((await post('/keys/upload', huge, alice.token)).status).toBe(413);
  });
});

describe('cross-signing', () => {
  const master = generateSigningKey();
  const selfSigning = generateSigningKey();
  const userSigning = generateSigningKey();

  it('sets up cross-signing without UIA the first time, and needs the password to replace it', async () => {
    const keys = {
      master_key: crossKey(bob.userId, 'master', master),
      self_signing_key: crossKey(bob.userId, 'self_signing', selfSigning, master),
      user_signing_key: crossKey(bob.userId, 'user_signing', userSigning, master),
    };
    expect((await post('/keys/device_signing/upload', keys, bob.token)).status).toBe(200);

    const again = await post('/keys/device_signing/upload', keys, bob.token);
    expect(again.status).toBe(401);
    expect(again.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const withAuth = await post(
      '/keys/device_signing/upload',
      { ...keys, auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: bob.userId }, password: 'pw', session: again.body.session } },
      bob.token,
    );
    expect(withAuth.status).toBe(200);

    const q = await post('/keys/query', { device_keys: { [bob.userId]: [] } }, bob.token);
    expect(q.body.master_keys).toEqual({ [bob.userId]: keys.master_key });
    expect(q.body.self_signing_keys).toEqual({ [bob.userId]: keys.self_signing_key });
    expect(q.body.user_signing_keys).toEqual({ [bob.userId]: keys.user_signing_key });
    const seenByAlice = await post('/keys/query', { device_keys: { [bob.userId]: [] } }, alice.token);
    expect(seenByAlice.body.user_signing_keys).toEqual({});
  });

  it('refuses a subkey not signed by the master key', async () => {
    const carol = await register('carol', 'CAROLDEV');
    const m = generateSigningKey();
    const r = await post('/keys/device_signing/upload', { master_key: crossKey(carol.userId, 'master', m), self_signing_key: crossKey(carol.userId, 'self_signing', generateSigningKey()) }, carol.token);
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_SIGNATURE');
  });

  it('uploads a self-signing signature on a device; a bad one comes back in failures', async () => {
    const device = generateSigningKey();
    const keys = deviceKeys(bob, device.publicKeyBase64);
    await post('/keys/upload', { device_keys: keys }, bob.token);
    const good = signJson(keys, bob.userId, `ed25519:${selfSigning.publicKeyBase64}`, selfSigning);
    const r = await post('/keys/signatures/upload', { [bob.userId]: { BOBDEV: good } }, bob.token);
    expect(r.body).toEqual({ failures: {} });
    const q = await post('/keys/query', { device_keys: { [bob.userId]: ['BOBDEV'] } }, alice.token);
    const sigs = (q.body.device_keys as Record<string, Record<string, { signatures: Record<string, Record<string, string>> }>>)[bob.userId]!['BOBDEV']!.signatures;
    expect(Object.keys(sigs[bob.userId]!).sort()).toEqual([`ed25519:${selfSigning.publicKeyBase64}`, 'ed25519:BOBDEV'].sort());

    const bad = signJson(keys, bob.userId, `ed25519:${selfSigning.publicKeyBase64}`, generateSigningKey());
    const r2 = await post('/keys/signatures/upload', { [bob.userId]: { BOBDEV: bad } }, bob.token);
    expect(r2.status).toBe(200);
    expect((r2.body.failures as Record<string, Record<string, { errcode: string }>>)[bob.userId]!['BOBDEV']!.errcode).toBe('M_INVALID_SIGNATURE');
    expect((await post('/keys/signatures/upload', { [bob.userId]: 'x' }, bob.token)).body.errcode).toBe('M_BAD_JSON');
  });
});
