/**
 * Rejecting an invite whose server cannot take the rejection (Sytest 35room-invite.pl "Inbound
 * federation can receive invite and reject when remote replies with a 403 / 500 / is
 * unreachable"): the invite is rejected locally with an out-of-band leave, the client gets
 * 200, and the room shows as left with that leave in /sync.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nodeRequest, startFederatingNode, type FederatingNode } from '../../../test/federation.js';
import { waitFor } from '../../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
let a: FederatingNode;
let b: FederatingNode;
let aStopped = false;

const client = nodeRequest;
const until = waitFor;

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode((doc) => ((doc.federation_api as Body).send_max_retries = 1))]);
}, 90_000);
afterAll(async () => {
  await Promise.all([aStopped ? undefined : a?.t.stop(), b?.t.stop()]);
});

it('rejects the invite locally when its server is unreachable, and shows the room as left', async () => {
  const alice = (await client(a, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'alice', password: 'pw' })).body.access_token as string;
  const bob = (await client(b, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'bob', password: 'pw' })).body.access_token as string;
  const BOB = `@bob:${b.name}`;
  const roomId = (await client(a, 'POST', '/createRoom', alice, { preset: 'private_chat' })).body.room_id as string;
  expect((await client(a, 'POST', `/rooms/${enc(roomId)}/invite`, alice, { user_id: BOB })).status).toBe(200);
  const since = await until(async () => {
    const s = (await client(b, 'GET', '/sync?timeout=0', bob)).body;
    return ((s.rooms as Body).invite as Body)[roomId] ? (s.next_batch as string) : undefined;
  });

  await a.t.stop();
  aStopped = true;
  const left = await client(b, 'POST', `/rooms/${enc(roomId)}/leave`, bob, {});
  expect(left.status, JSON.stringify(left.body)).toBe(200);

  const room = await until(async () => (((await client(b, 'GET', `/sync?timeout=0&since=${since}`, bob)).body.rooms as Body).leave as Record<string, Body>)[roomId]);
  const events = (room.timeline as { events: Body[] }).events;
  expect(events[0]).toMatchObject({ type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'leave' } });
  // The invite is gone: a later initial sync has none.
  expect((((await client(b, 'GET', '/sync?timeout=0', bob)).body.rooms as Body).invite as Body)[roomId]).toBeUndefined();
});
