/** Knocking on local rooms over HTTP: who may knock, and how a knock is accepted or denied, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, clientRequester, registerUser, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';
import { knockRefusal } from './knock.js';

for (const dialect of TEST_DIALECTS) {
  describe(`POST /knock [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    const reg = (u: string): Promise<string> => registerUser(req, u);
    let alice: string;
    let bob: string;
    const BOB = '@bob:localhost:8008';

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await reg('alice');
      bob = await reg('bob');
      await req('PUT', `/profile/${encodeURIComponent(BOB)}/displayname`, bob, { displayname: 'Bobby' });
    }, 60_000);
    afterAll(() => t?.stop());

    const member = async (roomId: string, user: string) => t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: user });
    const room = async (joinRule: string, roomVersion = '10', extra: Record<string, unknown> = {}): Promise<string> => {
      const res = await req('POST', '/createRoom', alice, {
        room_version: roomVersion,
        initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: joinRule, ...(joinRule === 'knock_restricted' ? { allow: [] } : {}) } }],
        ...extra,
      });
      expect(res.status).toBe(200);
      return res.body.room_id as string;
    };
    const enc = encodeURIComponent;

    it('knocks on a knock room by ID and by alias, with a reason and the profile, and is accepted by an invite', async () => {
      const r = await room('knock', '10', { room_alias_name: 'knocky' });
      const res = await req('POST', `/knock/${enc(r)}?server_name=elsewhere.example&via=elsewhere.example`, bob, { reason: 'let me in' });
      expect(res).toMatchObject({ status: 200, body: { room_id: r } });
      const m = await member(r, BOB);
      expect(m.membership).toBe('knock');
      const [knock] = (await t.server.apis.roomserver.queryEventsById({ event_ids: [m.event_id!] })).events;
      expect(knock?.pdu.content).toEqual({ membership: 'knock', reason: 'let me in', displayname: 'Bobby' });
      // Knocking again is allowed (the auth rules only refuse ban, invite and join).
      expect((await req('POST', '/knock/%23knocky:localhost:8008', bob, {})).body).toEqual({ room_id: r });
      // Bob may not join while only knocking.
      expect((await req('POST', `/join/${enc(r)}`, bob, {})).status).toBe(403);
      // Alice accepts the knock by inviting Bob; he joins.
      expect((await req('POST', `/rooms/${enc(r)}/invite`, alice, { user_id: BOB })).status).toBe(200);
      expect((await member(r, BOB)).membership).toBe('invite');
      const invited = await req('POST', `/knock/${enc(r)}`, bob, {});
      expect(invited).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
      expect((await req('POST', `/join/${enc(r)}`, bob, {})).status).toBe(200);
      const joined = await req('POST', `/knock/${enc(r)}`, bob, {});
      expect(joined).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    });

    it('denies a knock by a kick, and refuses knocks from banned users', async () => {
      const r = await room('knock', '10', { power_level_content_override: { invite: 50 } });
      expect((await req('POST', `/knock/${enc(r)}`, bob)).status).toBe(200);
      expect((await req('POST', `/rooms/${enc(r)}/kick`, alice, { user_id: BOB, reason: 'no' })).status).toBe(200);
      expect((await member(r, BOB)).membership).toBe('leave');
      // A denied knocker may knock again.
      expect((await req('POST', `/knock/${enc(r)}`, bob, {})).status).toBe(200);
      // Carol, joined with power 0 (below the invite and kick levels), can neither accept nor deny Bob's knock.
      const carol = await reg('carol');
      await req('POST', `/rooms/${enc(r)}/invite`, alice, { user_id: '@carol:localhost:8008' });
      expect((await req('POST', `/join/${enc(r)}`, carol, {})).status).toBe(200);
      expect((await req('POST', `/rooms/${enc(r)}/invite`, carol, { user_id: BOB })).status).toBe(403);
      expect((await req('POST', `/rooms/${enc(r)}/kick`, carol, { user_id: BOB })).status).toBe(403);
      expect((await member(r, BOB)).membership).toBe('knock');
      expect((await req('POST', `/rooms/${enc(r)}/ban`, alice, { user_id: BOB })).status).toBe(200);
      const banned = await req('POST', `/knock/${enc(r)}`, bob, {});
      expect(banned).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
      expect((await member(r, BOB)).membership).toBe('ban');
    });

    it('knocks on knock_restricted rooms from room version 10 on', async () => {
      expect((await req('POST', `/knock/${enc(await room('knock_restricted', '10'))}`, bob, {})).status).toBe(200);
      const v9 = await req('POST', `/knock/${enc(await room('knock_restricted', '9'))}`, bob, {});
      expect(v9).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    });

    it('refuses rooms that are not knockable, and bad requests', async () => {
      for (const r of [await room('invite'), await room('public'), await room('knock', '6')]) {
        const res = await req('POST', `/knock/${enc(r)}`, bob, {});
        expect(res).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
        expect((await member(r, BOB)).membership).toBeUndefined();
      }
      expect((await req('POST', '/knock/!unknown:elsewhere.example', bob, {})).body.errcode).toBe('M_NOT_FOUND');
      expect((await req('POST', '/knock/%23nowhere:localhost:8008', bob, {})).body.errcode).toBe('M_NOT_FOUND');
      expect((await req('POST', '/knock/nonsense', bob, {})).body.errcode).toBe('M_INVALID_PARAM');
      const r = await room('knock');
      expect((await req('POST', `/knock/${enc(r)}`, bob, { reason: 5 })).body.errcode).toBe('M_BAD_JSON');
      expect((await req('POST', `/knock/${enc(r)}`, '', {})).status).toBe(401);
    });

    it('has the auth rules refuse the same knocks without the route checks', async () => {
      const send = (roomId: string, user: string) =>
        t.server.apis.roomserver.performSendEvent({ user_id: user, room_id: roomId, type: 'm.room.member', state_key: user, content: { membership: 'knock' } });
      expect((await send(await room('knock', '6'), BOB)).error).toBe('forbidden');
      expect((await send(await room('invite'), BOB)).error).toBe('forbidden');
      const r = await room('knock');
      expect((await send(r, '@alice:localhost:8008')).error).toBe('forbidden'); // joined
      await req('POST', `/rooms/${enc(r)}/ban`, alice, { user_id: BOB });
      expect((await send(r, BOB)).error).toBe('forbidden');
    });
  });
}

it('tells why a knock is refused before the auth rules do', () => {
  expect(knockRefusal('6', 'knock', undefined)).toMatch(/does not support knocking/);
  expect(knockRefusal('7', 'knock', 'leave')).toBeUndefined();
  expect(knockRefusal('7', 'knock', 'knock')).toBeUndefined();
  expect(knockRefusal('9', 'knock_restricted', undefined)).toMatch(/not allowed/);
  expect(knockRefusal('10', 'knock_restricted', undefined)).toBeUndefined();
  expect(knockRefusal('10', undefined, undefined)).toMatch(/join rule invite/);
  expect(knockRefusal('10', 'knock', 'ban')).toMatch(/banned/);
  expect(knockRefusal('10', 'knock', 'join')).toMatch(/already in/);
  expect(knockRefusal('10', 'knock', 'invite')).toMatch(/already invited/);
});
