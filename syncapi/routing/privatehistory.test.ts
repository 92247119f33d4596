/**
 * Current state in the timeline of a rejoined room under `joined` history visibility (Sytest
 * 31sync/06state.pl "Current state appears in timeline in private history with many messages
 * after"), on SQLite and PostgreSQL: a member event the user could not see when it was sent is
 * still current state, so a client rejoining must find it in the timeline, even behind many
 * messages it may not see.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientRequester, registerUser, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;

const until = async (fn: () => Promise<boolean>, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

for (const dialect of TEST_DIALECTS) {
  describe(`current state in a rejoined private-history room [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
    }, 60_000);
    afterAll(() => t?.stop());

    /** Syncs `token` from `since` until `roomId`'s joined timeline has an event with ID `eventId`; that sync. */
    async function syncUntilSeen(token: string, since: string, roomId: string, eventId: string): Promise<Body> {
      let body: Body = {};
      await until(async () => {
        body = (await req('GET', `/sync?timeout=0${since ? `&since=${encodeURIComponent(since)}` : ''}`, token)).body;
        const room = ((body.rooms as Body | undefined)?.join as Record<string, Body> | undefined)?.[roomId];
        return ((room?.timeline as { events?: Body[] } | undefined)?.events ?? []).some((e) => e.event_id === eventId);
      });
      return body;
    }

    it.each([5, 50])('shows a current-state join the user could not see, behind %i hidden messages, in the timeline of a rejoined room', async (n) => {
      const creator = await registerUser(req, `creator${n}`);
      const syncer = await registerUser(req, `syncer${n}`);
      const invitee = await registerUser(req, `invitee${n}`);
      const inviteeId = `@invitee${n}:localhost:8008`;
      const roomId = (await req('POST', '/createRoom', creator, { preset: 'public_chat' })).body.room_id as string;
      const enc = encodeURIComponent(roomId);
      expect((await req('POST', `/rooms/${enc}/join`, syncer, {})).status).toBe(200);
      expect((await req('PUT', `/rooms/${enc}/state/m.room.history_visibility`, creator, { history_visibility: 'joined' })).status).toBe(200);
      expect((await req('POST', `/rooms/${enc}/invite`, creator, { user_id: inviteeId })).status).toBe(200);
      const since = (await req('GET', '/sync?timeout=0', syncer)).body.next_batch as string;
      expect((await req('POST', `/rooms/${enc}/leave`, syncer, {})).status).toBe(200);
      const inviteeJoin = (await req('POST', `/rooms/${enc}/join`, invitee, {})).body;
      expect(inviteeJoin.room_id).toBe(roomId);
      for (let i = 1; i <= n; i++) {
        expect((await req('PUT', `/rooms/${enc}/send/m.room.message/m${i}`, creator, { msgtype: 'm.text', body: `Message ${i}` })).status).toBe(200);
      }
      const rejoin = (await req('POST', `/rooms/${enc}/join`, syncer, {})).status;
      expect(rejoin).toBe(200);
      const state = (await req('GET', `/rooms/${enc}/state/m.room.member/${encodeURIComponent('@syncer' + n + ':localhost:8008')}`, syncer)).body;
      expect(state.membership).toBe('join');
      // The syncer's own rejoin is the newest event of the room.
      const members = (await req('GET', `/rooms/${enc}/messages?dir=b&limit=1`, syncer)).body.chunk as Body[];
      const body = await syncUntilSeen(syncer, since, roomId, members[0]!.event_id as string);
      const room = ((body.rooms as Body).join as Record<string, Body>)[roomId]!;
      const timeline = (room.timeline as { events: Body[] }).events;
      expect(timeline.some((e) => e.type === 'm.room.member' && e.state_key === inviteeId && (e.content as Body).membership === 'join')).toBe(true);
      // None of the messages sent while the syncer was away is shown.
      expect(timeline.filter((e) => e.type === 'm.room.message')).toEqual([]);
    });
  });
}
