/**
 * GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event on one real server, on SQLite and on
 * PostgreSQL: both directions, the edges, history visibility, who may ask, and bad parameters.
 * (Asking other servers is covered by federationapi/routing/timestamp.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const dialect of TEST_DIALECTS) {
  describe(`GET /timestamp_to_event [${dialect}]`, () => {
    let t: TestServer;
    let alice: string;
    let bob: string;
    let carol: string;

    const req = (method: string, p: string, token: string, body?: unknown, prefix = '/_matrix/client/v3') =>
      getJson(`${t.baseUrl}${prefix}${p}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    const lookup = (token: string, roomId: string, query: string, prefix = '/_matrix/client/v1') => req('GET', `/rooms/${enc(roomId)}/timestamp_to_event?${query}`, token, undefined, prefix);
    let txn = 0;
    const send = async (token: string, roomId: string, body: string): Promise<{ id: string; ts: number }> => {
      const r = await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`, token, { msgtype: 'm.text', body });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const id = r.body.event_id as string;
      const [e] = (await t.server.apis.roomserver.queryEventsById({ event_ids: [id] })).events;
      // Timestamps are milliseconds: a pause keeps the next event's apart from this one's.
      await sleep(5);
      return { id, ts: e!.pdu.origin_server_ts };
    };
    const register = async (name: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: name, password: 'pw' })).body.access_token as string;
    const createRoom = async (token: string, body: Body) => {
      const r = await req('POST', '/createRoom', token, body);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.room_id as string;
    };

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      [alice, bob, carol] = [await register('alice'), await register('bob'), await register('carol')];
    }, 60_000);
    afterAll(() => t?.stop());

    it('finds the nearest event forwards and backwards, timestamps included, and 404 past the ends', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      await sleep(5);
      const m1 = await send(alice, roomId, 'one');
      const m2 = await send(alice, roomId, 'two');
      const m3 = await send(alice, roomId, 'three');

      expect((await lookup(alice, roomId, `ts=${m2.ts}&dir=f`)).body).toEqual({ event_id: m2.id, origin_server_ts: m2.ts });
      expect((await lookup(alice, roomId, `ts=${m2.ts + 1}&dir=f`)).body).toEqual({ event_id: m3.id, origin_server_ts: m3.ts });
      expect((await lookup(alice, roomId, `ts=${m2.ts}&dir=b`)).body).toEqual({ event_id: m2.id, origin_server_ts: m2.ts });
      expect((await lookup(alice, roomId, `ts=${m2.ts - 1}&dir=b`)).body).toEqual({ event_id: m1.id, origin_server_ts: m1.ts });
      expect((await lookup(alice, roomId, `ts=${m3.ts + 60_000}&dir=b`)).body.event_id).toBe(m3.id);

      // From the beginning of time forwards: the room's first event, its creation.
      const first = await lookup(alice, roomId, 'ts=0&dir=f');
      expect(first.status).toBe(200);
      const [create] = (await t.server.apis.roomserver.queryEventsById({ event_ids: [first.body.event_id as string] })).events;
      expect(create?.pdu.type).toBe('m.room.create');

      const late = await lookup(alice, roomId, `ts=${m3.ts + 60_000}&dir=f`);
      expect([late.status, late.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
      const early = await lookup(alice, roomId, 'ts=0&dir=b');
      expect([early.status, early.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

      // MSC3030's unstable path answers the same.
      expect((await lookup(alice, roomId, `ts=${m2.ts}&dir=f`, '/_matrix/client/unstable/org.matrix.msc3030')).body).toEqual({ event_id: m2.id, origin_server_ts: m2.ts });
    });

    it('counts only events the user may see, and lets only those who may see the room ask', async () => {
      const roomId = await createRoom(alice, { preset: 'private_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] });
      await sleep(5);
      const before = await send(alice, roomId, 'before bob');
      expect((await req('POST', `/rooms/${enc(roomId)}/invite`, alice, { user_id: '@bob:localhost:8008' })).status).toBe(200);
      expect((await req('POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(200);
      await sleep(5);
      const after = await send(alice, roomId, 'after bob');

      expect((await lookup(alice, roomId, `ts=${before.ts}&dir=b`)).body.event_id).toBe(before.id);
      // Bob may not see what was said before he joined: backwards from it, the nearest event he
      // may see is the one that made history 'joined' (the state before it had no such rule).
      const hidden = await lookup(bob, roomId, `ts=${before.ts}&dir=b`);
      expect(hidden.status).toBe(200);
      expect(hidden.body.event_id).not.toBe(before.id);
      const [rule] = (await t.server.apis.roomserver.queryEventsById({ event_ids: [hidden.body.event_id as string] })).events;
      expect(rule?.pdu.type).toBe('m.room.history_visibility');
      // Forwards from it, the first event he may see is his own membership (the invite).
      const own = await lookup(bob, roomId, `ts=${before.ts}&dir=f`);
      expect(own.status).toBe(200);
      const [mine] = (await t.server.apis.roomserver.queryEventsById({ event_ids: [own.body.event_id as string] })).events;
      expect([mine?.pdu.type, mine?.pdu.state_key]).toEqual(['m.room.member', '@bob:localhost:8008']);
      expect((await lookup(bob, roomId, `ts=${after.ts}&dir=b`)).body.event_id).toBe(after.id);

      // Never in the room: 403, as for a room that does not exist.
      const outsider = await lookup(carol, roomId, `ts=${after.ts}&dir=b`);
      expect([outsider.status, outsider.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      const unknown = await lookup(alice, '!nope:localhost:8008', 'ts=0&dir=f');
      expect([unknown.status, unknown.body.errcode]).toEqual([403, 'M_FORBIDDEN']);

      // Having left, bob may still ask about what he saw.
      expect((await req('POST', `/rooms/${enc(roomId)}/leave`, bob, {})).status).toBe(200);
      expect((await lookup(bob, roomId, `ts=${after.ts}&dir=b`)).body.event_id).toBe(after.id);
    });

    it('answers anyone about a world_readable room', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'world_readable' } }] });
      await sleep(5);
      const m = await send(alice, roomId, 'for all to read');
      expect((await lookup(carol, roomId, `ts=${m.ts}&dir=b`)).body).toEqual({ event_id: m.id, origin_server_ts: m.ts });
    });

    it('refuses bad parameters with 400 and requests without a token with 401', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat' });
      const cases: Array<[string, string]> = [
        ['dir=f', 'M_MISSING_PARAM'],
        ['ts=&dir=f', 'M_MISSING_PARAM'],
        ['ts=abc&dir=f', 'M_INVALID_PARAM'],
        ['ts=-5&dir=f', 'M_INVALID_PARAM'],
        ['ts=1.5&dir=f', 'M_INVALID_PARAM'],
        ['ts=99999999999999999999&dir=f', 'M_INVALID_PARAM'],
        ['ts=0', 'M_MISSING_PARAM'],
        ['ts=0&dir=x', 'M_INVALID_PARAM'],
        ['ts=0&dir=forward', 'M_INVALID_PARAM'],
      ];
      for (const [query, errcode] of cases) {
        const r = await lookup(alice, roomId, query);
        expect([query, r.status, r.body.errcode]).toEqual([query, 400, errcode]);
      }
      const badRoom = await lookup(alice, 'not-a-room', 'ts=0&dir=f');
      expect([badRoom.status, badRoom.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      const anonymous = await lookup('', roomId, 'ts=0&dir=f');
      expect([anonymous.status, anonymous.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
    });
  });
}
