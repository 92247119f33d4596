/** Joining, inviting, kicking, banning and unbanning over HTTP, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, clientRequester, registerUser, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`joining, inviting, kicking, banning [${dialect}]`, () => {
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
    }, 60_000);
    afterAll(() => t?.stop());

    const membership = async (roomId: string, user: string) => (await t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: user })).membership;

    it('joins public rooms by ID and by alias, and refuses invite-only ones without an invite', async () => {
      const pub = (await req('POST', '/createRoom', alice, { preset: 'public_chat', room_alias_name: 'open' })).body.room_id as string;
      expect((await req('POST', '/join/%23open:localhost:8008', bob, {})).body).toEqual({ room_id: pub });
      expect(await membership(pub, BOB)).toBe('join');
      expect((await req('POST', `/rooms/${encodeURIComponent(pub)}/join`, bob, {})).status).toBe(200);

      const priv = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      const refused = await req('POST', `/join/${encodeURIComponent(priv)}`, bob, {});
      expect(refused.status).toBe(403);
      expect(refused.body.errcode).toBe('M_FORBIDDEN');
      expect((await req('POST', '/join/%23nowhere:localhost:8008', bob, {})).body.errcode).toBe('M_NOT_FOUND');
      // A room of another server is joined over federation; one that cannot be reached is a 502.
      const unreachable = await req('POST', '/join/!unknown:elsewhere.example', bob, {});
      expect(unreachable.status).toBe(502);
      expect(unreachable.body.errcode).toBe('M_UNKNOWN');
      expect((await req('POST', '/join/nonsense', bob, {})).body.errcode).toBe('M_INVALID_PARAM');
    });

    it('invites, kicks, bans and unbans', async () => {
      const room = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      const enc = encodeURIComponent(room);
      expect((await req('POST', `/rooms/${enc}/invite`, alice, { user_id: BOB })).status).toBe(200);
      expect(await membership(room, BOB)).toBe('invite');
      expect((await req('POST', `/join/${enc}`, bob, {})).status).toBe(200);
      expect((await req('POST', `/rooms/${enc}/kick`, alice, { user_id: BOB, reason: 'bye' })).status).toBe(200);
      expect(await membership(room, BOB)).toBe('leave');
      // A kicked user still reads the state as it was when they left; a banned one reads nothing.
      expect((await req('GET', `/rooms/${enc}/state/m.room.member/${encodeURIComponent(BOB)}`, bob)).body.membership).toBe('leave');
      expect((await req('POST', `/rooms/${enc}/kick`, alice, { user_id: BOB })).body.errcode).toBe('M_FORBIDDEN');
      expect((await req('POST', `/rooms/${enc}/ban`, alice, { user_id: BOB })).status).toBe(200);
      expect(await membership(room, BOB)).toBe('ban');
      expect((await req('POST', `/join/${enc}`, bob, {})).status).toBe(403);
      expect((await req('GET', `/rooms/${enc}/state/m.room.member/${encodeURIComponent(BOB)}`, bob)).status).toBe(403);
      expect((await req('GET', `/rooms/${enc}/state`, bob)).status).toBe(403);
      expect((await req('POST', `/rooms/${enc}/unban`, alice, { user_id: BOB })).status).toBe(200);
      expect(await membership(room, BOB)).toBe('leave');
      expect((await req('POST', `/rooms/${enc}/unban`, alice, { user_id: BOB })).body.errcode).toBe('M_FORBIDDEN');
      // Bob (power 0) cannot ban Alice.
      await req('POST', `/rooms/${enc}/invite`, alice, { user_id: BOB });
      await req('POST', `/join/${enc}`, bob, {});
      expect((await req('POST', `/rooms/${enc}/ban`, bob, { user_id: '@alice:localhost:8008' })).status).toBe(403);
      expect((await req('POST', `/rooms/${enc}/invite`, alice, {})).body.errcode).toBe('M_MISSING_PARAM');
      expect((await req('POST', `/rooms/${enc}/invite`, alice, { user_id: 'bob' })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('POST', `/rooms/${enc}/kick`, alice, { user_id: BOB, reason: 5 })).body.errcode).toBe('M_BAD_JSON');
    });

    it('puts extra fields of a join body into the member event, but not a membership the client chose', async () => {
      const pub = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      expect((await req('POST', `/join/${encodeURIComponent(pub)}`, bob, { foo: 'bar', membership: 'leave', reason: 'hi' })).status).toBe(200);
      const ev = (await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: pub, state_to_fetch: [{ type: 'm.room.member', state_key: BOB }] })).state_events[0]!;
      expect(ev.pdu.content).toMatchObject({ foo: 'bar', membership: 'join', reason: 'hi' });
    });

    it('makes no new event for a state change to what is already there (joining twice, setting the same state)', async () => {
      const pub = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      const enc = encodeURIComponent(pub);
      await req('POST', `/rooms/${enc}/join`, bob, {});
      const latest = async () => (await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: pub })).latest_event_ids;
      const before = await latest();
      expect((await req('POST', `/rooms/${enc}/join`, bob, {})).status).toBe(200);
      expect(await latest()).toEqual(before);
      const first = (await req('PUT', `/rooms/${enc}/state/m.room.topic`, alice, { topic: 'same' })).body.event_id as string;
      const second = (await req('PUT', `/rooms/${enc}/state/m.room.topic`, alice, { topic: 'same' })).body.event_id as string;
      expect(second).toBe(first);
      const third = (await req('PUT', `/rooms/${enc}/state/m.room.topic`, alice, { topic: 'changed' })).body.event_id as string;
      expect(third).not.toBe(first);
    });

    it('accepts a canonical alias only when its aliases point at the room', async () => {
      const r = (await req('POST', '/createRoom', alice, { preset: 'public_chat', room_alias_name: 'canon' })).body.room_id as string;
      const put = (content: unknown) => req('PUT', `/rooms/${encodeURIComponent(r)}/state/m.room.canonical_alias`, alice, content);
      expect((await put({ alias: '#canon:localhost:8008', alt_aliases: ['#canon:localhost:8008'] })).status).toBe(200);
      expect((await put({ alias: '#NOT-canon:localhost:8008' })).body.errcode).toBe('M_BAD_ALIAS');
      expect((await put({ alias: '#canon:localhost:8008', alt_aliases: ['#nope:localhost:8008'] })).body.errcode).toBe('M_BAD_ALIAS');
      expect((await put({ alias: '%canon:localhost:8008' })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await put({ alt_aliases: 'nope' })).body.errcode).toBe('M_INVALID_PARAM');
      // Another server's alias cannot be checked here and is let through.
      expect((await put({ alias: '#x:elsewhere.example' })).status).toBe(200);
    });
  });
}
