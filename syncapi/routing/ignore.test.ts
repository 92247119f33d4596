/** m.ignored_user_list, on SQLite and PostgreSQL: an ignored user's messages and invites stay out of /sync. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, clientRequester, registerUser, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const ALICE = '@alice:localhost:8008';
const BOB = '@bob:localhost:8008';

const until = async <T>(fn: () => Promise<T | undefined>, ms = 5000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

for (const dialect of TEST_DIALECTS) {
  describe(`m.ignored_user_list [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    let alice: string;
    let bob: string;
    let carol: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      const reg = (u: string): Promise<string> => registerUser(req, u);
      [alice, bob, carol] = [await reg('alice'), await reg('bob'), await reg('carol')];
    }, 60_000);
    afterAll(() => t?.stop());

    it("hides an ignored user's messages (not their membership) and invites", async () => {
      const room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${enc(room)}/join`, bob, {});
      await req('POST', `/rooms/${enc(room)}/join`, carol, {});
      await req('PUT', `/user/${enc(ALICE)}/account_data/m.ignored_user_list`, alice, { ignored_users: { [BOB]: {} } });
      await req('PUT', `/rooms/${enc(room)}/send/m.room.message/b1`, bob, { msgtype: 'm.text', body: 'from bob' });
      const last = (await req('PUT', `/rooms/${enc(room)}/send/m.room.message/c1`, carol, { msgtype: 'm.text', body: 'from carol' })).body.event_id as string;
      const s = await until(async () => {
        const body = (await req('GET', '/sync', alice)).body;
        const tl = (((body.rooms as Body).join as Record<string, Body>)[room]?.timeline as { events: Body[] } | undefined)?.events ?? [];
        return tl.some((e) => e.event_id === last) ? body : undefined;
      });
      const room0 = ((s.rooms as Body).join as Record<string, Body>)[room]!;
      const timeline = (room0.timeline as { events: Body[] }).events;
      expect(timeline.filter((e) => e.type === 'm.room.message').map((e) => (e.content as Body).body)).toEqual(['from carol']);
      // Bob's join is state: it stays.
      expect([...(room0.state as { events: Body[] }).events, ...timeline].some((e) => e.type === 'm.room.member' && e.state_key === BOB)).toBe(true);

      const since = s.next_batch as string;
      const invitedBy = (await req('POST', '/createRoom', bob, { invite: [ALICE] })).body.room_id as string;
      const marker = (await req('PUT', `/rooms/${enc(room)}/send/m.room.message/c2`, carol, { msgtype: 'm.text', body: 'marker' })).body.event_id as string;
      const later = await until(async () => {
        const body = (await req('GET', `/sync?since=${since}`, alice)).body;
        const tl = (((body.rooms as Body).join as Record<string, Body>)[room]?.timeline as { events: Body[] } | undefined)?.events ?? [];
        return tl.some((e) => e.event_id === marker) ? body : undefined;
      });
      expect(((later.rooms as Body).invite as Record<string, Body>)[invitedBy]).toBeUndefined();
      expect(((((await req('GET', '/sync', alice)).body.rooms as Body).invite as Record<string, Body>)[invitedBy])).toBeUndefined();
      // It was there all along: no longer ignored, bob's invite shows.
      await req('PUT', `/user/${enc(ALICE)}/account_data/m.ignored_user_list`, alice, { ignored_users: {} });
      await until(async () => ((((await req('GET', '/sync', alice)).body.rooms as Body).invite as Record<string, Body>)[invitedBy] ? true : undefined));
    });
  });
}
