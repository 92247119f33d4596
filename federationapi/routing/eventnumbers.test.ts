/**
 * Numbers in federated events per room version (rooms/v6 "Canonical JSON"), with a fake remote
 * server that signs events and requests the way Sytest does (numbers as written, whatever the
 * room version) against one of our servers:
 * - inbound: a float in a v6 event of send_join, v2 invite, send_leave (an invite rejection) or
 *   a /send transaction is 400 M_BAD_JSON (the transaction as a whole, as Dendrite answers),
 *   not 401 (the request signature covers the float and verifies) and not stored;
 * - outbound: an invite the invitee's server hands back with a float makes the client's invite
 *   fail with 400 M_BAD_JSON;
 * - room version 5 events with floats go in as before.
 * Sytest: 'Inbound: send_join rejects invalid JSON for room version 6', 'Inbound federation
 * rejects invites which include invalid JSON for room version 6', 'Outbound federation rejects
 * invite response which include invalid JSON for room version 6', 'Inbound federation rejects
 * invite rejections which include invalid JSON for room version 6', 'Server rejects invalid
 * JSON in a version 6 room'.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeRemote, type RemoteAnswer, type RemoteRequest } from '../../bench/federation/remote.js';
import { computeEventId, roomVersion, signEvent, type JsonObject } from '../../internal/matrix/index.js';
import { startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { clientRequester, registerUser } from '../../test/harness.js';

const enc = encodeURIComponent;
const v5 = roomVersion('5')!;

let ours: FederatingNode;
let remote: FakeRemote;
/** alice's access token, and her user ID. */
let alice: string;
let aliceId: string;
let bob: string;
/** How the remote answers a v2 invite of ours; by default it signs it and hands it back. */
let onInvite: (event: JsonObject, version: string) => JsonObject = (event, version) => signEvent(event, roomVersion(version)!, remote.serverName, remote.key.keyId, remote.key);

const req = clientRequester(() => ours.t);
const dest = () => ({ name: ours.name, port: Number(ours.name.split(':')[1]) });
const fed = (method: string, path: string, body?: JsonObject) => remote.request(dest(), method, `/_matrix/federation${path}`, body) as Promise<{ status: number; body: Record<string, unknown> }>;
const rs = () => ours.t.server.apis.roomserver;

/**
 * The remote's event with `fields`, hashed and signed under room version 5's relaxed number rules:
 * for the event types used here the bytes are those of any version from 4 to 10, so this is a
 * properly signed v6 event whose only fault is its numbers.
 */
function relaxedEvent(fields: JsonObject): { json: JsonObject; eventId: string } {
  const pdu: JsonObject = { origin: remote.serverName, origin_server_ts: Date.now(), hashes: {}, signatures: {}, ...fields };
  const json = signEvent(pdu, v5, remote.serverName, remote.key.keyId, remote.key);
  return { json, eventId: computeEventId(json, v5) };
}

beforeAll(async () => {
  ours = await startFederatingNode();
  remote = await FakeRemote.start((r: RemoteRequest): RemoteAnswer | undefined => {
    if (r.method === 'PUT' && r.path.startsWith('/_matrix/federation/v2/invite/')) {
      const body = r.body as { event: JsonObject; room_version: string };
      return { status: 200, body: { event: onInvite(body.event, body.room_version) } };
    }
    if (r.method === 'PUT' && r.path.startsWith('/_matrix/federation/v1/send/')) return { status: 200, body: { pdus: {} } };
    return undefined;
  });
  alice = await registerUser(req, 'alice');
  aliceId = `@alice:${ours.name}`;
  bob = `@bob:${remote.serverName}`;
}, 60_000);
afterAll(async () => {
  await remote?.close();
  await ours?.t.stop();
});

const createRoom = async (room_version: string): Promise<string> => {
  const r = await req('POST', '/createRoom', alice, { preset: 'public_chat', room_version });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.room_id as string;
};

