/**
 * Guest access revoked by another server's user (Sytest 13guestaccess.pl "Guest users are
 * kicked from guest_access rooms on revocation of guest_access over federation"): this
 * server's guests in the room leave it; its full members stay.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nodeRequest, startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { waitFor } from '../../test/harness.js';

const enc = encodeURIComponent;
let a: FederatingNode;
let b: FederatingNode;

const client = nodeRequest;
const until = waitFor;

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
}, 90_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
});

it("makes this server's guests leave a room whose guest access another server's user revoked", async () => {
  const alice = (await client(a, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'alice', password: 'pw' })).body.access_token as string;
  const bob = (await client(b, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'bob', password: 'pw' })).body.access_token as string;
  const guest = await client(a, 'POST', '/register?kind=guest', '', {});
  expect(guest.status, JSON.stringify(guest.body)).toBe(200);
  const guestId = guest.body.user_id as string;
  const BOB = `@bob:${b.name}`;
  const roomId = (await client(a, 'POST', '/createRoom', alice, { preset: 'public_chat', power_level_content_override: { users: { [`@alice:${a.name}`]: 100, [BOB]: 50 } } })).body.room_id as string;
  expect((await client(a, 'PUT', `/rooms/${enc(roomId)}/state/m.room.guest_access`, alice, { guest_access: 'can_join' })).status).toBe(200);
  expect((await client(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
  expect((await client(a, 'POST', `/join/${enc(roomId)}`, guest.body.access_token as string, {})).status).toBe(200);

  // B holds the power levels giving bob 50 before he changes the guest access.
  await until(async () => ((await client(b, 'PUT', `/rooms/${enc(roomId)}/state/m.room.guest_access`, bob, { guest_access: 'forbidden' })).status === 200 ? true : undefined));
  const membership = async (user: string) => (await client(a, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(user)}`, alice)).body.membership;
  await until(async () => ((await membership(guestId)) === 'leave' ? true : undefined));
  expect(await membership(`@alice:${a.name}`)).toBe('join');
});
