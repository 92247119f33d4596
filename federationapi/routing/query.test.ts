/**
 * The federation query endpoints of one server (A), asked by another real server (B) over
 * HTTPS on loopback with requests signed by B's own key, which A fetches from B.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { federationRequest, startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { getJson } from '../../test/harness.js';
import { generateSigningKey, signJson } from '../../internal/matrix/index.js';

type Body = Record<string, unknown>;




let a: FederatingNode;
let b: FederatingNode;
let alice: string;
let ALICE: string;
let roomId: string;
let alias: string;
const enc = encodeURIComponent;

const client = (n: FederatingNode, method: string, p: string, token: string, body?: unknown) =>
  getJson(`${n.t.baseUrl}/_matrix/client/v3${p}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
  });
const register = async (n: FederatingNode, user: string, deviceId: string) =>
  (await client(n, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: user, password: 'pw', device_id: deviceId, initial_device_display_name: `${user}'s phone` }))
    .body.access_token as string;

interface Answer {
  status: number;
  body: Body;
}

/** A request to A's federation API; signed by B unless an Authorization header (or none) is given. */
function fed(method: string, p: string, opts: { body?: unknown; raw?: string; authorization?: string | null } = {}): Promise<Answer> {
  return federationRequest(b, a, method, `/_matrix/federation${p}`, opts);
}

const errcode = (res: Answer): [number, unknown] => [res.status, res.body.errcode];

/** Cross-signing keys of a user: a master key and a self-signing key it signed. */
function crossSigningKeys(userId: string): { master: Body; selfSigning: Body } {
  const m = generateSigningKey();
  const s = generateSigningKey();
  const master = { user_id: userId, usage: ['master'], keys: { [`ed25519:${m.publicKeyBase64}`]: m.publicKeyBase64 } };
  const selfSigning = signJson(
    { user_id: userId, usage: ['self_signing'], keys: { [`ed25519:${s.publicKeyBase64}`]: s.publicKeyBase64 } },
    userId,
    `ed25519:${m.publicKeyBase64}`,
    m.privateKeyObject,
  );
  return { master, selfSigning };
}

const deviceKeys = (userId: string, deviceId: string): Body => ({
  user_id: userId,
  device_id: deviceId,
  algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
  keys: { [`curve25519:${deviceId}`]: 'curve', [`ed25519:${deviceId}`]: 'edkey' },
  signatures: { [userId]: { [`ed25519:${deviceId}`]: 'sig' } },
});

let cross: { master: Body; selfSigning: Body };

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  ALICE = `@alice:${a.name}`;
  alice = await register(a, 'alice', 'ALICEDEV');
  await register(a, 'quiet', 'QUIETDEV');
  const bob = await register(b, 'bob', 'BOBDEV');

  expect((await client(a, 'PUT', `/profile/${enc(ALICE)}/displayname`, alice, { displayname: 'Alice' })).status).toBe(200);
  const upload = await client(a, 'POST', '/keys/upload', alice, {
    device_keys: deviceKeys(ALICE, 'ALICEDEV'),
    one_time_keys: { 'signed_curve25519:AAAA': { key: 'otk1', signatures: {} }, 'signed_curve25519:AAAB': { key: 'otk2', signatures: {} } },
  });
  expect(upload.status).toBe(200);
  cross = crossSigningKeys(ALICE);
  expect((await client(a, 'POST', '/keys/device_signing/upload', alice, { master_key: cross.master, self_signing_key: cross.selfSigning })).status).toBe(200);

  const created = await client(a, 'POST', '/createRoom', alice, { preset: 'public_chat', visibility: 'public', name: 'Cheese', topic: 'Tasty', room_alias_name: 'cheese' });
  expect(created.status).toBe(200);
  roomId = created.body.room_id as string;
  alias = `#cheese:${a.name}`;
  // Bob of B joins, so that B is one of the room's servers.
  expect((await client(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
  // A second, smaller published room, and an unpublished one.
  expect((await client(a, 'POST', '/createRoom', alice, { preset: 'public_chat', visibility: 'public', name: 'Bread' })).status).toBe(200);
  expect((await client(a, 'POST', '/createRoom', alice, { preset: 'private_chat', name: 'Secret' })).status).toBe(200);
}, 90_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
});

