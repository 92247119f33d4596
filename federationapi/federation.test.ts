/**
 * Two of our servers in this process, federating over HTTPS on loopback: a user of one joins
 * a room of the other, messages go both ways in order, and requests that are not properly
 * signed are refused.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFederatingNode, nodeRequest, registerOn, type FederatingNode } from '../test/federation.js';
import { waitFor } from '../test/harness.js';
import { generateSigningKey, signRequest } from '../internal/matrix/index.js';

type Body = Record<string, unknown>;




let a: FederatingNode;
let b: FederatingNode;
let alice: string;
let bob: string;
const enc = encodeURIComponent;

const req = nodeRequest;
const register = registerOn;

const until = <T>(fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> => waitFor(fn, ms);
const bodiesIn = async (n: FederatingNode, token: string, roomId: string) =>
  ((await req(n, 'GET', `/rooms/${enc(roomId)}/messages?dir=f&limit=1000`, token)).body.chunk as Body[] | undefined ?? [])
    .filter((e) => e.type === 'm.room.message')
    .map((e) => (e.content as Body).body as string);

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  bob = await register(b, 'bob');
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
});

it('joins a room of another server, and messages flow both ways in order', async () => {
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat', name: 'Across' })).body.room_id as string;
  await req(a, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/a0`, alice, { msgtype: 'm.text', body: 'before bob' });
  const joined = await req(b, 'POST', `/join/${enc(roomId)}`, bob, {});
  expect(joined.body).toEqual({ room_id: roomId });
  const BOB = `@bob:${b.name}`;
  expect((await b.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: BOB })).membership).toBe('join');
  expect((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: BOB })).membership).toBe('join');
  // B has the room's state: its name.
  expect((await req(b, 'GET', `/rooms/${enc(roomId)}/state/m.room.name`, bob)).body).toEqual({ name: 'Across' });

  for (let i = 0; i < 20; i++) {
    await req(a, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/a${i + 1}`, alice, { msgtype: 'm.text', body: `a${i}` });
    await req(b, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/b${i}`, bob, { msgtype: 'm.text', body: `b${i}` });
  }
  const wantA = Array.from({ length: 20 }, (_, i) => `a${i}`);
  const wantB = Array.from({ length: 20 }, (_, i) => `b${i}`);
  for (const [n, token] of [
    [a, alice],
    [b, bob],
  ] as const) {
    const seen = await until(async () => {
      const all = await bodiesIn(n, token, roomId);
      return wantA.every((x) => all.includes(x)) && wantB.every((x) => all.includes(x)) ? all : undefined;
    });
    // Each sender's messages arrive in the order they were sent.
    expect(seen.filter((x) => /^a\d+$/.test(x))).toEqual(wantA);
    expect(seen.filter((x) => /^b\d+$/.test(x))).toEqual(wantB);
  }
  // Bob's /sync on B shows alice's messages.
  const s = (await req(b, 'GET', '/sync', bob)).body;
  expect(((s.rooms as Body).join as Record<string, Body>)[roomId]).toBeDefined();
}, 60_000);

it('refuses unsigned, badly signed and misaddressed federation requests with 401', async () => {
  const url = `${a.https}/_matrix/federation/v1/event/$nothing`;
  const { Agent } = await import('node:https');
  const agent = new Agent({ rejectUnauthorized: false });
  const get = (authorization?: string) =>
    new Promise<number>((resolve, reject) => {
      import('node:https').then(({ request }) => {
        const r = request(url, { agent, headers: authorization ? { Authorization: authorization } : {} }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        r.on('error', reject);
        r.end();
      }, reject);
    });
  expect(await get()).toBe(401);
  const stranger = generateSigningKey();
  // Signed by a key the claimed origin (server B) does not have.
  expect(await get(signRequest({ method: 'GET', uri: '/_matrix/federation/v1/event/$nothing', origin: b.name, destination: a.name }, stranger.keyId, stranger))).toBe(401);
  expect(await get('X-Matrix origin=nope')).toBe(401);
});

it('invites a user of another server, who can reject the invite or accept it by joining', async () => {
  const BOB = `@bob:${b.name}`;
  const inviteOf = async (roomId: string) => {
    const s = (await req(b, 'GET', '/sync', bob)).body;
    return ((s.rooms as Body).invite as Record<string, Body>)[roomId];
  };
  // Rejected.
  const first = (await req(a, 'POST', '/createRoom', alice, { preset: 'private_chat', name: 'Secret one' })).body.room_id as string;
  expect((await req(a, 'POST', `/rooms/${enc(first)}/invite`, alice, { user_id: BOB })).status).toBe(200);
  expect((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: first, user_id: BOB })).membership).toBe('invite');
  const invited = await until(() => inviteOf(first));
  const state = (invited.invite_state as { events: Body[] }).events;
  expect(state.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: 'Secret one' });
  expect(state.some((e) => e.type === 'm.room.member' && e.state_key === BOB)).toBe(true);
  const beforeReject = (await req(b, 'GET', '/sync', bob)).body.next_batch as string;
  expect((await req(b, 'POST', `/rooms/${enc(first)}/leave`, bob, {})).status).toBe(200);
  // The rejected invite shows as a left room in an incremental sync, with the leave in its timeline (Sytest's "synced" leave).
  const left = await until(async () => {
    const s = (await req(b, 'GET', `/sync?timeout=0&since=${enc(beforeReject)}`, bob)).body;
    return ((s.rooms as Body | undefined)?.leave as Record<string, Body> | undefined)?.[first];
  });
  const leaveEvents = (left.timeline as { events: Body[] }).events;
  expect(leaveEvents.some((e) => e.type === 'm.room.member' && e.state_key === BOB && (e.content as Body).membership === 'leave')).toBe(true);
  expect(((await req(b, 'GET', `/sync?timeout=0&since=${enc(beforeReject)}`, bob)).body.rooms as Body | undefined)?.invite ?? {}).toEqual({});
  // Invited and rejecting again: the second rejection shows as well (Sytest's "several times").
  expect((await req(a, 'POST', `/rooms/${enc(first)}/invite`, alice, { user_id: BOB })).status).toBe(200);
  await until(() => inviteOf(first));
  const beforeSecond = (await req(b, 'GET', '/sync', bob)).body.next_batch as string;
  expect((await req(b, 'POST', `/rooms/${enc(first)}/leave`, bob, {})).status).toBe(200);
  await until(async () => {
    const s2 = (await req(b, 'GET', `/sync?timeout=0&since=${enc(beforeSecond)}`, bob)).body;
    return ((s2.rooms as Body | undefined)?.leave as Record<string, Body> | undefined)?.[first];
  });
  await until(async () => ((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: first, user_id: BOB })).membership === 'leave' ? true : undefined));
  expect((await b.t.server.apis.roomserver.queryMembershipForUser({ room_id: first, user_id: BOB })).membership).toBe('leave');

  // Rejected after the inviter left: the room is empty on A, which still answers make_leave/send_leave.
  const emptied = (await req(a, 'POST', '/createRoom', alice, { preset: 'private_chat' })).body.room_id as string;
  expect((await req(a, 'POST', `/rooms/${enc(emptied)}/invite`, alice, { user_id: BOB })).status).toBe(200);
  await until(() => inviteOf(emptied));
  expect((await req(a, 'POST', `/rooms/${enc(emptied)}/leave`, alice, {})).status).toBe(200);
  const rejected = await req(b, 'POST', `/rooms/${enc(emptied)}/leave`, bob, {});
  expect(rejected.status, JSON.stringify(rejected.body)).toBe(200);
  await until(async () => ((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: emptied, user_id: BOB })).membership === 'leave' ? true : undefined));

  // Accepted: joining an invite-only room through the inviter's server.
  const second = (await req(a, 'POST', '/createRoom', alice, { preset: 'private_chat', name: 'Secret two' })).body.room_id as string;
  await req(a, 'POST', `/rooms/${enc(second)}/invite`, alice, { user_id: BOB });
  await until(() => inviteOf(second));
  expect((await req(b, 'POST', `/rooms/${enc(second)}/join`, bob, {})).body).toEqual({ room_id: second });
  expect((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: second, user_id: BOB })).membership).toBe('join');
  // Without an invite, the private room stays shut.
  const carol = await register(b, 'carol');
  const refused = await req(b, 'POST', `/join/${enc(second)}`, carol, {});
  expect(refused.status).toBe(403);
}, 60_000);

it("createRoom's invite list reaches another server's user, who can join; a local invitee is invited in the room's first events", async () => {
  const BOB = `@bob:${b.name}`;
  const dave = await register(a, 'dave');
  const DAVE = `@dave:${a.name}`;
  const created = await req(a, 'POST', '/createRoom', alice, { preset: 'trusted_private_chat', is_direct: true, invite: [BOB, DAVE] });
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  const roomId = created.body.room_id as string;
  // Bob's server heard of the invite (signed it), and Bob's /sync shows it.
  const invite = await until(async () => {
    const s = (await req(b, 'GET', '/sync?timeout=0', bob)).body;
    return ((s.rooms as Body | undefined)?.invite as Record<string, Body> | undefined)?.[roomId];
  });
  const mine = (invite.invite_state as { events: Body[] }).events.find((e) => e.type === 'm.room.member' && e.state_key === BOB);
  expect((mine?.content as Body | undefined)?.is_direct).toBe(true);
  expect((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: DAVE })).membership).toBe('invite');
  // trusted_private_chat: both invitees are admins.
  const power = (await req(a, 'GET', `/rooms/${enc(roomId)}/state/m.room.power_levels/`, alice)).body;
  expect((power.users as Body)[BOB]).toBe(100);
  expect((power.users as Body)[DAVE]).toBe(100);
  expect((await req(b, 'POST', `/rooms/${enc(roomId)}/join`, bob, {})).body).toEqual({ room_id: roomId });
  expect((await req(a, 'POST', `/rooms/${enc(roomId)}/join`, dave, {})).body).toEqual({ room_id: roomId });
  expect((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: BOB })).membership).toBe('join');
  // An invitee whose server cannot be reached does not stop the room being made.
  const lost = await req(a, 'POST', '/createRoom', alice, { preset: 'private_chat', invite: ['@nobody:127.0.0.1:1'] });
  expect(lost.status, JSON.stringify(lost.body)).toBe(200);
}, 60_000);

it('bans a user of another server: both servers see the ban, his messages stop, he cannot rejoin until unbanned', async () => {
  const BOB = `@bob:${b.name}`;
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat', name: 'Moderated' })).body.room_id as string;
  expect((await req(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
  expect((await req(a, 'POST', `/rooms/${enc(roomId)}/ban`, alice, { user_id: BOB, reason: 'spam' })).status).toBe(200);
  // B learns of the ban over federation.
  await until(async () => ((await b.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: BOB })).membership === 'ban' ? true : undefined));
  expect((await req(b, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/banned1`, bob, { msgtype: 'm.text', body: 'still here?' })).status).toBe(403);
  expect((await req(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(403);
  expect((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: BOB })).membership).toBe('ban');
  // Unbanned, he may join again.
  expect((await req(a, 'POST', `/rooms/${enc(roomId)}/unban`, alice, { user_id: BOB })).status).toBe(200);
  await until(async () => ((await b.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: BOB })).membership === 'leave' ? true : undefined));
  expect((await req(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
}, 60_000);

it("reads another server's profiles and room aliases through its query endpoints", async () => {
  const ALICE = `@alice:${a.name}`;
  await req(a, 'PUT', `/profile/${enc(ALICE)}/displayname`, alice, { displayname: 'Alice of A' });
  expect((await req(b, 'GET', `/profile/${enc(ALICE)}`, bob)).body).toEqual({ displayname: 'Alice of A' });
  expect((await req(b, 'GET', `/profile/${enc(ALICE)}/displayname`, bob)).body).toEqual({ displayname: 'Alice of A' });
  expect((await req(b, 'GET', `/profile/${enc(`@nobody:${a.name}`)}`, bob)).status).toBe(404);
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat', room_alias_name: 'meet' })).body.room_id as string;
  const found = await req(b, 'GET', `/directory/room/${enc(`#meet:${a.name}`)}`, bob);
  expect(found.body).toEqual({ room_id: roomId, servers: [a.name] });
  expect((await req(b, 'GET', `/directory/room/${enc(`#nothing:${a.name}`)}`, bob)).status).toBe(404);
  // Joining by the remote alias.
  expect((await req(b, 'POST', `/join/${enc(`#meet:${a.name}`)}`, bob, {})).body).toEqual({ room_id: roomId });
}, 60_000);

it("queries and claims another server's users' keys, and hears when they change", async () => {
  const BOB = `@bob:${b.name}`;
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
  await req(b, 'POST', `/join/${enc(roomId)}`, bob, {});
  const bobDevice = (await req(b, 'GET', '/account/whoami', bob)).body.device_id as string;
  const since = (await req(a, 'GET', '/sync', alice)).body.next_batch as string;
  const upload = await req(b, 'POST', '/keys/upload', bob, {
    device_keys: { user_id: BOB, device_id: bobDevice, algorithms: ['m.olm.v1.curve25519-aes-sha2'], keys: { [`ed25519:${bobDevice}`]: 'pub' }, signatures: {} },
    one_time_keys: { 'signed_curve25519:AAAA': { key: 'otk' } },
  });
  expect(upload.status).toBe(200);
  // Alice's server hears of it (m.device_list_update) and tells her sync.
  await until(async () => {
    const s = (await req(a, 'GET', `/sync?since=${since}&timeout=500`, alice)).body;
    return ((s.device_lists as { changed?: string[] } | undefined)?.changed ?? []).includes(BOB) ? true : undefined;
  });
  const q = await req(a, 'POST', '/keys/query', alice, { device_keys: { [BOB]: [] } });
  expect(((q.body.device_keys as Record<string, Record<string, Body>>)[BOB]![bobDevice]!.keys as Body)[`ed25519:${bobDevice}`]).toBe('pub');
  expect(q.body.failures).toEqual({});
  const claim = await req(a, 'POST', '/keys/claim', alice, { one_time_keys: { [BOB]: { [bobDevice]: 'signed_curve25519' } } });
  expect((claim.body.one_time_keys as Record<string, Record<string, Body>>)[BOB]![bobDevice]).toEqual({ 'signed_curve25519:AAAA': { key: 'otk' } });
}, 60_000);
