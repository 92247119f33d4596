/** POST /rooms/{roomId}/upgrade over HTTP: the replacement room, the tombstone, and the refusals, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, clientRequester, registerUser, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`POST /rooms/{roomId}/upgrade [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    const reg = (u: string): Promise<string> => registerUser(req, u);
    let alice: string;
    let bob: string;
    let carol: string;
    const ALICE = '@alice:localhost:8008';
    const BOB = '@bob:localhost:8008';
    const CAROL = '@carol:localhost:8008';

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await reg('alice');
      bob = await reg('bob');
      carol = await reg('carol');
    }, 60_000);
    afterAll(() => t?.stop());

    const stateOf = async (roomId: string, type: string, stateKey = '') =>
      (await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type, state_key: stateKey }] })).state_events[0];
    const upgrade = (roomId: string, token: string, body: unknown) => req('POST', `/rooms/${encodeURIComponent(roomId)}/upgrade`, token, body);

    it('replaces a room: copied state, predecessor, tombstone, restricted power, moved aliases and listing', async () => {
      const created = await req('POST', '/createRoom', alice, {
        preset: 'public_chat',
        visibility: 'public',
        room_alias_name: 'upgrademe',
        name: 'Old name',
        topic: 'Old topic',
        room_version: '10',
        creation_content: { 'm.federate': false },
        initial_state: [
          { type: 'm.room.avatar', content: { url: 'mxc://localhost:8008/abc' } },
          { type: 'm.room.encryption', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
        ],
        power_level_content_override: { users: { [ALICE]: 100, [BOB]: 40 } },
      });
      expect(created.status).toBe(200);
      const room = created.body.room_id as string;
      const enc = encodeURIComponent(room);
      expect((await req('POST', `/rooms/${enc}/join`, bob, {})).status).toBe(200);
      expect((await req('POST', `/rooms/${enc}/join`, carol, {})).status).toBe(200);
      expect((await req('POST', `/rooms/${enc}/ban`, alice, { user_id: CAROL, reason: 'spam' })).status).toBe(200);
      expect((await req('PUT', `/directory/room/${encodeURIComponent('#second:localhost:8008')}`, alice, { room_id: room })).status).toBe(200);
      expect((await req('PUT', `/rooms/${enc}/state/m.room.canonical_alias`, alice, { alias: '#upgrademe:localhost:8008', alt_aliases: ['#second:localhost:8008'] })).status).toBe(200);

      const res = await upgrade(room, alice, { new_version: '11' });
      expect(res.status).toBe(200);
      const replacement = res.body.replacement_room as string;
      expect(replacement).toMatch(/^!.+:localhost:8008$/);
      expect(replacement).not.toBe(room);

      // The new room: version, predecessor (the tombstone), what carried over from the create event.
      const tombstone = await stateOf(room, 'm.room.tombstone');
      expect(tombstone?.pdu.content).toEqual({ body: 'This room has been replaced', replacement_room: replacement });
      expect(tombstone?.pdu.sender).toBe(ALICE);
      const create = await stateOf(replacement, 'm.room.create');
      expect(create?.room_version).toBe('11');
      const tombstoneId = (await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: room })).state_events.find((e) => e.pdu.type === 'm.room.tombstone');
      expect(create?.pdu.content).toMatchObject({ room_version: '11', 'm.federate': false, predecessor: { room_id: room } });
      const predecessor = (create?.pdu.content as { predecessor: { event_id: string } }).predecessor;
      expect(typeof predecessor.event_id).toBe('string');
      // The tombstone's ID is the predecessor's event_id.
      const { events } = await t.server.apis.roomserver.queryEventsById({ event_ids: [predecessor.event_id] });
      expect(events[0]?.pdu.type).toBe('m.room.tombstone');
      expect(tombstoneId?.pdu.content).toEqual(events[0]?.pdu.content);

      // Copied state.
      expect((await stateOf(replacement, 'm.room.name'))?.pdu.content).toEqual({ name: 'Old name' });
      expect((await stateOf(replacement, 'm.room.topic'))?.pdu.content).toEqual({ topic: 'Old topic' });
      expect((await stateOf(replacement, 'm.room.avatar'))?.pdu.content).toEqual({ url: 'mxc://localhost:8008/abc' });
      expect((await stateOf(replacement, 'm.room.encryption'))?.pdu.content).toEqual({ algorithm: 'm.megolm.v1.aes-sha2' });
      expect((await stateOf(replacement, 'm.room.join_rules'))?.pdu.content).toEqual({ join_rule: 'public' });
      expect((await stateOf(replacement, 'm.room.history_visibility'))?.pdu.content).toEqual({ history_visibility: 'shared' });
      expect((await stateOf(replacement, 'm.room.member', ALICE))?.pdu.content).toMatchObject({ membership: 'join' });
      expect((await stateOf(replacement, 'm.room.member', CAROL))?.pdu.content).toMatchObject({ membership: 'ban', reason: 'spam' });
      expect((await stateOf(replacement, 'm.room.member', BOB))).toBeUndefined();
      const newPl = (await stateOf(replacement, 'm.room.power_levels'))?.pdu.content as Record<string, unknown>;
      expect(newPl['users']).toEqual({ [ALICE]: 100, [BOB]: 40 });
      expect(newPl['events_default']).toBe(0);
      expect(newPl['invite']).toBe(50);

      // The old room: Bob (power 40) can no longer talk or invite there.
      const oldPl = (await stateOf(room, 'm.room.power_levels'))?.pdu.content as Record<string, unknown>;
      expect(oldPl['events_default']).toBe(50);
      expect(oldPl['invite']).toBe(50);
      expect((await req('PUT', `/rooms/${enc}/send/m.room.message/t1`, bob, { msgtype: 'm.text', body: 'hi' })).status).toBe(403);

      // Aliases and the canonical alias moved; the listing too.
      expect((await t.server.apis.roomserver.queryRoomIdForAlias({ alias: '#upgrademe:localhost:8008' })).room_id).toBe(replacement);
      expect((await t.server.apis.roomserver.queryRoomIdForAlias({ alias: '#second:localhost:8008' })).room_id).toBe(replacement);
      expect((await t.server.apis.roomserver.queryAliasesForRoom({ room_id: room })).aliases).toEqual([]);
      expect((await stateOf(replacement, 'm.room.canonical_alias'))?.pdu.content).toEqual({ alias: '#upgrademe:localhost:8008', alt_aliases: ['#second:localhost:8008'] });
      expect((await stateOf(room, 'm.room.canonical_alias'))?.pdu.content).toEqual({});
      const published = (await t.server.apis.roomserver.queryPublishedRooms({})).room_ids;
      expect(published).toContain(replacement);
      expect(published).not.toContain(room);

      // Bob can follow into the new room.
      expect((await req('POST', `/join/${encodeURIComponent(replacement)}`, bob, {})).status).toBe(200);
    });

    it("carries the members' tags and direct-chat entries over to the new room", async () => {
      const roomId = (await req('POST', '/createRoom', alice, { preset: 'private_chat', invite: [BOB] })).body.room_id as string;
      const enc = encodeURIComponent;
      expect((await req('POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
      expect((await req('PUT', `/user/${enc(ALICE)}/account_data/m.direct`, alice, { [BOB]: [roomId], [CAROL]: ['!other:localhost:8008'] })).status).toBe(200);
      expect((await req('PUT', `/user/${enc(BOB)}/rooms/${enc(roomId)}/tags/u.work`, bob, { order: 0.5 })).status).toBe(200);
      const r = await upgrade(roomId, alice, { new_version: '10' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const replacement = r.body.replacement_room as string;
      expect((await req('GET', `/user/${enc(ALICE)}/account_data/m.direct`, alice)).body).toEqual({ [BOB]: [roomId, replacement], [CAROL]: ['!other:localhost:8008'] });
      expect((await req('GET', `/user/${enc(BOB)}/rooms/${enc(replacement)}/tags`, bob)).body).toEqual({ tags: { 'u.work': { order: 0.5 } } });
      // The old room keeps its tags too.
      expect((await req('GET', `/user/${enc(BOB)}/rooms/${enc(roomId)}/tags`, bob)).body).toEqual({ tags: { 'u.work': { order: 0.5 } } });
    });

    it('gives a user who joins the new room later their tags of the old one', async () => {
      const enc = encodeURIComponent;
      const roomId = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      expect((await req('POST', `/join/${enc(roomId)}`, carol, {})).status).toBe(200);
      expect((await req('PUT', `/user/${enc(CAROL)}/rooms/${enc(roomId)}/tags/u.later`, carol, {})).status).toBe(200);
      expect((await req('POST', `/rooms/${enc(roomId)}/leave`, carol, {})).status).toBe(200);
      const replacement = (await upgrade(roomId, alice, { new_version: '10' })).body.replacement_room as string;
      // Not a member at the upgrade: nothing copied yet.
      expect((await req('GET', `/user/${enc(CAROL)}/rooms/${enc(replacement)}/tags`, carol)).body).toEqual({ tags: {} });
      expect((await req('POST', `/join/${enc(replacement)}`, carol, {})).status).toBe(200);
      expect((await req('GET', `/user/${enc(CAROL)}/rooms/${enc(replacement)}/tags`, carol)).body).toEqual({ tags: { 'u.later': {} } });
    });

    it('gives the upgrading user the power to set the state, then restores the old power levels', async () => {
      // Bob may send tombstones at 50 but cannot set the server ACL (100): the copy still works.
      const room = (await req('POST', '/createRoom', alice, {
        preset: 'public_chat',
        power_level_content_override: { users: { [ALICE]: 100, [BOB]: 50 }, events: { 'm.room.tombstone': 50, 'm.room.server_acl': 100, 'm.room.power_levels': 100 } },
        initial_state: [{ type: 'm.room.server_acl', content: { allow: ['*'], deny: ['evil.example'], allow_ip_literals: false } }],
      })).body.room_id as string;
      await req('POST', `/rooms/${encodeURIComponent(room)}/join`, bob, {});
      const res = await upgrade(room, bob, { new_version: '10' });
      expect(res.status).toBe(200);
      const replacement = res.body.replacement_room as string;
      expect((await stateOf(replacement, 'm.room.server_acl'))?.pdu.content).toEqual({ allow: ['*'], deny: ['evil.example'], allow_ip_literals: false });
      const pl = (await stateOf(replacement, 'm.room.power_levels'))?.pdu.content as Record<string, unknown>;
      expect(pl['users']).toEqual({ [ALICE]: 100, [BOB]: 50 });
      expect((await stateOf(replacement, 'm.room.guest_access'))?.pdu.content).toEqual({ guest_access: 'forbidden' });
      expect((await stateOf(room, 'm.room.tombstone'))?.pdu.content).toMatchObject({ replacement_room: replacement });
    });

    it('upgrades to room version 12, where the creator is not listed in the power levels', async () => {
      const room = (await req('POST', '/createRoom', alice, { name: 'v12 bound', power_level_content_override: { users: { [ALICE]: 100, [BOB]: 50 } } })).body.room_id as string;
      const res = await upgrade(room, alice, { new_version: '12', additional_creators: [BOB] });
      expect(res.status).toBe(200);
      const replacement = res.body.replacement_room as string;
      const create = await stateOf(replacement, 'm.room.create');
      expect(create?.room_version).toBe('12');
      expect(create?.pdu.content).toMatchObject({ room_version: '12', predecessor: { room_id: room }, additional_creators: [BOB] });
      const pl = (await stateOf(replacement, 'm.room.power_levels'))?.pdu.content as Record<string, unknown>;
      expect(pl['users']).toEqual({});
      expect((await stateOf(replacement, 'm.room.name'))?.pdu.content).toEqual({ name: 'v12 bound' });
      expect((await stateOf(room, 'm.room.tombstone'))?.pdu.content).toMatchObject({ replacement_room: replacement });
    });

    it('refuses bad versions, missing parameters, non-members, the powerless and unknown rooms', async () => {
      const room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      const bad = await upgrade(room, alice, { new_version: '999' });
      expect(bad.status).toBe(400);
      expect(bad.body.errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
      expect((await upgrade(room, alice, {})).body.errcode).toBe('M_MISSING_PARAM');
      expect((await upgrade(room, alice, { new_version: 11 })).body.errcode).toBe('M_BAD_JSON');
      expect((await upgrade(room, alice, { new_version: '11', additional_creators: ['nope'] })).body.errcode).toBe('M_INVALID_PARAM');

      const outsider = await upgrade(room, bob, { new_version: '11' });
      expect(outsider.status).toBe(403);
      expect(outsider.body.errcode).toBe('M_FORBIDDEN');

      await req('POST', `/rooms/${encodeURIComponent(room)}/join`, bob, {});
      const powerless = await upgrade(room, bob, { new_version: '11' });
      expect(powerless.status).toBe(403);
      expect(powerless.body.errcode).toBe('M_FORBIDDEN');
      expect(await stateOf(room, 'm.room.tombstone')).toBeUndefined();

      const unknown = await upgrade('!nowhere:localhost:8008', alice, { new_version: '11' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.errcode).toBe('M_NOT_FOUND');
      expect((await upgrade(room, '', { new_version: '11' })).status).toBe(401);
    });
  });
}