it('refuses unsigned requests with 401 and unparsable bodies with M_NOT_JSON', async () => {
  expect(errcode(await fed('GET', `/v1/query/profile?user_id=${enc(ALICE)}`, { authorization: null }))).toEqual([401, 'M_UNAUTHORIZED']);
  expect(errcode(await fed('POST', '/v1/user/keys/query', { authorization: null, body: { device_keys: {} } }))).toEqual([401, 'M_UNAUTHORIZED']);
  expect(errcode(await fed('POST', '/v1/user/keys/query', { raw: '{"device_keys":', authorization: 'X-Matrix origin=nope' }))).toEqual([400, 'M_NOT_JSON']);
});

describe('GET /query/profile', () => {
  it('answers the profile, or the field asked for', async () => {
    expect(await fed('GET', `/v1/query/profile?user_id=${enc(ALICE)}`)).toEqual({ status: 200, body: { displayname: 'Alice' } });
    expect(await fed('GET', `/v1/query/profile?user_id=${enc(ALICE)}&field=displayname`)).toEqual({ status: 200, body: { displayname: 'Alice' } });
    // Unset fields are left out.
    expect(await fed('GET', `/v1/query/profile?user_id=${enc(ALICE)}&field=avatar_url`)).toEqual({ status: 200, body: {} });
  });

  it('refuses unknown fields, other servers users and missing users', async () => {
    expect(errcode(await fed('GET', `/v1/query/profile?user_id=${enc(ALICE)}&field=email`))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('GET', `/v1/query/profile?user_id=${enc(`@bob:${b.name}`)}`))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('GET', `/v1/query/profile?user_id=nobody`))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('GET', '/v1/query/profile'))).toEqual([400, 'M_MISSING_PARAM']);
    expect(errcode(await fed('GET', `/v1/query/profile?user_id=${enc(`@ghost:${a.name}`)}`))).toEqual([404, 'M_NOT_FOUND']);
  });
});

