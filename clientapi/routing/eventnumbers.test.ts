/**
 * Numbers in event content sent by clients, per room version (rooms/v6 "Canonical JSON"):
 * from room version 6 a float or an integer outside ±(2^53-1) is 400 M_BAD_JSON, for messages
 * (PUT with a transaction ID, and the older POST without) and state; room version 5 still takes
 * them; a number with no finite value is refused everywhere, never a 500. As Sytest's
 * 80torture/20json.pl checks ('Invalid JSON integers', 'Invalid JSON floats', 'Invalid JSON
 * special values'). On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, getJson, registerUser, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`numbers in event content [${dialect}]`, () => {

    let t: TestServer;
    const req = clientRequester(() => t);
    const enc = encodeURIComponent;
    /** A request whose body is sent exactly as written (numbers JSON.stringify would rewrite, and non-JSON). */
    const raw = (method: string, path: string, token: string, body: string) =>
      getJson(`${t.baseUrl}/_matrix/client/v3${path}`, { method, body, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` } });

    let alice: string;
    let v6: string;
    let v10: string;
    let v5: string;
    let txn = 0;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await registerUser(req, 'alice');
      const create = async (room_version: string) => {
        const r = await req('POST', '/createRoom', alice, { room_version });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        return r.body.room_id as string;
      };
      [v6, v10, v5] = [await create('6'), await create('10'), await create('5')];
    }, 60_000);
    afterAll(() => t?.stop());

    const put = (roomId: string, body: string) => raw('PUT', `/rooms/${enc(roomId)}/send/sytest.dummy/n${++txn}`, alice, body);
    const post = (roomId: string, body: string) => raw('POST', `/rooms/${enc(roomId)}/send/sytest.dummy`, alice, body);
    const state = (roomId: string, key: string, body: string) => raw('PUT', `/rooms/${enc(roomId)}/state/sytest.state/${enc(key)}`, alice, body);
    const content = async (roomId: string, eventId: string) => {
      const end = Date.now() + 10_000;
      for (;;) {
        const r = await req('GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`, alice);
        if (r.status === 200) return r.body.content as Record<string, unknown>;
        if (Date.now() > end) throw new Error(`event ${eventId} never readable: ${r.status}`);
        await new Promise((res) => setTimeout(res, 25));
      }
    };

    const BAD_NUMBERS = [
      ['a float', '1.1'],
      ['2^53', '9007199254740992'],
      ['-(2^53)', '-9007199254740992'],
      ['a float with a zero fraction', '1.0'],
      ['an exponent', '1e3'],
      ['a huge integer', '123456789012345678901234567890'],
    ] as const;

    describe('room versions 6 and later', () => {
      for (const [name, num] of BAD_NUMBERS) {
        it(`refuses ${name} in a message (PUT and POST) and in state with 400 M_BAD_JSON`, async () => {
          for (const roomId of [v6, v10]) {
            const body = `{"msgtype":"sytest.dummy","body":${num}}`;
            for (const r of [await put(roomId, body), await post(roomId, body), await state(roomId, '', `{"nested":{"list":[1,${num}]}}`)]) {
              expect(r.status, JSON.stringify(r.body)).toBe(400);
              expect(r.body.errcode).toBe('M_BAD_JSON');
              expect(typeof r.body.error).toBe('string');
            }
          }
        });
      }

      it('takes the integer bounds and numbers inside strings', async () => {
        const r = await post(v6, '{"msgtype":"sytest.dummy","body":9007199254740991,"low":-9007199254740991,"s":"1.5e400"}');
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(await content(v6, r.body.event_id as string)).toEqual({ msgtype: 'sytest.dummy', body: 2 ** 53 - 1, low: -(2 ** 53) + 1, s: '1.5e400' });
      });

      it('answers NaN and the infinities (not JSON) with 400', async () => {
        for (const lit of ['NaN', 'Infinity', '-Infinity', 'nan', 'inf']) {
          const r = await post(v6, `{"msgtype":"sytest.dummy","body":${lit}}`);
          expect(r.status, lit).toBe(400);
          expect(r.body.errcode).toBe('M_NOT_JSON');
        }
      });
    });

    describe('room version 5', () => {
      it('takes floats and big integers in messages and keeps them', async () => {
        const r = await put(v5, '{"msgtype":"sytest.dummy","body":1.1,"big":1152921504606846976,"small":-0.00001}');
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(await content(v5, r.body.event_id as string)).toEqual({ msgtype: 'sytest.dummy', body: 1.1, big: 2 ** 60, small: -0.00001 });
        const p = await post(v5, '{"body":2.5}');
        expect(p.status, JSON.stringify(p.body)).toBe(200);
      });

      it('takes a float in state', async () => {
        const first = await state(v5, 'f', '{"f":0.5}');
        expect(first.status, JSON.stringify(first.body)).toBe(200);
        expect(await content(v5, first.body.event_id as string)).toEqual({ f: 0.5 });
      });

      it('takes the same float state again (the same event answers), and a change of it', async () => {
        const first = await state(v5, 'g', '{"g":0.25}');
        expect(first.status, JSON.stringify(first.body)).toBe(200);
        const again = await state(v5, 'g', '{"g":0.25}');
        expect(again.status, JSON.stringify(again.body)).toBe(200);
        expect(again.body.event_id).toBe(first.body.event_id);
        const changed = await state(v5, 'g', '{"g":0.75}');
        expect(changed.status, JSON.stringify(changed.body)).toBe(200);
        expect(changed.body.event_id).not.toBe(first.body.event_id);
      });
    });

    describe('POST /createRoom', () => {
      const createRaw = (body: string) => raw('POST', '/createRoom', alice, body);

      it('refuses floats and out-of-range integers in the first events of a version 6+ room with 400 M_BAD_JSON', async () => {
        for (const body of [
          '{"room_version":"6","initial_state":[{"type":"x.y","state_key":"","content":{"f":1.1}}]}',
          '{"room_version":"10","creation_content":{"n":9007199254740992}}',
          '{"room_version":"11","power_level_content_override":{"users_default":0.5}}',
          '{"initial_state":[{"type":"x.y","content":{"f":2.0}}]}',
        ]) {
          const r = await createRaw(body);
          expect(r.status, body).toBe(400);
          expect(r.body.errcode, body).toBe('M_BAD_JSON');
        }
      });

      it('takes them in a version 5 room', async () => {
        const r = await createRaw('{"room_version":"5","initial_state":[{"type":"x.y","state_key":"","content":{"f":1.1,"n":9007199254740993}}]}');
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        const s = await req('GET', `/rooms/${enc(r.body.room_id as string)}/state/x.y/`, alice);
        expect(s.body).toEqual({ f: 1.1, n: 2 ** 53 });
      });

      it('refuses 1e400 in any room version', async () => {
        const r = await createRaw('{"room_version":"5","creation_content":{"n":1e400}}');
        expect(r.status).toBe(400);
        expect(r.body.errcode).toBe('M_BAD_JSON');
      });
    });

    describe('POST /join with extra content', () => {
      it('refuses a float in the join of a version 6+ room, takes it in a version 5 room', async () => {
        const bob = await registerUser(req, 'bob');
        for (const [room_version, status] of [['6', 400], ['10', 400], ['5', 200]] as const) {
          const roomId = (await req('POST', '/createRoom', alice, { room_version, preset: 'public_chat' })).body.room_id as string;
          const r = await raw('POST', `/join/${enc(roomId)}`, bob, '{"x":1.5}');
          expect(r.status, `v${room_version}: ${JSON.stringify(r.body)}`).toBe(status);
          if (status === 200) continue;
          expect(r.body.errcode).toBe('M_BAD_JSON');
          const clean = await raw('POST', `/join/${enc(roomId)}`, bob, '{"x":1}');
          expect(clean.status, JSON.stringify(clean.body)).toBe(200);
        }
      });
    });

    describe('every room version', () => {
      it('refuses a number too large for a double (1e400) with 400 M_BAD_JSON, not a 500', async () => {
        for (const roomId of [v5, v6]) {
          for (const r of [await put(roomId, '{"body":1e400}'), await post(roomId, '{"body":-1e400}'), await state(roomId, 'x', '{"n":[1e999]}')]) {
            expect(r.status, JSON.stringify(r.body)).toBe(400);
            expect(r.body.errcode).toBe('M_BAD_JSON');
          }
        }
      });

      it('still answers a body that is not JSON, or not an object, as before', async () => {
        expect((await post(v6, '{"body":')).body.errcode).toBe('M_NOT_JSON');
        expect((await post(v6, '[1.5]')).body.errcode).toBe('M_BAD_JSON');
        const empty = await post(v6, '');
        expect(empty.status, JSON.stringify(empty.body)).toBe(200);
      });

      it('does not look up a room that does not exist beyond answering as before', async () => {
        const r = await post('!nope:localhost:8008', '{"body":1.5}');
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
      });
    });
  });
}
