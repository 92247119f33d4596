/**
 * Space hierarchies across two of our servers federating over HTTPS on loopback: a space on A
 * names rooms and a subspace only B holds; A's users see them through B's
 * GET /_matrix/federation/v1/hierarchy/{roomId}, which is checked here too (signed requests
 * only, rooms the asking server may not see left out or refused).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { federationRequest, startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { getJson } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

let a: FederatingNode;
let b: FederatingNode;
let alice: string;
let bob: string;
const ids: Record<string, string> = {};
const names = new Map<string, string>();

const client = (n: FederatingNode, method: string, p: string, token: string, body?: unknown, prefix = '/_matrix/client/v3') =>
  getJson(`${n.t.baseUrl}${prefix}${p}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
const register = async (n: FederatingNode, user: string) => (await client(n, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: user, password: 'pw' })).body.access_token as string;
const createRoom = async (n: FederatingNode, token: string, label: string, body: Body) => {
  const res = await client(n, 'POST', '/createRoom', token, { name: label, ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  ids[label] = res.body.room_id as string;
  names.set(ids[label], label);
  return ids[label];
};
const addChild = async (n: FederatingNode, token: string, parent: string, child: string, content: Body) => {
  const res = await client(n, 'PUT', `/rooms/${enc(parent)}/state/m.space.child/${enc(child)}`, token, content);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
};
const walk = async (token: string, query = ''): Promise<string[]> => {
  const res = await client(a, 'GET', `/rooms/${enc(ids.SA!)}/hierarchy${query ? `?${query}` : ''}`, token, undefined, '/_matrix/client/v1');
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body.rooms as Body[]).map((r) => names.get(r.room_id as string) ?? String(r.room_id));
};

/** A request to B's federation API, signed by A unless `authorization` says otherwise (null: none). */
function fedToB(p: string, authorization?: string | null): Promise<{ status: number; body: Body }> {
  return federationRequest(a, b, 'GET', `/_matrix/federation${p}`, { authorization });
}

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  bob = await register(b, 'bob');
  const space = { preset: 'public_chat', creation_content: { type: 'm.space' } };
  // On B: a room, and a subspace with a public room and a private one.
  await createRoom(b, bob, 'RB', { preset: 'public_chat', topic: 'held by B' });
  await createRoom(b, bob, 'SB', space);
  await createRoom(b, bob, 'RB2', { preset: 'public_chat' });
  await createRoom(b, bob, 'PB', { preset: 'private_chat' });
  await addChild(b, bob, ids.SB!, ids.RB2!, { via: [b.name], order: 'a', suggested: true });
  await addChild(b, bob, ids.SB!, ids.PB!, { via: [b.name], order: 'b' });
  // On A: the space, with a room of its own and B's two.
  await createRoom(a, alice, 'SA', space);
  await createRoom(a, alice, 'LA', { preset: 'public_chat' });
  await addChild(a, alice, ids.SA!, ids.LA!, { via: [a.name], order: 'a', suggested: true });
  await addChild(a, alice, ids.SA!, ids.RB!, { via: [b.name], order: 'b' });
  await addChild(a, alice, ids.SA!, ids.SB!, { via: [b.name], order: 'c', suggested: true });
}, 90_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
});

it("shows rooms only another server holds, summarised by it, down into its subspaces", async () => {
  // PB is invite-only on B: B tells A it may not see it, so it is not shown.
  expect(await walk(alice)).toEqual(['SA', 'LA', 'RB', 'SB', 'RB2']);
  const res = await client(a, 'GET', `/rooms/${enc(ids.SA!)}/hierarchy`, alice, undefined, '/_matrix/client/v1');
  const rooms = new Map((res.body.rooms as Body[]).map((r) => [names.get(r.room_id as string), r]));
  expect(rooms.get('RB')).toMatchObject({ room_id: ids.RB, name: 'RB', topic: 'held by B', join_rule: 'public', num_joined_members: 1, children_state: [] });
  expect(rooms.get('SB')).toMatchObject({ room_type: 'm.space', join_rule: 'public' });
  expect(((rooms.get('SB')!.children_state as Body[]) ?? []).map((c) => c.state_key)).toEqual([ids.RB2, ids.PB]);
  expect(rooms.get('RB2')).toMatchObject({ name: 'RB2', children_state: [] });
  // A holds none of B's rooms: it only asked.
  expect((await a.t.server.apis.roomserver.queryRoomSummary({ room_id: ids.RB!, user_id: `@alice:${a.name}` })).room_exists).toBe(false);

  expect(await walk(alice, 'suggested_only=true')).toEqual(['SA', 'LA', 'SB', 'RB2']);
  expect(await walk(alice, 'max_depth=1')).toEqual(['SA', 'LA', 'RB', 'SB']);
  // Paged, remote rooms included.
  const first = await client(a, 'GET', `/rooms/${enc(ids.SA!)}/hierarchy?limit=3`, alice, undefined, '/_matrix/client/v1');
  const second = await client(a, 'GET', `/rooms/${enc(ids.SA!)}/hierarchy?limit=3&from=${enc(first.body.next_batch as string)}`, alice, undefined, '/_matrix/client/v1');
  expect([...(first.body.rooms as Body[]), ...(second.body.rooms as Body[])].map((r) => names.get(r.room_id as string))).toEqual(['SA', 'LA', 'RB', 'SB', 'RB2']);
  expect(second.body.next_batch).toBeUndefined();
});

it('serves GET /federation/v1/hierarchy: the space and its children, signed requests only, hidden rooms refused', async () => {
  const res = await fedToB(`/v1/hierarchy/${enc(ids.SB!)}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const room = res.body.room as Body;
  expect(room).toMatchObject({ room_id: ids.SB, room_type: 'm.space', name: 'SB', num_joined_members: 1, world_readable: false, guest_can_join: false, join_rule: 'public' });
  expect((room.children_state as Body[]).map((c) => [c.state_key, c.origin_server_ts !== undefined, c.sender])).toEqual([
    [ids.RB2, true, `@bob:${b.name}`],
    [ids.PB, true, `@bob:${b.name}`],
  ]);
  expect((res.body.children as Body[]).map((c) => c.room_id)).toEqual([ids.RB2]);
  expect(res.body.inaccessible_children).toEqual([ids.PB]);

  const suggested = await fedToB(`/v1/hierarchy/${enc(ids.SB!)}?suggested_only=true`);
  expect(((suggested.body.room as Body).children_state as Body[]).map((c) => c.state_key)).toEqual([ids.RB2]);
  expect(suggested.body.inaccessible_children).toEqual([]);

  const unsigned = await fedToB(`/v1/hierarchy/${enc(ids.SB!)}`, null);
  expect([unsigned.status, unsigned.body.errcode]).toEqual([401, 'M_UNAUTHORIZED']);
  // A private room A has no user in, and a room B does not know: 404 alike.
  for (const roomId of [ids.PB!, `!unknown:${b.name}`]) {
    const hidden = await fedToB(`/v1/hierarchy/${enc(roomId)}`);
    expect([hidden.status, hidden.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
  }
  const bad = await fedToB(`/v1/hierarchy/${enc(ids.SB!)}?suggested_only=maybe`);
  expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
});
