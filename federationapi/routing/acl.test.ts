/**
 * Server ACLs on the federation routes Sytest's 50server-acl-endpoints.pl found open: an invite
 * (PUT /v2/invite) and get_missing_events from a server the room's m.room.server_acl denies
 * are refused with 403; before the ban, get_missing_events with nothing to walk back from
 * answers an empty list.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { federationRequest, nodeRequest, registerOn, startFederatingNode, type FederatingNode } from '../../test/federation.js';

import { Event } from '../../internal/matrix/index.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

let a: FederatingNode;
let b: FederatingNode;
let alice: string;
let bob: string;
let roomId: string;

const client = nodeRequest;
const register = registerOn;

/** An invite of one of A's users by bob, built and signed by B (auth and prev events are A's latest). */
async function inviteFromB(invitee: string): Promise<{ eventId: string; body: Body }> {
  const rs = a.t.server.apis.roomserver;
  const latest = await rs.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.create', state_key: '' }, { type: 'm.room.power_levels', state_key: '' }, { type: 'm.room.member', state_key: `@bob:${b.name}` }] });
  const version = latest.room_version!;
  const event = b.t.server.identity.buildEvent(
    {
      type: 'm.room.member',
      state_key: invitee,
      sender: `@bob:${b.name}`,
      room_id: roomId,
      content: { membership: 'invite' },
      prev_events: latest.latest_event_ids,
      auth_events: latest.state_events.map((e) => Event.fromPDU(e.pdu, e.room_version).eventId),
      depth: latest.depth + 1,
    },
    version,
  );
  return { eventId: event.eventId, body: { event: event.json, room_version: version, invite_room_state: [] } };
}

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  bob = await register(b, 'bob');
  await register(a, 'carol');
  // Invites need power 50 here (public_chat): bob's invite is one the room's rules reject, yet signed before the ban (Sytest's control case).
  roomId = (await client(a, 'POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
  expect((await client(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
}, 90_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
});

it('answers get_missing_events with nothing to walk back from, then refuses it once the ACL bans the server', async () => {
  const missing = () => federationRequest(b, a, 'POST', `/_matrix/federation/v1/get_missing_events/${enc(roomId)}`, { body: {} });
  const before = await missing();
  expect(before.status).toBe(200);
  expect(before.body).toEqual({ events: [] });

  const invite = await inviteFromB('@carol:' + a.name);
  const allowed = await federationRequest(b, a, 'PUT', `/_matrix/federation/v2/invite/${enc(roomId)}/${enc(invite.eventId)}`, { body: invite.body });
  expect(allowed.status, JSON.stringify(allowed.body)).toBe(200);
  // Signed by us, but not an invite the room takes: carol is not invited.
  expect(((allowed.body.event as Record<string, unknown>).signatures as Record<string, unknown>)[a.name]).toBeDefined();
  expect((await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: '@carol:' + a.name })).membership).toBeUndefined();

  // Ban B (ACLs match names without their port).
  expect((await client(a, 'PUT', `/rooms/${enc(roomId)}/state/m.room.server_acl`, alice, { deny: ['127.0.0.1'], allow: ['*'], allow_ip_literals: true })).status).toBe(200);
  const after = await missing();
  expect(after.status).toBe(403);
  expect(after.body.errcode).toBe('M_FORBIDDEN');

  await register(a, 'dave');
  const second = await inviteFromB('@dave:' + a.name);
  const refused = await federationRequest(b, a, 'PUT', `/_matrix/federation/v2/invite/${enc(roomId)}/${enc(second.eventId)}`, { body: second.body });
  expect(refused.status).toBe(403);
  expect(refused.body).toMatchObject({ errcode: 'M_FORBIDDEN', error: expect.stringMatching(/ACL/) });
});
