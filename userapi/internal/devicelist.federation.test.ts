/**
 * Following another server's user's device list, between two of our servers over HTTPS: bob
 * on B shares a room with alice on A. A fetches bob's list once and answers alice's key
 * queries from it after; bob's device changes reach A as m.device_list_update EDUs; an EDU
 * that skips an update makes A fetch the list again; EDUs about users of other servers are
 * ignored; A stops following bob when they share no room; the admin refreshDevices route
 * fetches on demand; with B down, A answers from what it has.
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, type OpenedDatabase } from '../../internal/sqlutil/index.js';
import { databaseFor } from '../../setup/config/config.js';
import type { QueryRemoteDeviceListRequest, QueryRemoteKeysRequest } from '../../federationapi/api/index.js';
import { startFederatingNode, nodeRequest, registerOn, type FederatingNode } from '../../test/federation.js';
import { getJson, registerAdmin, waitFor } from '../../test/harness.js';
import { RemoteDeviceListStore } from '../storage/devicelists.js';
import type { UserapiDatabase } from '../storage/tables.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

let a: FederatingNode;
let b: FederatingNode;
let bStopped = false;
let alice: string;
let admin: string;
let bob: string;
let BOB: string;
let bobDevice: string;
let roomId: string;
let aDb: OpenedDatabase<unknown>;
let aLists: RemoteDeviceListStore;
/** What A asked other servers: GET /user/devices and POST /user/keys/query. */
const asked = { deviceLists: 0, keyQueries: 0 };

const req = nodeRequest;
const register = registerOn;
const until = <T>(fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> => waitFor(fn, ms);
const deviceKeys = (userId: string, deviceId: string, v = 'pub') => ({
  user_id: userId,
  device_id: deviceId,
  algorithms: ['m.olm.v1.curve25519-aes-sha2'],
  keys: { [`ed25519:${deviceId}`]: `${v}-${deviceId}`, [`curve25519:${deviceId}`]: `cu-${deviceId}` },
  signatures: {},
});
const queryBob = async () => {
  const q = await req(a, 'POST', '/keys/query', alice, { device_keys: { [BOB]: [] } });
  expect(q.status).toBe(200);
  return { devices: (q.body.device_keys as Record<string, Record<string, Body>>)[BOB] ?? {}, failures: q.body.failures as Body };
};
const bobList = async () => (await aLists.lists([BOB])).get(BOB);

/** A transaction of EDUs to A, signed as B (B's key), as B's sender would send it. */
let txn = 0;
const sendAsB = async (edus: Body[]): Promise<number> => {
  const { request, Agent } = await import('node:https');
  const path = `/_matrix/federation/v1/send/devicelist-${Date.now()}-${++txn}`;
  const body = { origin: b.name, origin_server_ts: Date.now(), pdus: [], edus };
  const authorization = b.t.server.identity.signRequest({ method: 'PUT', uri: path, origin: b.name, destination: a.name, content: body as never });
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const r = request(
      `${a.https}${path}`,
      { method: 'PUT', agent: new Agent({ rejectUnauthorized: false }), headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)), Authorization: authorization } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    r.on('error', reject);
    r.end(payload);
  });
};

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  admin = await registerAdmin(a.t, 'admin');
  bob = await register(b, 'bob');
  BOB = `@bob:${b.name}`;
  bobDevice = (await req(b, 'GET', '/account/whoami', bob)).body.device_id as string;
  // Count what A asks B for keys.
  const fed = a.t.server.apis.federationapi;
  const lists = fed.queryRemoteDeviceList.bind(fed);
  const keys = fed.queryRemoteKeys.bind(fed);
  fed.queryRemoteDeviceList = (r: QueryRemoteDeviceListRequest) => (asked.deviceLists++, lists(r));
  fed.queryRemoteKeys = (r: QueryRemoteKeysRequest) => (asked.keyQueries++, keys(r));
  aDb = openDatabase(databaseFor(a.t.cfg, 'userapi').connectionString, { baseDir: a.t.cfg.baseDir });
  aLists = new RemoteDeviceListStore(aDb.db as unknown as Kysely<UserapiDatabase>);

  roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
  expect((await req(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
  await until(async () => ((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: BOB })).membership === 'join' ? true : undefined));
  expect((await req(b, 'POST', '/keys/upload', bob, { device_keys: deviceKeys(BOB, bobDevice) })).status).toBe(200);
}, 90_000);
afterAll(async () => {
  await aDb?.close();
  await Promise.all([a?.t.stop(), bStopped ? undefined : b?.t.stop()]);
});

