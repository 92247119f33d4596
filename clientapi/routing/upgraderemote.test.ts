/**
 * A room upgraded on another server: when a user of ours joins the new room, our server moves
 * its own directory entries of the old room there, as Synapse does (Sytest 60version_upgrade.pl
 * "/upgrade moves remote aliases to the new room", "Local and remote users' homeservers remove
 * a room from their public directory on upgrade"): our aliases of it point at the new room, and
 * our public room list shows the new room instead of the old. A room that merely names ours as
 * its predecessor, with no tombstone of the old room naming it, moves nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nodeRequest, registerOn, startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { waitFor } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

let a: FederatingNode;
let b: FederatingNode;
let alice: string;
let bob: string;

const client = nodeRequest;
const register = registerOn;
const until = waitFor;
const publicRoomIds = async (n: FederatingNode, token: string): Promise<string[]> =>
  (((await client(n, 'GET', '/publicRooms', token)).body.chunk as Body[] | undefined) ?? []).map((r) => r.room_id as string);

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  bob = await register(b, 'bob');
}, 90_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
});

it("moves our aliases and public listing of a room another server upgraded when one of our users joins the new room", async () => {
  const BOB = `@bob:${b.name}`;
  const oldRoom = (await client(a, 'POST', '/createRoom', alice, { preset: 'public_chat', visibility: 'public', power_level_content_override: { users: { [`@alice:${a.name}`]: 100, [BOB]: 100 } } })).body.room_id as string;
  expect((await client(b, 'POST', `/join/${enc(oldRoom)}`, bob, {})).status).toBe(200);
  const alias = `#bobs-room:${b.name}`;
  expect((await client(b, 'PUT', `/directory/room/${enc(alias)}`, bob, { room_id: oldRoom })).status).toBe(200);
  expect((await client(b, 'PUT', `/directory/list/room/${enc(oldRoom)}`, bob, { visibility: 'public' })).status).toBe(200);
  expect(await publicRoomIds(b, bob)).toContain(oldRoom);

  const upgraded = await client(a, 'POST', `/rooms/${enc(oldRoom)}/upgrade`, alice, { new_version: '11' });
  expect(upgraded.status, JSON.stringify(upgraded.body)).toBe(200);
  const newRoom = upgraded.body.replacement_room as string;
  // B hears of the tombstone before bob joins the new room.
  await until(async () => {
    const [t] = (await b.t.server.apis.roomserver.queryLatestEventsAndState({ room_id: oldRoom, state_to_fetch: [{ type: 'm.room.tombstone', state_key: '' }] })).state_events;
    return t ? true : undefined;
  });
  expect((await client(b, 'POST', `/join/${enc(newRoom)}`, bob, {})).status).toBe(200);

  expect((await client(b, 'GET', `/directory/room/${enc(alias)}`, bob)).body.room_id).toBe(newRoom);
  const listed = await publicRoomIds(b, bob);
  expect(listed).toContain(newRoom);
  expect(listed).not.toContain(oldRoom);
});

it('moves nothing for a room naming ours as predecessor without a tombstone', async () => {
  const room = (await client(b, 'POST', '/createRoom', bob, { preset: 'public_chat' })).body.room_id as string;
  const alias = `#stays:${b.name}`;
  expect((await client(b, 'PUT', `/directory/room/${enc(alias)}`, bob, { room_id: room })).status).toBe(200);
  const impostor = (await client(b, 'POST', '/createRoom', bob, { preset: 'public_chat', creation_content: { predecessor: { room_id: room, event_id: '$x' } } })).body.room_id as string;
  const res = await b.t.server.apis.roomserver.performUpgradeDirectoryMove({ old_room_id: room, new_room_id: impostor });
  expect(res.error).toBe('no_tombstone');
  expect((await client(b, 'GET', `/directory/room/${enc(alias)}`, bob)).body.room_id).toBe(room);
});