/** bob's membership template for `roomId` (make_join or make_leave). */
const template = async (kind: 'join' | 'leave', roomId: string, version: string): Promise<JsonObject> => {
  const made = await fed('GET', `/v1/make_${kind}/${enc(roomId)}/${enc(bob)}${kind === 'join' ? `?ver=${version}` : ''}`);
  expect(made.status, JSON.stringify(made.body)).toBe(200);
  return made.body.event as JsonObject;
};
const memberFields = (t: JsonObject, content: JsonObject): JsonObject => ({
  type: 'm.room.member',
  state_key: bob,
  sender: bob,
  room_id: t['room_id']!,
  content,
  prev_events: t['prev_events']!,
  auth_events: t['auth_events']!,
  depth: t['depth']!,
});
/** The auth events of bob's messages: the room's create and power levels events, and his join. */
const messageAuth = async (roomId: string, joinId: string): Promise<string[]> => {
  const { state_events } = await rs().queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.create', state_key: '' }, { type: 'm.room.power_levels', state_key: '' }] });
  return [...state_events.map((h) => computeEventId(h.pdu as unknown as JsonObject, roomVersion(h.room_version)!)), joinId];
};
const stored = async (eventId: string) => (await rs().queryEventsById({ event_ids: [eventId] })).events[0];
const expectBadJson = (r: { status: number; body: Record<string, unknown> }) => {
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body.errcode).toBe('M_BAD_JSON');
};

describe('a room of version 6 (and 10)', () => {
  for (const version of ['6', '10']) {
    it(`v${version}: send_join with a float in the join is 400 M_BAD_JSON, then a clean join goes in`, async () => {
      const roomId = await createRoom(version);
      const t = await template('join', roomId, version);
      const bad = relaxedEvent(memberFields(t, { membership: 'join', bad_val: 1.1 }));
      expectBadJson(await fed('PUT', `/v2/send_join/${enc(roomId)}/${enc(bad.eventId)}`, bad.json));
      // An integer out of range is as bad as a float; and v1 of the endpoint says the same.
      const big = relaxedEvent(memberFields(t, { membership: 'join', bad_val: 2 ** 53 }));
      expectBadJson(await fed('PUT', `/v1/send_join/${enc(roomId)}/${enc(big.eventId)}`, big.json));
      expect(await stored(bad.eventId)).toBeUndefined();
      expect(await stored(big.eventId)).toBeUndefined();
      const good = relaxedEvent(memberFields(t, { membership: 'join' }));
      const r = await fed('PUT', `/v2/send_join/${enc(roomId)}/${enc(good.eventId)}`, good.json);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    });
  }

  it('/send with a PDU holding a float fails the whole transaction with 400 M_BAD_JSON; without it, it goes in', async () => {
    const roomId = await createRoom('6');
    const t = await template('join', roomId, '6');
    const join = relaxedEvent(memberFields(t, { membership: 'join' }));
    expect((await fed('PUT', `/v2/send_join/${enc(roomId)}/${enc(join.eventId)}`, join.json)).status).toBe(200);
    const auth = await messageAuth(roomId, join.eventId);
    const message = (body: string, prev: string, extra: JsonObject = {}) =>
      relaxedEvent({ type: 'm.room.message', sender: bob, room_id: roomId, content: { msgtype: 'm.text', body, ...extra }, prev_events: [prev], auth_events: auth, depth: (t['depth'] as number) + 1 });
    const good = message('good', join.eventId);
    const bad = message('bad', join.eventId, { bad_val: 1.1 });
    expectBadJson(await fed('PUT', '/v1/send/numbers1', { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [good.json, bad.json] }));
    // Nothing of the transaction went in, the good PDU neither.
    expect(await stored(good.eventId)).toBeUndefined();
    expect(await stored(bad.eventId)).toBeUndefined();
    const ok = await fed('PUT', '/v1/send/numbers2', { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [good.json] });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.pdus).toEqual({ [good.eventId]: {} });
    expect(await stored(good.eventId)).toMatchObject({ rejected: false });
  });

  it('an inbound v2 invite with a float is 400 M_BAD_JSON and leaves no invite; the same invite without it is taken', async () => {
    const roomId = `!remote6:${remote.serverName}`;
    const inviteWith = (content: JsonObject) =>
      relaxedEvent({ type: 'm.room.member', state_key: aliceId, sender: bob, room_id: roomId, content, prev_events: [`$${'a'.repeat(43)}`], auth_events: [`$${'b'.repeat(43)}`], depth: 3 });
    const bad = inviteWith({ membership: 'invite', bad_val: 1.1 });
    expectBadJson(await fed('PUT', `/v2/invite/${enc(roomId)}/${enc(bad.eventId)}`, { room_version: '6', event: bad.json, invite_room_state: [] }));
    expect((await rs().queryMembershipForUser({ room_id: roomId, user_id: aliceId })).membership).not.toBe('invite');
    const good = inviteWith({ membership: 'invite' });
    const r = await fed('PUT', `/v2/invite/${enc(roomId)}/${enc(good.eventId)}`, { room_version: '6', event: good.json, invite_room_state: [] });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((await rs().queryMembershipForUser({ room_id: roomId, user_id: aliceId })).membership).toBe('invite');
  });

  it('an invite rejection (send_leave) with a float is 400 M_BAD_JSON, before the event ID is looked at', async () => {
    const roomId = await createRoom('6');
    const inv = await req('POST', `/rooms/${enc(roomId)}/invite`, alice, { user_id: bob });
    expect(inv.status, JSON.stringify(inv.body)).toBe(200);
    const t = await template('leave', roomId, '6');
    // Sytest's event: the float sits in a top-level "contents" (sic), and the path's event ID is junk.
    const leave = relaxedEvent({ ...memberFields(t, { membership: 'leave' }), contents: { bad_val: 1.1 } });
    expectBadJson(await fed('PUT', `/v2/send_leave/${enc(roomId)}/xxx`, leave.json));
    expectBadJson(await fed('PUT', `/v1/send_leave/${enc(roomId)}/${enc(leave.eventId)}`, leave.json));
    expect((await rs().queryMembershipForUser({ room_id: roomId, user_id: bob })).membership).toBe('invite');
    // The same rejection without the float goes in.
    const clean = relaxedEvent(memberFields(t, { membership: 'leave' }));
    const r = await fed('PUT', `/v2/send_leave/${enc(roomId)}/${enc(clean.eventId)}`, clean.json);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((await rs().queryMembershipForUser({ room_id: roomId, user_id: bob })).membership).toBe('leave');
  });

  it("an invite the invitee's server hands back with a float fails the client's invite with 400 M_BAD_JSON", async () => {
    const roomId = await createRoom('6');
    const carol = `@carol:${remote.serverName}`;
    onInvite = (event) => {
      // What Sytest does: add a float at the top level, and sign it (under relaxed rules).
      const changed: JsonObject = { ...event, bad_val: 1.1 };
      return signEvent(changed, v5, remote.serverName, remote.key.keyId, remote.key);
    };
    try {
      const r = await req('POST', `/rooms/${enc(roomId)}/invite`, alice, { user_id: carol });
      expectBadJson(r);
      expect((await rs().queryMembershipForUser({ room_id: roomId, user_id: carol })).membership).not.toBe('invite');
    } finally {
      onInvite = (event, version) => signEvent(event, roomVersion(version)!, remote.serverName, remote.key.keyId, remote.key);
    }
    // The same invite, handed back clean, goes through.
    const ok = await req('POST', `/rooms/${enc(roomId)}/invite`, alice, { user_id: carol });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
  });
});