it("answers keys/query for a followed remote user from A's copy after the first fetch", async () => {
  const first = await until(async () => {
    const q = await queryBob();
    return q.devices[bobDevice] ? q : undefined;
  });
  expect(first.failures).toEqual({});
  expect((first.devices[bobDevice]!.keys as Body)[`ed25519:${bobDevice}`]).toBe(`pub-${bobDevice}`);
  expect(await bobList()).toMatchObject({ stale: false, fetched: true });
  const seen = { ...asked };
  expect(seen.deviceLists).toBeGreaterThanOrEqual(1);
  for (let i = 0; i < 5; i++) expect((await queryBob()).devices).toEqual(first.devices);
  // B was not asked again.
  expect(asked).toEqual(seen);
}, 60_000);

it("a new device of bob's reaches A by EDU: it is in the next query and in alice's device_lists.changed", async () => {
  const since = (await req(a, 'GET', '/sync?timeout=0', alice)).body.next_batch as string;
  const login = await getJson(`${b.t.baseUrl}/_matrix/client/v3/login`, {
    method: 'POST',
    body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: 'pw', device_id: 'BOBPHONE', initial_device_display_name: 'Bob phone' }),
  });
  const phone = login.body.access_token as string;
  expect((await req(b, 'POST', '/keys/upload', phone, { device_keys: deviceKeys(BOB, 'BOBPHONE') })).status).toBe(200);
  const devices = await until(async () => {
    const q = await queryBob();
    return q.devices['BOBPHONE'] ? q.devices : undefined;
  });
  expect((devices['BOBPHONE']!.unsigned as Body).device_display_name).toBe('Bob phone');
  expect(Object.keys(devices).sort()).toEqual([bobDevice, 'BOBPHONE'].sort());
  await until(async () => {
    const s = (await req(a, 'GET', `/sync?since=${since}&timeout=500`, alice)).body;
    return ((s.device_lists as { changed?: string[] } | undefined)?.changed ?? []).includes(BOB) ? true : undefined;
  });
  // Settled: answered from the copy again.
  await until(async () => ((await bobList())?.stale === false ? true : undefined));
  const seen = { ...asked };
  expect((await queryBob()).devices).toEqual(devices);
  expect(asked).toEqual(seen);
}, 60_000);

it('an EDU that skips an update makes A fetch the whole list again, which is what B has', async () => {
  await until(async () => ((await bobList())?.stale === false ? true : undefined));
  const s = (await bobList())!.streamId;
  // An update that follows on is applied as it is: a device B never had appears on A.
  expect(await sendAsB([{ edu_type: 'm.device_list_update', content: { user_id: BOB, device_id: 'PHANTOM', stream_id: s + 1, prev_id: [s], keys: deviceKeys(BOB, 'PHANTOM') } }])).toBe(200);
  const before = { ...asked };
  expect(Object.keys((await queryBob()).devices)).toContain('PHANTOM');
  expect(asked).toEqual(before);
  // One that refers to an update A never saw: stale, fetched again in the background.
  expect(await sendAsB([{ edu_type: 'm.device_list_update', content: { user_id: BOB, device_id: 'GHOST', stream_id: s + 5, prev_id: [s + 4], keys: deviceKeys(BOB, 'GHOST') } }])).toBe(200);
  await until(async () => (asked.deviceLists > before.deviceLists && (await bobList())?.stale === false ? true : undefined));
  const after = await queryBob();
  expect(Object.keys(after.devices).sort()).toEqual([bobDevice, 'BOBPHONE'].sort());
  expect(after.failures).toEqual({});
}, 60_000);

