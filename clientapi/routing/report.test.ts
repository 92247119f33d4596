/** Reporting events (POST /rooms/{roomId}/report/{eventId}) over HTTP on a real monolith, on SQLite and PostgreSQL. */
import { Hono } from 'hono';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matrixErrorHandler } from '../../internal/httputil/index.js';
import { type TestServer, clientRequester, registerUser, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';
import { addReportRoute } from './report.js';

for (const dialect of TEST_DIALECTS) {
  describe(`POST /rooms/{roomId}/report [${dialect}]`, () => {
    let t: TestServer;
    type Body = Record<string, unknown>;
    const req = clientRequester(() => t);
    const enc = encodeURIComponent;
    const reg = (u: string): Promise<string> => registerUser(req, u);
    let txnSeq = 0;
    const send = async (token: string, roomId: string, body: string) =>
      (await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/m${++txnSeq}`, token, { msgtype: 'm.text', body })).body.event_id as string;
    const report = (token: string, roomId: string, eventId: string, body: unknown = {}) => req('POST', `/rooms/${enc(roomId)}/report/${enc(eventId)}`, token, body);

    let alice: string;
    let bob: string;
    let carol: string;
    let room: string;
    let message: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      alice = await reg('alice');
      bob = await reg('bob');
      carol = await reg('carol');
      room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/join/${enc(room)}`, bob, {});
      message = await send(alice, room, 'offensive');
    }, 60_000);
    afterAll(() => t?.stop());

    it('accepts a report from a joined member who can see the event', async () => {
      const r = await report(bob, room, message, { reason: 'rude', score: -100 });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({});
      expect((await report(bob, room, message, { score: 0 })).status).toBe(200);
      expect((await report(bob, room, message)).status).toBe(200);
    });

    it('answers 404 to non-members, unknown events and events of other rooms', async () => {
      const notJoined = await report(carol, room, message, { reason: 'x' });
      expect(notJoined.status).toBe(404);
      expect(notJoined.body.errcode).toBe('M_NOT_FOUND');
      expect((await report(bob, room, '$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).body.errcode).toBe('M_NOT_FOUND');
      expect((await report(bob, room, 'garbage')).status).toBe(404);
      expect((await report(bob, '!nowhere:localhost:8008', message)).status).toBe(404);

      const other = (await req('POST', '/createRoom', bob, { preset: 'public_chat' })).body.room_id as string;
      const there = await send(bob, other, 'elsewhere');
      expect((await report(bob, room, there)).status).toBe(404);

      // After leaving, the member can no longer report.
      await req('POST', `/join/${enc(room)}`, carol, {});
      expect((await report(carol, room, message)).status).toBe(200);
      await req('POST', `/rooms/${enc(room)}/leave`, carol, {});
      expect((await report(carol, room, message)).status).toBe(404);
    });

    it('answers 404 for an event the reporter may not see', async () => {
      const hidden = (await req('POST', '/createRoom', alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] }))
        .body.room_id as string;
      const before = await send(alice, hidden, 'before bob joined');
      expect((await req('POST', `/join/${enc(hidden)}`, bob, {})).status).toBe(200);
      const after = await send(alice, hidden, 'after bob joined');
      expect((await report(bob, hidden, before)).status).toBe(404);
      expect((await report(bob, hidden, after)).status).toBe(200);
    });

    it('checks the score and reason', async () => {
      for (const score of [1, -101, -1.5, '-5', null]) {
        const r = await report(bob, room, message, { score });
        expect(r.status).toBe(400);
        expect(r.body.errcode).toBe('M_INVALID_PARAM');
      }
      expect((await report(bob, room, message, { reason: 5 })).body.errcode).toBe('M_BAD_JSON');
      expect((await report('', room, message)).status).toBe(401);
    });

    it('logs each report for the operators', async () => {
      const lines: Body[] = [];
      const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Body) });
      const app = new Hono();
      app.onError(matrixErrorHandler(pino({ level: 'silent' })));
      const client = new Hono();
      addReportRoute(client, t.server.apis.userapi, t.server.apis.roomserver, log);
      app.route('/_matrix/client', client);
      const res = await app.request(`/_matrix/client/v3/rooms/${enc(room)}/report/${enc(message)}`, {
        method: 'POST',
        body: JSON.stringify({ reason: 'spam', score: -42 }),
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${bob}` },
      });
      expect(res.status).toBe(200);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        msg: 'content reported',
        reporter: '@bob:localhost:8008',
        room_id: room,
        event_id: message,
        event_sender: '@alice:localhost:8008',
        event_type: 'm.room.message',
        reason: 'spam',
        score: -42,
      });
      const refused = await app.request(`/_matrix/client/v3/rooms/${enc(room)}/report/${enc(message)}`, {
        method: 'POST',
        body: '{}',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${carol}` },
      });
      expect(refused.status).toBe(404);
      expect(lines).toHaveLength(1);
    });
  });
}