describe('a room of version 5', () => {
  it('takes floats and big integers in joins, messages and invites from the remote', async () => {
    const roomId = await createRoom('5');
    const t = await template('join', roomId, '5');
    const join = relaxedEvent(memberFields(t, { membership: 'join', f: 1.1, n: 2 ** 60 }));
    const joined = await fed('PUT', `/v2/send_join/${enc(roomId)}/${enc(join.eventId)}`, join.json);
    expect(joined.status, JSON.stringify(joined.body)).toBe(200);
    expect(await stored(join.eventId)).toMatchObject({ rejected: false });
    const auth = await messageAuth(roomId, join.eventId);
    const msg = relaxedEvent({ type: 'm.room.message', sender: bob, room_id: roomId, content: { msgtype: 'm.text', body: 'f', f: 0.00001 }, prev_events: [join.eventId], auth_events: auth, depth: (t['depth'] as number) + 1 });
    const sent = await fed('PUT', '/v1/send/numbers5', { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [msg.json] });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body.pdus).toEqual({ [msg.eventId]: {} });
    const s = await stored(msg.eventId);
    expect(s).toMatchObject({ rejected: false });
    // Hash and signatures held: the content is whole, not redacted.
    expect((s!.pdu.content as JsonObject)['f']).toBe(0.00001);

    const inviteRoom = `!remote5:${remote.serverName}`;
    const invite = relaxedEvent({ type: 'm.room.member', state_key: aliceId, sender: bob, room_id: inviteRoom, content: { membership: 'invite', f: 1.5 }, prev_events: [`$${'c'.repeat(43)}`], auth_events: [`$${'d'.repeat(43)}`], depth: 3 });
    const r = await fed('PUT', `/v2/invite/${enc(inviteRoom)}/${enc(invite.eventId)}`, { room_version: '5', event: invite.json, invite_room_state: [] });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });
});