it("ignores EDUs about users who are not the sending server's, and deleted devices go", async () => {
  const ALICE = `@alice:${a.name}`;
  const EVE = '@eve:elsewhere.test';
  expect(
    await sendAsB([
      { edu_type: 'm.device_list_update', content: { user_id: ALICE, device_id: 'FORGED', stream_id: 1, prev_id: [], keys: deviceKeys(ALICE, 'FORGED') } },
      { edu_type: 'm.device_list_update', content: { user_id: EVE, device_id: 'FORGED', stream_id: 1, prev_id: [], keys: deviceKeys(EVE, 'FORGED') } },
      { edu_type: 'm.signing_key_update', content: { user_id: EVE, master_key: { user_id: EVE, usage: ['master'], keys: { ['ed25519:' + 'A'.repeat(43)]: 'A'.repeat(43) } } } },
    ]),
  ).toBe(200);
  const mine = await req(a, 'POST', '/keys/query', alice, { device_keys: { [ALICE]: [] } });
  expect((mine.body.device_keys as Record<string, Body>)[ALICE]).toEqual({});
  expect(await aLists.lists([EVE])).toEqual(new Map());

  // Bob deletes his phone on B.
  const first = await req(b, 'POST', '/delete_devices', bob, { devices: ['BOBPHONE'] });
  const session = first.body.session as string;
  const del = await req(b, 'POST', '/delete_devices', bob, { devices: ['BOBPHONE'], auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: 'pw', session } });
  expect(del.status).toBe(200);
  await until(async () => (!('BOBPHONE' in (await queryBob()).devices) ? true : undefined));
  expect(Object.keys((await queryBob()).devices)).toEqual([bobDevice]);
}, 60_000);

it('stops following bob when he leaves the room, and fetches his list afresh when he is back', async () => {
  await until(async () => ((await bobList())?.stale === false ? true : undefined));
  expect((await req(b, 'POST', `/rooms/${enc(roomId)}/leave`, bob, {})).status).toBe(200);
  await until(async () => ((await bobList()) === undefined ? true : undefined));
  // Sharing no room, he is asked about each time and not followed.
  const n = asked.keyQueries;
  expect(Object.keys((await queryBob()).devices)).toEqual([bobDevice]);
  expect(asked.keyQueries).toBe(n + 1);
  expect(await bobList()).toBeUndefined();
  expect((await req(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
  await until(async () => ((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: BOB })).membership === 'join' ? true : undefined));
  const before = asked.deviceLists;
  expect(Object.keys((await queryBob()).devices)).toEqual([bobDevice]);
  expect(asked.deviceLists).toBe(before + 1);
  expect(await bobList()).toMatchObject({ stale: false, fetched: true });
}, 60_000);

it('POST /_dendrite/admin/refreshDevices/{userId} fetches the list again, for admins only', async () => {
  const refresh = (userId: string, token: string) =>
    getJson(`${a.t.baseUrl}/_dendrite/admin/refreshDevices/${enc(userId)}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  const denied = await refresh(BOB, alice);
  expect(denied.status).toBe(403);
  expect(denied.body.errcode).toBe('M_FORBIDDEN');
  expect((await refresh(`@alice:${a.name}`, admin)).status).toBe(400);
  expect((await refresh('not-a-user', admin)).status).toBe(400);
  const before = asked.deviceLists;
  const ok = await refresh(BOB, admin);
  expect(ok.status).toBe(200);
  expect(ok.body).toEqual({});
  expect(asked.deviceLists).toBe(before + 1);
  expect(await bobList()).toMatchObject({ stale: false });
}, 60_000);

it('with B down, a stale list still answers from what A has, without a failure', async () => {
  const have = (await queryBob()).devices;
  await b.t.stop();
  bStopped = true;
  const res = await getJson(`${a.t.baseUrl}/_dendrite/admin/refreshDevices/${enc(BOB)}`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` } });
  expect(res.status).toBe(200);
  expect((await bobList())?.stale).toBe(true);
  const q = await queryBob();
  expect(q.devices).toEqual(have);
  expect(q.failures).toEqual({});
}, 60_000);
