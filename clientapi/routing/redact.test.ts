/** Redacting events over HTTP (PUT /rooms/{roomId}/redact/{eventId}/{txnId}) on a real monolith, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`PUT /rooms/{roomId}/redact [${dialect}]`, () => {
    let t: TestServer;
    type Body = Record<string, unknown>;
    const req = (method: string, path: string, token: string, body?: unknown, version = 'v3') =>
      getJson(`${t.baseUrl}/_matrix/client/${version}${path}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    const enc = encodeURIComponent;
    const reg = async (u: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: u, password: 'pw' })).body.access_token as string;

    const until = async (fn: () => Promise<boolean>, ms = 5000) => {
      const end = Date.now() + ms;
      while (!(await fn())) {
        if (Date.now() > end) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const getEvent = (token: string, roomId: string, eventId: string) => req('GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`, token);
    /** Waits until syncapi has the event (its consumer runs behind the send). */
    const synced = (token: string, roomId: string, eventId: string) => until(async () => (await getEvent(token, roomId, eventId)).status === 200);
    /** Waits until syncapi serves the event redacted (its consumer applies `redacted_event` outputs). */
    const redacted = (token: string, roomId: string, eventId: string) =>
      until(async () => {
        const r = await getEvent(token, roomId, eventId);
        return r.status === 200 && Object.keys(r.body.content as Body).length === 0;
      });
    let txnSeq = 0;
    const send = async (token: string, roomId: string, body: string) =>
      (await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/m${++txnSeq}`, token, { msgtype: 'm.text', body })).body.event_id as string;
    const redact = (token: string, roomId: string, eventId: string, txn: string, body: unknown = {}, version = 'v3') =>
      req('PUT', `/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txn)}`, token, body, version);
    /** The PDU as the roomserver holds it. */
    const pdu = async (eventId: string) => (await t.server.apis.roomserver.queryEventsById({ event_ids: [eventId] })).events[0]!.pdu as Body;

    let alice: string;
    let bob: string;
    let carol: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await reg('alice');
      bob = await reg('bob');
      carol = await reg('carol');
    }, 60_000);
    afterAll(() => t?.stop());

    const newRoom = async (roomVersion: string): Promise<string> => {
      const r = await req('POST', '/createRoom', alice, { preset: 'public_chat', room_version: roomVersion });
      expect(r.status).toBe(200);
      const roomId = r.body.room_id as string;
      expect((await req('POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
      return roomId;
    };

    describe.each(['10', '11'])('in a room of version %s', (roomVersion) => {
      let room: string;
      beforeAll(async () => {
        room = await newRoom(roomVersion);
      });

      it('redacts the sender’s own event, idempotently, and syncapi serves it redacted', async () => {
        const target = await send(alice, room, 'oops');
        await synced(alice, room, target);
        const first = await redact(alice, room, target, 'r1', { reason: 'typo' });
        expect(first.status).toBe(200);
        const redactionId = first.body.event_id as string;
        expect(redactionId).toMatch(/^\$/);
        // A retry of the same transaction gets the same event back, over either path version.
        expect((await redact(alice, room, target, 'r1', { reason: 'typo' })).body).toEqual({ event_id: redactionId });
        expect((await redact(alice, room, target, 'r1', { reason: 'typo' }, 'r0')).body).toEqual({ event_id: redactionId });

        await redacted(bob, room, target);
        await synced(bob, room, redactionId);
        const seen = await getEvent(bob, room, target);
        expect(seen.body).toMatchObject({ event_id: target, type: 'm.room.message', sender: '@alice:localhost:8008', content: {} });
        // The served event names its redaction (Sytest "Inbound federation ignores redactions from invalid servers room > v3").
        const unsigned = seen.body.unsigned as Body;
        expect(unsigned.redacted_by).toBe(redactionId);
        expect(unsigned.redacted_because).toMatchObject({ event_id: redactionId, type: 'm.room.redaction', sender: '@alice:localhost:8008' });

        // `redacts` where the room version puts it: top level before 11, in content from 11 on.
        const raw = await pdu(redactionId);
        expect(raw.type).toBe('m.room.redaction');
        if (roomVersion === '11') {
          expect(raw.content).toEqual({ redacts: target, reason: 'typo' });
          expect(raw.redacts).toBeUndefined();
        } else {
          expect(raw.content).toEqual({ reason: 'typo' });
          expect(raw.redacts).toBe(target);
        }
        await synced(bob, room, redactionId);
        const served = await getEvent(bob, room, redactionId);
        expect(served.body).toMatchObject({ type: 'm.room.redaction', redacts: target });
        expect((served.body.content as Body).reason).toBe('typo');
      });

      it('redacts by POST without a transaction ID (the older form), a new redaction each time', async () => {
        const target = await send(alice, room, 'posted');
        const first = await req('POST', `/rooms/${encodeURIComponent(room)}/redact/${encodeURIComponent(target)}`, alice, { reason: 'old form' });
        expect(first.status, JSON.stringify(first.body)).toBe(200);
        await redacted(bob, room, target);
        const again = await req('POST', `/rooms/${encodeURIComponent(room)}/redact/${encodeURIComponent(target)}`, alice, {});
        expect(again.status).toBe(200);
        expect(again.body.event_id).not.toBe(first.body.event_id);
        const refused = await req('POST', `/rooms/${encodeURIComponent(room)}/redact/${encodeURIComponent(target)}`, carol, {});
        expect([refused.status, refused.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
        const bad = await req('POST', `/rooms/${encodeURIComponent(room)}/redact/${encodeURIComponent(target)}`, alice, { reason: 5 });
        expect([bad.status, bad.body.errcode]).toEqual([400, 'M_BAD_JSON']);
        const big = await req('POST', `/rooms/${encodeURIComponent(room)}/redact/${encodeURIComponent(target)}`, alice, { reason: 'x'.repeat(128 * 1024) });
        expect([big.status, big.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
        const notAnEvent = await req('POST', `/rooms/${encodeURIComponent(room)}/redact/not-an-event`, alice, {});
        expect([notAnEvent.status, notAnEvent.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
        const anon = await req('POST', `/rooms/${encodeURIComponent(room)}/redact/${encodeURIComponent(target)}`, '', {});
        expect([anon.status, anon.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
      });

      it('lets a member redact their own event but not, below the redact level, someone else’s', async () => {
        const alices = await send(alice, room, 'from alice');
        const bobs = await send(bob, room, 'from bob');
        await synced(bob, room, bobs);

        const refused = await redact(bob, room, alices, 'b1');
        expect(refused.status).toBe(403);
        expect(refused.body.errcode).toBe('M_FORBIDDEN');

        expect((await redact(bob, room, bobs, 'b2')).status).toBe(200);
        await redacted(alice, room, bobs);
        // The refusal left Alice's event alone.
        expect(((await getEvent(bob, room, alices)).body.content as Body).body).toBe('from alice');

        // Alice (100) may redact Bob's events.
        const bobs2 = await send(bob, room, 'from bob again');
        expect((await redact(alice, room, bobs2, 'a2')).status).toBe(200);
        await redacted(bob, room, bobs2);
      });

      it('lets anyone at the room’s redact level redact others’ events', async () => {
        const own = await newRoom(roomVersion);
        const pl = (await req('GET', `/rooms/${enc(own)}/state/m.room.power_levels/`, alice)).body;
        expect((await req('PUT', `/rooms/${enc(own)}/state/m.room.power_levels/`, alice, { ...pl, redact: 0 })).status).toBe(200);
        const alices = await send(alice, own, 'redactable by all');
        expect((await redact(bob, own, alices, 'b3')).status).toBe(200);
        await redacted(alice, own, alices);
      });

      it('refuses non-members and events that are not in the room', async () => {
        const target = await send(alice, room, 'private words');
        const outsider = await redact(carol, room, target, 'c1');
        expect(outsider.status).toBe(403);
        expect(outsider.body.errcode).toBe('M_FORBIDDEN');

        const elsewhere = await newRoom(roomVersion);
        const foreign = await send(alice, elsewhere, 'in another room');
        const wrongRoom = await redact(alice, room, foreign, 'x1');
        expect(wrongRoom.status).toBe(400);
        expect(wrongRoom.body.errcode).toBe('M_INVALID_PARAM');

        const unknown = await redact(alice, room, '$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'x2');
        expect(unknown.status).toBe(404);
        expect(unknown.body.errcode).toBe('M_NOT_FOUND');
      });
    });

    it('validates its parameters and body', async () => {
      const room = await newRoom('10');
      const target = await send(alice, room, 'hello');
      const badRoom = await redact(alice, 'not-a-room', target, 'v1');
      expect(badRoom.status).toBe(400);
      expect(badRoom.body.errcode).toBe('M_INVALID_PARAM');
      const badEvent = await redact(alice, room, 'not-an-event', 'v2');
      expect(badEvent.status).toBe(400);
      expect(badEvent.body.errcode).toBe('M_INVALID_PARAM');
      expect((await redact(alice, room, target, 'v3', { reason: 5 })).body.errcode).toBe('M_BAD_JSON');
      expect((await redact('', room, target, 'v4')).status).toBe(401);
      // A failed request does not use up its transaction ID.
      const ok = await redact(alice, room, target, 'v3', { reason: 'now valid' });
      expect(ok.status).toBe(200);
      expect((await pdu(ok.body.event_id as string)).content).toEqual({ reason: 'now valid' });
    });

    it('keeps transactions apart per device', async () => {
      const room = await newRoom('11');
      const target = await send(alice, room, 'twice');
      const login = await req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'pw' });
      const second = login.body.access_token as string;
      const a = (await redact(alice, room, target, 'same')).body.event_id;
      const b = (await redact(second, room, target, 'same')).body.event_id;
      expect(typeof a).toBe('string');
      expect(typeof b).toBe('string');
      expect(a).not.toBe(b);
    });
  });
}