describe('GET /query/directory', () => {
  it('resolves our aliases, with us first among the room servers', async () => {
    const res = await fed('GET', `/v1/query/directory?room_alias=${enc(alias)}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ room_id: roomId, servers: [a.name, b.name] });
  });

  it('refuses aliases of other servers, malformed ones and unknown ones', async () => {
    expect(errcode(await fed('GET', `/v1/query/directory?room_alias=${enc(`#cheese:${b.name}`)}`))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('GET', `/v1/query/directory?room_alias=cheese`))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('GET', '/v1/query/directory'))).toEqual([400, 'M_MISSING_PARAM']);
    expect(errcode(await fed('GET', `/v1/query/directory?room_alias=${enc(`#nothing:${a.name}`)}`))).toEqual([404, 'M_NOT_FOUND']);
  });
});

describe('GET /user/devices/{userId}', () => {
  it('lists the devices with their keys, the list version and the cross-signing keys', async () => {
    const version = async (userId: string) => (await a.t.server.apis.userapi!.queryDeviceListVersion({ userId })).streamId;
    const res = await fed('GET', `/v1/user/devices/${enc(ALICE)}`);
    expect(res.status).toBe(200);
    // The list's version is the key server's: alice's device and keys have changed it.
    expect(await version(ALICE)).toBeGreaterThan(0);
    expect(res.body).toEqual({
      user_id: ALICE,
      stream_id: await version(ALICE),
      devices: [{ device_id: 'ALICEDEV', device_display_name: "alice's phone", keys: deviceKeys(ALICE, 'ALICEDEV') }],
      master_key: cross.master,
      self_signing_key: cross.selfSigning,
    });
    // A user without keys: the device is listed without them.
    expect((await fed('GET', `/v1/user/devices/${enc(`@quiet:${a.name}`)}`)).body).toEqual({
      user_id: `@quiet:${a.name}`,
      stream_id: await version(`@quiet:${a.name}`),
      devices: [{ device_id: 'QUIETDEV', device_display_name: "quiet's phone" }],
    });
  });

  it('refuses users of other servers', async () => {
    expect(errcode(await fed('GET', `/v1/user/devices/${enc(`@bob:${b.name}`)}`))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('GET', `/v1/user/devices/nobody`))).toEqual([400, 'M_INVALID_PARAM']);
  });
});

describe('POST /user/keys/query', () => {
  it('answers for our users and ignores the others', async () => {
    const res = await fed('POST', '/v1/user/keys/query', { body: { device_keys: { [ALICE]: [], [`@bob:${b.name}`]: [] } } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      device_keys: { [ALICE]: { ALICEDEV: { ...deviceKeys(ALICE, 'ALICEDEV'), unsigned: { device_display_name: "alice's phone" } } } },
      master_keys: { [ALICE]: cross.master },
      self_signing_keys: { [ALICE]: cross.selfSigning },
    });
    const some = await fed('POST', '/v1/user/keys/query', { body: { device_keys: { [ALICE]: ['OTHER'] } } });
    expect(some.body.device_keys).toEqual({ [ALICE]: {} });
  });

  it('refuses bodies of the wrong shape', async () => {
    expect(errcode(await fed('POST', '/v1/user/keys/query', { body: { device_keys: { [ALICE]: 'ALICEDEV' } } }))).toEqual([400, 'M_BAD_JSON']);
    expect(errcode(await fed('POST', '/v1/user/keys/query', { body: {} }))).toEqual([400, 'M_BAD_JSON']);
    expect(errcode(await fed('POST', '/v1/user/keys/query', { body: [] }))).toEqual([400, 'M_BAD_JSON']);
  });
});

describe('POST /user/keys/claim', () => {
  it('hands out each one-time key once, for our users only', async () => {
    const ask = { one_time_keys: { [ALICE]: { ALICEDEV: 'signed_curve25519' }, [`@bob:${b.name}`]: { BOBDEV: 'signed_curve25519' } } };
    const first = await fed('POST', '/v1/user/keys/claim', { body: ask });
    const second = await fed('POST', '/v1/user/keys/claim', { body: ask });
    const third = await fed('POST', '/v1/user/keys/claim', { body: ask });
    expect(first.status).toBe(200);
    const keysOf = (r: Answer) => ((r.body.one_time_keys as Record<string, Record<string, Body>>)[ALICE]?.ALICEDEV ?? {});
    expect(Object.keys(first.body.one_time_keys as Body)).toEqual([ALICE]);
    const claimed = [keysOf(first), keysOf(second)].map((k) => Object.keys(k)[0]).sort();
    expect(claimed).toEqual(['signed_curve25519:AAAA', 'signed_curve25519:AAAB']);
    expect(third.body).toEqual({ one_time_keys: {} });
  });

  it('refuses bodies of the wrong shape', async () => {
    expect(errcode(await fed('POST', '/v1/user/keys/claim', { body: { one_time_keys: { [ALICE]: ['ALICEDEV'] } } }))).toEqual([400, 'M_BAD_JSON']);
    expect(errcode(await fed('POST', '/v1/user/keys/claim', { body: { one_time_keys: 'x' } }))).toEqual([400, 'M_BAD_JSON']);
  });
});

describe('/publicRooms', () => {
  it('lists our published rooms, largest first, in pages', async () => {
    const all = await fed('GET', '/v1/publicRooms');
    expect(all.status).toBe(200);
    const chunk = all.body.chunk as Body[];
    expect(chunk.map((r) => r.name)).toEqual(['Cheese', 'Bread']);
    expect(chunk[0]).toMatchObject({ room_id: roomId, num_joined_members: 2, name: 'Cheese', topic: 'Tasty', canonical_alias: alias, join_rule: 'public', world_readable: false, guest_can_join: false });
    expect(all.body.total_room_count_estimate).toBe(2);
    expect(all.body.next_batch).toBeUndefined();

    const page1 = await fed('GET', '/v1/publicRooms?limit=1');
    expect((page1.body.chunk as Body[]).map((r) => r.name)).toEqual(['Cheese']);
    expect(page1.body.prev_batch).toBeUndefined();
    const page2 = await fed('GET', `/v1/publicRooms?limit=1&since=${enc(page1.body.next_batch as string)}`);
    expect((page2.body.chunk as Body[]).map((r) => r.name)).toEqual(['Bread']);
    expect(page2.body.next_batch).toBeUndefined();
    expect(page2.body.prev_batch).toBeDefined();
  });

  it('filters by search term and room type with POST', async () => {
    const found = await fed('POST', '/v1/publicRooms', { body: { limit: 10, filter: { generic_search_term: 'tast' } } });
    expect((found.body.chunk as Body[]).map((r) => r.room_id)).toEqual([roomId]);
    const spaces = await fed('POST', '/v1/publicRooms', { body: { filter: { room_types: ['m.space'] } } });
    expect(spaces.body).toEqual({ chunk: [], total_room_count_estimate: 0 });
    const everything = await fed('POST', '/v1/publicRooms', { body: { include_all_networks: true } });
    expect((everything.body.chunk as Body[]).length).toBe(2);
    // We bridge no third-party networks.
    expect((await fed('GET', '/v1/publicRooms?third_party_instance_id=irc')).body).toEqual({ chunk: [], total_room_count_estimate: 0 });
  });

  it("serves a client of another server asking for this server's list (/publicRooms?server=)", async () => {
    const bob = await register(b, 'roomlister', 'LISTDEV');
    const all = await client(b, 'GET', `/publicRooms?server=${enc(a.name)}`, bob);
    expect(all.status, JSON.stringify(all.body)).toBe(200);
    expect((all.body.chunk as Body[]).map((r) => r.name)).toEqual(['Cheese', 'Bread']);
    const page1 = await client(b, 'POST', `/publicRooms?server=${enc(a.name)}`, bob, { limit: 1 });
    expect((page1.body.chunk as Body[]).map((r) => r.name)).toEqual(['Cheese']);
    const page2 = await client(b, 'POST', `/publicRooms?server=${enc(a.name)}`, bob, { limit: 1, since: page1.body.next_batch });
    expect((page2.body.chunk as Body[]).map((r) => r.name)).toEqual(['Bread']);
    const searched = await client(b, 'POST', `/publicRooms?server=${enc(a.name)}`, bob, { filter: { generic_search_term: 'tast' } });
    expect((searched.body.chunk as Body[]).map((r) => r.room_id)).toEqual([roomId]);
    expect((await client(b, 'GET', '/publicRooms?server=unreachable.invalid', bob)).status).toBe(502);
    expect((await client(b, 'GET', `/publicRooms?server=${enc('bad server!')}`, bob)).body.errcode).toBe('M_INVALID_PARAM');
  });

  it('refuses bad parameters', async () => {
    expect(errcode(await fed('GET', '/v1/publicRooms?limit=-1'))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('GET', '/v1/publicRooms?since=bogus'))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('GET', '/v1/publicRooms?include_all_networks=true&third_party_instance_id=irc'))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('POST', '/v1/publicRooms', { body: { limit: 'ten' } }))).toEqual([400, 'M_BAD_JSON']);
    expect(errcode(await fed('POST', '/v1/publicRooms', { body: { filter: { generic_search_term: 3 } } }))).toEqual([400, 'M_BAD_JSON']);
    expect(errcode(await fed('POST', '/v1/publicRooms', { body: { include_all_networks: true, third_party_instance_id: 'irc' } }))).toEqual([400, 'M_INVALID_PARAM']);
    expect(errcode(await fed('POST', '/v1/publicRooms', { raw: 'not json', authorization: 'X-Matrix origin=nope' }))).toEqual([400, 'M_NOT_JSON']);
  });
});
