/**
 * Third-party invites across two of our servers: the identity server calls the invitee's
 * server (B) with /3pid/onbind, B asks the room's server (A) with
 * /exchange_third_party_invite, and A builds the invite and has B sign it (PUT /invite). Also
 * the exchange route's checks: signed requests only, invites of the requesting server's own
 * users, a room held here, a valid identity server signature.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { federationRequest, startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { getJson } from '../../test/harness.js';
import { FakeIdentityServer, ID_ACCESS_TOKEN } from '../../test/identityserver.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

let a: FederatingNode;
let b: FederatingNode;
let is: FakeIdentityServer;
let alice: string;
let bob: string;
let carol: string;
let ALICE: string;
let BOB: string;
let CAROL: string;
let n = 0;

const client = (node: FederatingNode, method: string, p: string, token: string, body?: unknown) =>
  getJson(`${node.t.baseUrl}/_matrix/client/v3${p}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
const register = async (node: FederatingNode, user: string) => (await client(node, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: user, password: 'pw' })).body.access_token as string;
const membership = async (node: FederatingNode, roomId: string, userId: string) => (await node.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: userId })).membership;
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const invite3pid = async (roomId: string, address: string) => {
  const res = await client(a, 'POST', `/rooms/${enc(roomId)}/invite`, alice, { id_server: is.name, id_access_token: ID_ACCESS_TOKEN, medium: 'email', address });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
};

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  bob = await register(b, 'bob');
  carol = await register(b, 'carol');
  ALICE = `@alice:${a.name}`;
  BOB = `@bob:${b.name}`;
  CAROL = `@carol:${b.name}`;
});
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
});
beforeEach(async () => {
  is = await FakeIdentityServer.start();
  return () => is.close();
});

it('invites a user of a server that is not in the room: onbind there, exchange with the room\'s server', async () => {
  const address = `lemur${n++}@monkeyworld.example`;
  const roomId = (await client(a, 'POST', '/createRoom', alice, { visibility: 'private' })).body.room_id as string;
  await invite3pid(roomId, address);
  expect(await is.bind('email', address, BOB, b.t.baseUrl)).toBe(200);
  // A built the invite and B signed it: both know it now.
  expect(await membership(a, roomId, BOB)).toBe('invite');
  expect(await membership(b, roomId, BOB)).toBe('invite');
  const member = await client(a, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(BOB)}`, alice);
  expect(member.body).toMatchObject({ membership: 'invite', third_party_invite: { display_name: 'Bob', signed: { mxid: BOB } } });
  const sync = await client(b, 'GET', '/sync', bob);
  const inviteState = (sync.body as { rooms?: { invite?: Record<string, { invite_state: { events: Array<{ type: string; state_key: string }> } }> } }).rooms?.invite?.[roomId]?.invite_state.events ?? [];
  expect(inviteState).toContainEqual(expect.objectContaining({ type: 'm.room.member', state_key: ALICE }));
  // Bob joins through his own server.
  expect((await client(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
  expect(await eventually(() => membership(a, roomId, BOB), (m) => m === 'join')).toBe('join');
});

it('invites when the invitee\'s server is in the room too (the inviter\'s server builds it)', async () => {
  const address = `lemur${n++}@monkeyworld.example`;
  const roomId = (await client(a, 'POST', '/createRoom', alice, { visibility: 'private', invite: [CAROL] })).body.room_id as string;
  expect((await client(b, 'POST', `/join/${enc(roomId)}`, carol, {})).status).toBe(200);
  await invite3pid(roomId, address);
  // B hears of the m.room.third_party_invite before the binding.
  await eventually(() => b.t.server.apis.roomserver.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.third_party_invite', state_key: is.invites[0]!.token }] }), (r) => r.state_events.length === 1);
  expect(await is.bind('email', address, BOB, b.t.baseUrl)).toBe(200);
  expect(await eventually(() => membership(a, roomId, BOB), (m) => m === 'invite')).toBe('invite');
  expect(await eventually(() => membership(b, roomId, BOB), (m) => m === 'invite')).toBe('invite');
  // The invite is the inviter's server's event, signed by it.
  const [ev] = (await a.t.server.apis.roomserver.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.member', state_key: BOB }] })).state_events;
  expect(Object.keys((ev!.pdu as { signatures: Body }).signatures)).toContain(a.name);
  expect(ev!.pdu.sender).toBe(ALICE);
  expect((await client(b, 'POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(200);
  expect(await eventually(() => membership(a, roomId, BOB), (m) => m === 'join')).toBe('join');
});

it('does not invite over federation with a signature by other keys', async () => {
  const address = `lemur${n++}@monkeyworld.example`;
  const roomId = (await client(a, 'POST', '/createRoom', alice, { visibility: 'private' })).body.room_id as string;
  await invite3pid(roomId, address);
  is.rotateKeys();
  // Refused by the room's server, and so by ours to the identity server.
  expect(await is.bind('email', address, BOB, b.t.baseUrl)).toBe(403);
  expect(await membership(a, roomId, BOB)).toBeUndefined();
  expect(await membership(b, roomId, BOB)).toBeUndefined();
});

it('checks exchange_third_party_invite requests', async () => {
  const address = `lemur${n++}@monkeyworld.example`;
  const roomId = (await client(a, 'POST', '/createRoom', alice, { visibility: 'private' })).body.room_id as string;
  await invite3pid(roomId, address);
  const token = is.invites[0]!.token;
  const event = (stateKey: string, signed: Body, room = roomId): Body => ({
    type: 'm.room.member',
    room_id: room,
    sender: ALICE,
    state_key: stateKey,
    content: { membership: 'invite', third_party_invite: { display_name: 'x', signed } },
  });
  const exchange = (body: Body, opts: { authorization?: string | null; room?: string } = {}) =>
    federationRequest(b, a, 'PUT', `/_matrix/federation/v1/exchange_third_party_invite/${enc(opts.room ?? roomId)}`, { body, ...(opts.authorization !== undefined ? { authorization: opts.authorization } : {}) });
  const good = is.sign({ mxid: BOB, token });
  expect(await exchange(event(BOB, good), { authorization: null })).toMatchObject({ status: 401 });
  // B may only ask for its own users.
  expect(await exchange(event(ALICE, is.sign({ mxid: ALICE, token })))).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
  expect(await exchange({ ...event(BOB, good), type: 'm.room.message' })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
  expect(await exchange(event(BOB, good, '!other:x'))).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
  expect(await exchange(event(BOB, good, '!unknown:x'), { room: '!unknown:x' })).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
  const forged = { ...good, token: 'tampered' };
  expect(await exchange(event(BOB, forged))).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
  expect(await membership(a, roomId, BOB)).toBeUndefined();
  expect(await exchange(event(BOB, good))).toMatchObject({ status: 200 });
  expect(await membership(a, roomId, BOB)).toBe('invite');
  expect(await membership(b, roomId, BOB)).toBe('invite');
});
