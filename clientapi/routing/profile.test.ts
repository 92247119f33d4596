/** Profile changes are copied into the user's member events in the rooms they are joined to (on SQLite and PostgreSQL). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, clientRequester, registerUser, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

for (const dialect of TEST_DIALECTS) {
  describe(`profile changes in member events [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    const enc = encodeURIComponent;
    const ALICE = '@alice:localhost:8008';
    let alice: string;
    let bob: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      const reg = (u: string): Promise<string> => registerUser(req, u);
      alice = await reg('alice');
      bob = await reg('bob');
    });
    afterAll(() => t?.stop());

    const memberContent = async (roomId: string) => (await req('GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(ALICE)}`, alice)).body;

    it('updates the member event in joined rooms only, keeps other fields, and removes a cleared field', async () => {
      const joined1 = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      const joined2 = (await req('POST', '/createRoom', bob, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${enc(joined2)}/join`, alice, {});
      const left = (await req('POST', '/createRoom', bob, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${enc(left)}/join`, alice, {});
      await req('POST', `/rooms/${enc(left)}/leave`, alice, {});

      expect((await req('PUT', `/profile/${enc(ALICE)}/avatar_url`, alice, { avatar_url: 'mxc://localhost/pic' })).status).toBe(200);
      expect((await req('PUT', `/profile/${enc(ALICE)}/displayname`, alice, { displayname: 'Alice A.' })).status).toBe(200);
      for (const roomId of [joined1, joined2]) {
        expect(await memberContent(roomId)).toEqual({ membership: 'join', displayname: 'Alice A.', avatar_url: 'mxc://localhost/pic' });
      }
      // The room she left keeps her leave event.
      const leftState = (await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: left, state_to_fetch: [{ type: 'm.room.member', state_key: ALICE }] })).state_events[0]!.pdu.content;
      expect(leftState).toEqual({ membership: 'leave' });

      await req('PUT', `/profile/${enc(ALICE)}/avatar_url`, alice, { avatar_url: null });
      expect(await memberContent(joined1)).toEqual({ membership: 'join', displayname: 'Alice A.' });
      // Setting the same value again sends nothing new.
      const before = (await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: joined1 })).latest_event_ids;
      await req('PUT', `/profile/${enc(ALICE)}/displayname`, alice, { displayname: 'Alice A.' });
      expect((await t.server.apis.roomserver.queryLatestEventsAndState({ room_id: joined1 })).latest_event_ids).toEqual(before);
    });
  });
}
