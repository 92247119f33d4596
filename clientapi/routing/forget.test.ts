/** Forgetting rooms over HTTP: only once out of the room, and until the next membership, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, clientRequester, registerUser, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`POST /rooms/{roomId}/forget [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    const reg = (u: string): Promise<string> => registerUser(req, u);
    let alice: string;
    let bob: string;
    const BOB = '@bob:localhost:8008';
    const enc = encodeURIComponent;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await reg('alice');
      bob = await reg('bob');
    }, 60_000);
    afterAll(() => t?.stop());

    const member = async (roomId: string, user: string) => t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: user });
    const forget = (roomId: string, token: string, body: unknown = {}) => req('POST', `/rooms/${enc(roomId)}/forget`, token, body);

    it("can't forget a room you are still in (joined, invited or knocking)", async () => {
      const r = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      const joined = await forget(r, alice);
      expect(joined).toMatchObject({ status: 400, body: { errcode: 'M_UNKNOWN' } });
      await req('POST', `/rooms/${enc(r)}/invite`, alice, { user_id: BOB });
      expect((await forget(r, bob)).status).toBe(400);

      const k = (await req('POST', '/createRoom', alice, { room_version: '10', initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] })).body.room_id as string;
      expect((await req('POST', `/knock/${enc(k)}`, bob, {})).status).toBe(200);
      expect((await forget(k, bob)).status).toBe(400);
      expect((await member(k, BOB)).forgotten).toBeUndefined();
    });

    it('forgets a room left, kicked from or banned from, until the next membership', async () => {
      const r = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      expect((await req('POST', `/join/${enc(r)}`, bob, {})).status).toBe(200);
      expect((await req('POST', `/rooms/${enc(r)}/leave`, bob, {})).status).toBe(200);
      expect(await forget(r, bob)).toMatchObject({ status: 200, body: {} });
      expect(await member(r, BOB)).toMatchObject({ membership: 'leave', forgotten: true });
      // Forgetting twice is harmless; so is a request without a body.
      expect((await getJson(`${t.baseUrl}/_matrix/client/v3/rooms/${enc(r)}/forget`, { method: 'POST', headers: { Authorization: `Bearer ${bob}` } })).status).toBe(200);

      // A re-join clears the flag.
      expect((await req('POST', `/join/${enc(r)}`, bob, {})).status).toBe(200);
      expect((await member(r, BOB)).forgotten).toBeUndefined();

      // Kicked, then forgotten.
      expect((await req('POST', `/rooms/${enc(r)}/kick`, alice, { user_id: BOB })).status).toBe(200);
      expect((await forget(r, bob)).status).toBe(200);
      expect((await member(r, BOB)).forgotten).toBe(true);
      // Banned: a new membership event ends the forget; forgetting again is allowed.
      expect((await req('POST', `/rooms/${enc(r)}/ban`, alice, { user_id: BOB })).status).toBe(200);
      expect(await member(r, BOB)).toMatchObject({ membership: 'ban' });
      expect((await member(r, BOB)).forgotten).toBeUndefined();
      expect((await forget(r, bob)).status).toBe(200);
      expect((await member(r, BOB)).forgotten).toBe(true);
    });

    it('answers unknown rooms, rooms never joined and bad requests', async () => {
      expect((await forget('!unknown:elsewhere.example', bob)).body.errcode).toBe('M_NOT_FOUND');
      expect((await forget('nonsense', bob)).body.errcode).toBe('M_INVALID_PARAM');
      const r = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      expect((await forget(r, bob)).status).toBe(200);
      expect((await member(r, BOB)).membership).toBeUndefined();
      expect((await forget(r, '')).status).toBe(401);
    });

    it('keeps a forgotten room out of /sync, even with include_leave', async () => {
      const r = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${enc(r)}/join`, bob, {});
      await req('POST', `/rooms/${enc(r)}/leave`, bob, {});
      const filter = enc(JSON.stringify({ room: { include_leave: true } }));
      const leaveSection = async () => ((await req('GET', `/sync?filter=${filter}`, bob)).body.rooms as { leave: Record<string, unknown> }).leave;
      const end = Date.now() + 5000;
      while (!(r in (await leaveSection())) && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
      expect(r in (await leaveSection())).toBe(true);
      expect((await forget(r, bob)).status).toBe(200);
      expect(r in (await leaveSection())).toBe(false);
    });
  });
}
