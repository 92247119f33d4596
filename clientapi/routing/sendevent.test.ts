/**
 * Sending events and reading rooms over HTTP, on SQLite and PostgreSQL: PUT and POST
 * /rooms/{roomId}/send, PUT and GET /rooms/{roomId}/state/{type}[/{key}], GET
 * /rooms/{roomId}/state, /joined_rooms and /rooms/{roomId}/joined_members. What
 * createroom.test.ts already checks (the first send, a retry on the same device, the
 * single-member reads) is not repeated here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, getJson, registerUser, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const ALICE = '@alice:localhost:8008';
const BOB = '@bob:localhost:8008';
/** The body limit of /send and /state: an event cannot be bigger than 65,536 bytes, so neither can its content. */
const MAX_BODY = 65_536;

for (const dialect of TEST_DIALECTS) {
  describe(`sending events and reading rooms [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    /** A request whose body is sent exactly as given (not JSON, or too big). */
    const raw = (method: string, path: string, token: string, body: string | ReadableStream<Uint8Array>) =>
      getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
        method,
        body,
        ...(typeof body === 'string' ? {} : { duplex: 'half' }),
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      } as RequestInit);
    const pdu = async (eventId: string) => (await t.server.apis.roomserver.queryEventsById({ event_ids: [eventId] })).events[0]?.pdu;
    const latest = async (roomId: string) => (await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] })).latest_event_ids;

    let alice: string;
    /** Alice's second device (a second login). */
    let alice2: string;
    let bob: string;
    let carol: string;
    let room: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await registerUser(req, 'alice');
      bob = await registerUser(req, 'bob');
      carol = await registerUser(req, 'carol');
      const login = await req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'pw' });
      expect(login.status).toBe(200);
      alice2 = login.body.access_token as string;
      expect(alice2).not.toBe(alice);
      const created = await req('POST', '/createRoom', alice, { preset: 'public_chat' });
      expect(created.status).toBe(200);
      room = created.body.room_id as string;
    }, 60_000);
    afterAll(() => t?.stop());

    describe('PUT /rooms/{roomId}/send/{eventType}/{txnId}', () => {
      it('stores the event as sent, by the sender, of the type in the path', async () => {
        const r = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/put1`, alice, { msgtype: 'm.text', body: 'hello' });
        expect(r.status).toBe(200);
        expect(Object.keys(r.body)).toEqual(['event_id']);
        const ev = await pdu(r.body.event_id as string);
        expect(ev).toMatchObject({ type: 'm.room.message', sender: ALICE, room_id: room, content: { msgtype: 'm.text', body: 'hello' } });
        expect(ev?.state_key).toBeUndefined();
        expect(await latest(room)).toEqual([r.body.event_id]);
      });

      it('answers a retry from the same device with the same event and sends nothing new', async () => {
        const first = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/retry`, alice, { msgtype: 'm.text', body: 'once' });
        expect(first.status).toBe(200);
        const head = await latest(room);
        // Even with another body: the transaction ID decides.
        const retry = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/retry`, alice, { msgtype: 'm.text', body: 'twice?' });
        expect(retry).toMatchObject({ status: 200, body: { event_id: first.body.event_id } });
        expect(await latest(room)).toEqual(head);
        expect((await pdu(first.body.event_id as string))?.content).toEqual({ msgtype: 'm.text', body: 'once' });
      });

      it('keeps transaction IDs apart per device: the same ID from another device is a new event', async () => {
        const a = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/shared`, alice, { msgtype: 'm.text', body: 'device one' });
        const b = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/shared`, alice2, { msgtype: 'm.text', body: 'device two' });
        expect(a.status).toBe(200);
        expect(b.status).toBe(200);
        expect(b.body.event_id).not.toBe(a.body.event_id);
        expect((await pdu(b.body.event_id as string))?.content).toEqual({ msgtype: 'm.text', body: 'device two' });
        // Each device's retry still gets its own event back.
        expect((await req('PUT', `/rooms/${enc(room)}/send/m.room.message/shared`, alice2, {})).body.event_id).toBe(b.body.event_id);
        expect((await req('PUT', `/rooms/${enc(room)}/send/m.room.message/shared`, alice, {})).body.event_id).toBe(a.body.event_id);
        // So does another user's device.
        expect((await req('POST', `/join/${enc(room)}`, bob, {})).status).toBe(200);
        const c = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/shared`, bob, { msgtype: 'm.text', body: 'bob' });
        expect(c.status).toBe(200);
        expect([a.body.event_id, b.body.event_id]).not.toContain(c.body.event_id);
        expect((await pdu(c.body.event_id as string))?.sender).toBe(BOB);
      });

      it('answers a body that is not JSON with 400 M_NOT_JSON, and one that is not an object with 400 M_BAD_JSON', async () => {
        const head = await latest(room);
        for (const body of ['{"msgtype":', 'hello', '{"a":1}}', "{'a': 1}"]) {
          const r = await raw('PUT', `/rooms/${enc(room)}/send/m.room.message/notjson`, alice, body);
          expect([body, r.status, r.body.errcode]).toEqual([body, 400, 'M_NOT_JSON']);
          expect(typeof r.body.error).toBe('string');
        }
        for (const body of ['[]', '"text"', '5', 'null']) {
          const r = await raw('PUT', `/rooms/${enc(room)}/send/m.room.message/notobject`, alice, body);
          expect([body, r.status, r.body.errcode]).toEqual([body, 400, 'M_BAD_JSON']);
        }
        expect(await latest(room)).toEqual(head);
        // A refused request does not use up its transaction ID.
        const ok = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/notjson`, alice, { msgtype: 'm.text', body: 'fixed' });
        expect(ok.status).toBe(200);
        expect((await pdu(ok.body.event_id as string))?.content).toEqual({ msgtype: 'm.text', body: 'fixed' });
      });

      it('refuses a body over 65,536 bytes with 413 M_TOO_LARGE, whether its length is declared or streamed', async () => {
        const head = await latest(room);
        const big = JSON.stringify({ msgtype: 'm.text', body: 'x'.repeat(MAX_BODY) });
        const declared = await raw('PUT', `/rooms/${enc(room)}/send/m.room.message/big1`, alice, big);
        expect([declared.status, declared.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
        // Without a Content-Length (chunked), the limit is checked while reading.
        const bytes = new TextEncoder().encode(big);
        let offset = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(ctrl) {
            if (offset >= bytes.length) return ctrl.close();
            ctrl.enqueue(bytes.subarray(offset, offset + 8192));
            offset += 8192;
          },
        });
        const streamed = await raw('PUT', `/rooms/${enc(room)}/send/m.room.message/big2`, alice, stream);
        expect([streamed.status, streamed.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
        expect(await latest(room)).toEqual(head);
      });

      // The spec's size limits: Synapse and Dendrite answer 413 M_TOO_LARGE.
      it('refuses a body within the limit whose event is over 65,536 bytes with 413 M_TOO_LARGE', async () => {
        const near = JSON.stringify({ msgtype: 'm.text', body: 'x'.repeat(65_400) });
        expect(Buffer.byteLength(near)).toBeLessThanOrEqual(MAX_BODY);
        for (const path of [`/rooms/${enc(room)}/send/m.room.message/near1`, `/rooms/${enc(room)}/state/org.example.big/k`]) {
          const r = await raw('PUT', path, alice, near);
          expect([path, r.status, r.body.errcode]).toEqual([path, 413, 'M_TOO_LARGE']);
        }
      });

      it('refuses an event type or state key over 255 bytes with 413 M_TOO_LARGE', async () => {
        const r = await req('PUT', `/rooms/${enc(room)}/send/${'t'.repeat(300)}/longtype`, alice, { body: 'x' });
        expect([r.status, r.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
        const k = await req('PUT', `/rooms/${enc(room)}/state/org.example.k/${'é'.repeat(128)}`, alice, { body: 'x' });
        expect([k.status, k.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
      });

      it('refuses users who are not in the room with 403 M_FORBIDDEN, and answers a room that does not exist', async () => {
        const r = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/out1`, carol, { msgtype: 'm.text', body: 'let me in' });
        expect([r.status, r.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
        const nowhere = await req('PUT', `/rooms/${enc('!nowhere:localhost:8008')}/send/m.room.message/out2`, alice, { body: 'x' });
        // A room this server does not know is one the user is not in.
        expect([nowhere.status, nowhere.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      });

      it('refuses a malformed room ID with 400 M_INVALID_PARAM', async () => {
        for (const bad of ['notaroom', '#alias:localhost:8008', '@alice:localhost:8008', '!']) {
          const r = await req('PUT', `/rooms/${enc(bad)}/send/m.room.message/bad`, alice, { body: 'x' });
          expect([bad, r.status, r.body.errcode]).toEqual([bad, 400, 'M_INVALID_PARAM']);
        }
      });

      it('wants an access token', async () => {
        const r = await req('PUT', `/rooms/${enc(room)}/send/m.room.message/anon`, '', { body: 'x' });
        expect([r.status, r.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
      });
    });

    describe('POST /rooms/{roomId}/send/{eventType}', () => {
      it('sends a new event for each request (no transaction ID, no deduplication)', async () => {
        const one = await req('POST', `/rooms/${enc(room)}/send/m.room.message`, alice, { msgtype: 'm.text', body: 'posted' });
        const two = await req('POST', `/rooms/${enc(room)}/send/m.room.message`, alice, { msgtype: 'm.text', body: 'posted' });
        expect(one.status).toBe(200);
        expect(two.status).toBe(200);
        expect(two.body.event_id).not.toBe(one.body.event_id);
        expect(await pdu(one.body.event_id as string)).toMatchObject({ type: 'm.room.message', sender: ALICE, content: { msgtype: 'm.text', body: 'posted' } });
        expect(await latest(room)).toEqual([two.body.event_id]);
      });

      it('answers bad bodies, outsiders, malformed room IDs and missing tokens as PUT does', async () => {
        const notJson = await raw('POST', `/rooms/${enc(room)}/send/m.room.message`, alice, '{');
        expect([notJson.status, notJson.body.errcode]).toEqual([400, 'M_NOT_JSON']);
        const big = await raw('POST', `/rooms/${enc(room)}/send/m.room.message`, alice, JSON.stringify({ body: 'y'.repeat(MAX_BODY) }));
        expect([big.status, big.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
        const outsider = await req('POST', `/rooms/${enc(room)}/send/m.room.message`, carol, { body: 'x' });
        expect([outsider.status, outsider.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
        const badRoom = await req('POST', '/rooms/notaroom/send/m.room.message', alice, { body: 'x' });
        expect([badRoom.status, badRoom.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
        expect((await req('POST', `/rooms/${enc(room)}/send/m.room.message`, '', { body: 'x' })).status).toBe(401);
      });
    });

    describe('PUT and GET /rooms/{roomId}/state/{eventType}/{stateKey}', () => {
      it('sets state under a state key and reads it back, as content or as the whole event', async () => {
        const put = await req('PUT', `/rooms/${enc(room)}/state/org.example.thing/k1`, alice, { value: 1 });
        expect(put.status).toBe(200);
        const ev = await pdu(put.body.event_id as string);
        expect(ev).toMatchObject({ type: 'org.example.thing', state_key: 'k1', sender: ALICE, content: { value: 1 } });
        expect((await req('GET', `/rooms/${enc(room)}/state/org.example.thing/k1`, alice)).body).toEqual({ value: 1 });
        const full = await req('GET', `/rooms/${enc(room)}/state/org.example.thing/k1?format=event`, bob);
        expect(full.body).toMatchObject({ type: 'org.example.thing', state_key: 'k1', event_id: put.body.event_id, room_id: room, sender: ALICE, content: { value: 1 } });
        // Another key of the same type is separate state.
        expect((await req('PUT', `/rooms/${enc(room)}/state/org.example.thing/k2`, alice, { value: 2 })).status).toBe(200);
        expect((await req('GET', `/rooms/${enc(room)}/state/org.example.thing/k1`, alice)).body).toEqual({ value: 1 });
        expect((await req('GET', `/rooms/${enc(room)}/state/org.example.thing/k2`, alice)).body).toEqual({ value: 2 });
        // A new value replaces the old one.
        expect((await req('PUT', `/rooms/${enc(room)}/state/org.example.thing/k1`, alice, { value: 3 })).status).toBe(200);
        expect((await req('GET', `/rooms/${enc(room)}/state/org.example.thing/k1`, bob)).body).toEqual({ value: 3 });
      });

      it('takes state keys with characters that must be escaped in the path', async () => {
        for (const key of [ALICE, 'a/b', 'with space', 'ünï#?&']) {
          const put = await req('PUT', `/rooms/${enc(room)}/state/org.example.escaped/${enc(key)}`, alice, { key });
          expect([key, put.status]).toEqual([key, 200]);
          expect((await pdu(put.body.event_id as string))?.state_key).toBe(key);
          expect((await req('GET', `/rooms/${enc(room)}/state/org.example.escaped/${enc(key)}`, alice)).body).toEqual({ key });
        }
      });

      it('uses the empty state key without a key, with or without the trailing slash', async () => {
        const bare = await req('PUT', `/rooms/${enc(room)}/state/org.example.empty`, alice, { n: 1 });
        expect(bare.status).toBe(200);
        expect((await pdu(bare.body.event_id as string))?.state_key).toBe('');
        expect((await req('GET', `/rooms/${enc(room)}/state/org.example.empty/`, alice)).body).toEqual({ n: 1 });
        const slash = await req('PUT', `/rooms/${enc(room)}/state/org.example.empty/`, alice, { n: 2 });
        expect(slash.status).toBe(200);
        expect((await pdu(slash.body.event_id as string))?.state_key).toBe('');
        expect((await req('GET', `/rooms/${enc(room)}/state/org.example.empty`, alice)).body).toEqual({ n: 2 });
      });

      it('answers 404 M_NOT_FOUND for state that is not there', async () => {
        const r = await req('GET', `/rooms/${enc(room)}/state/org.example.thing/nope`, alice);
        expect([r.status, r.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
        const t2 = await req('GET', `/rooms/${enc(room)}/state/org.example.never`, alice);
        expect([t2.status, t2.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
      });

      it('refuses state from the powerless and from outsiders with 403, and bad requests with 4xx', async () => {
        const head = await latest(room);
        // Bob is joined at power 0; state needs 50 by default.
        const powerless = await req('PUT', `/rooms/${enc(room)}/state/m.room.topic`, bob, { topic: 'mine' });
        expect([powerless.status, powerless.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
        const outsider = await req('PUT', `/rooms/${enc(room)}/state/org.example.thing/k9`, carol, { value: 9 });
        expect([outsider.status, outsider.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
        const notJson = await raw('PUT', `/rooms/${enc(room)}/state/org.example.thing/k9`, alice, 'nope');
        expect([notJson.status, notJson.body.errcode]).toEqual([400, 'M_NOT_JSON']);
        const big = await raw('PUT', `/rooms/${enc(room)}/state/org.example.thing/k9`, alice, JSON.stringify({ v: 'z'.repeat(MAX_BODY) }));
        expect([big.status, big.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
        const badRoom = await req('PUT', '/rooms/notaroom/state/org.example.thing/k9', alice, { value: 9 });
        expect([badRoom.status, badRoom.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
        expect((await req('PUT', `/rooms/${enc(room)}/state/org.example.thing/k9`, '', { value: 9 })).status).toBe(401);
        expect(await latest(room)).toEqual(head);
        // Outsiders cannot read it either.
        const read = await req('GET', `/rooms/${enc(room)}/state/org.example.thing/k1`, carol);
        expect([read.status, read.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      });
    });

    describe('GET /rooms/{roomId}/state', () => {
      it('lists the current state, one event per type and key, in client format', async () => {
        const r = await req('GET', `/rooms/${enc(room)}/state`, bob);
        expect(r.status).toBe(200);
        const events = r.body as unknown as Body[];
        expect(Array.isArray(events)).toBe(true);
        const keys = events.map((e) => `${e.type as string}|${e.state_key as string}`);
        expect(new Set(keys).size).toBe(keys.length);
        const byKey = new Map(events.map((e) => [`${e.type as string}|${e.state_key as string}`, e]));
        expect(byKey.get('org.example.thing|k1')?.content).toEqual({ value: 3 });
        expect(byKey.get('org.example.thing|k2')?.content).toEqual({ value: 2 });
        expect(byKey.get('org.example.empty|')?.content).toEqual({ n: 2 });
        expect(byKey.get(`m.room.member|${BOB}`)?.content).toMatchObject({ membership: 'join' });
        expect(byKey.get(`m.room.member|${ALICE}`)?.content).toMatchObject({ membership: 'join' });
        // Messages are not state.
        expect(events.some((e) => e.type === 'm.room.message')).toBe(false);
        for (const e of events) {
          expect(e).toMatchObject({ room_id: room, sender: expect.stringMatching(/^@/), event_id: expect.stringMatching(/^\$/), origin_server_ts: expect.any(Number) });
          // Client format: no federation fields.
          expect(e.auth_events).toBeUndefined();
          expect(e.prev_events).toBeUndefined();
          expect(e.hashes).toBeUndefined();
          expect(e.signatures).toBeUndefined();
        }
      });

      it('refuses outsiders, malformed room IDs and requests without a token', async () => {
        const outsider = await req('GET', `/rooms/${enc(room)}/state`, carol);
        expect([outsider.status, outsider.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
        const bad = await req('GET', '/rooms/notaroom/state', alice);
        expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
        expect((await req('GET', `/rooms/${enc(room)}/state`, '')).status).toBe(401);
      });
    });

    describe('GET /joined_rooms and /rooms/{roomId}/joined_members', () => {
      it('lists the rooms a user is joined to, as they join and leave', async () => {
        const dave = await registerUser(req, 'dave');
        expect((await req('GET', '/joined_rooms', dave)).body).toEqual({ joined_rooms: [] });
        const own = (await req('POST', '/createRoom', dave, {})).body.room_id as string;
        expect((await req('POST', `/join/${enc(room)}`, dave, {})).status).toBe(200);
        expect(((await req('GET', '/joined_rooms', dave)).body.joined_rooms as string[]).sort()).toEqual([own, room].sort());
        // An invite is not a join.
        const invitedTo = (await req('POST', '/createRoom', alice, { invite: ['@dave:localhost:8008'] })).body.room_id as string;
        expect((await t.server.apis.roomserver.queryMembershipForUser({ room_id: invitedTo, user_id: '@dave:localhost:8008' })).membership).toBe('invite');
        expect((await req('GET', '/joined_rooms', dave)).body.joined_rooms).not.toContain(invitedTo);
        expect((await req('POST', `/rooms/${enc(room)}/leave`, dave, {})).status).toBe(200);
        expect((await req('GET', '/joined_rooms', dave)).body).toEqual({ joined_rooms: [own] });
        expect((await req('GET', '/joined_rooms', '')).status).toBe(401);
      });

      it('lists the joined members with their display names and avatars', async () => {
        const r = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
        expect((await req('PUT', `/profile/${enc(BOB)}/displayname`, bob, { displayname: 'Bobby' })).status).toBe(200);
        expect((await req('PUT', `/profile/${enc(BOB)}/avatar_url`, bob, { avatar_url: 'mxc://localhost:8008/bob' })).status).toBe(200);
        expect((await req('POST', `/join/${enc(r)}`, bob, {})).status).toBe(200);
        const both = await req('GET', `/rooms/${enc(r)}/joined_members`, bob);
        expect(both.status).toBe(200);
        expect(both.body).toEqual({
          joined: {
            [ALICE]: { display_name: 'alice', avatar_url: null },
            [BOB]: { display_name: 'Bobby', avatar_url: 'mxc://localhost:8008/bob' },
          },
        });
        // Invited and departed users are not listed.
        expect((await req('POST', `/rooms/${enc(r)}/invite`, alice, { user_id: '@carol:localhost:8008' })).status).toBe(200);
        expect((await req('POST', `/rooms/${enc(r)}/leave`, bob, {})).status).toBe(200);
        expect((await req('GET', `/rooms/${enc(r)}/joined_members`, alice)).body).toEqual({ joined: { [ALICE]: { display_name: 'alice', avatar_url: null } } });
        // Bob, gone, and Carol, only invited, may not list them.
        for (const token of [bob, carol]) {
          const refused = await req('GET', `/rooms/${enc(r)}/joined_members`, token);
          expect([refused.status, refused.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
        }
        expect((await req('GET', `/rooms/${enc(r)}/joined_members`, '')).status).toBe(401);
      });
    });
  });
}
