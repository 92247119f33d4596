/** GET /keys/changes between two sync tokens, and device list changes in /sync, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, clientRequester, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

const BOB = '@bob:localhost:8008';

for (const dialect of TEST_DIALECTS) {
  describe(`device list changes [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    let alice: string;
    let bob: string;
    let carol: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      const reg = async (u: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: u, password: 'pw', device_id: `${u}DEV` })).body.access_token as string;
      alice = await reg('alice');
      bob = await reg('bob');
      carol = await reg('carol');
    }, 60_000);
    afterAll(() => t?.stop());

    const uploadKeys = (token: string, user: string, device: string) =>
      req('POST', '/keys/upload', token, { device_keys: { user_id: user, device_id: device, algorithms: ['m.megolm.v1.aes-sha2'], keys: { [`ed25519:${device}`]: 'k' }, signatures: {} } });

    it('lists the users sharing a room whose devices changed between two tokens', async () => {
      const room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${encodeURIComponent(room)}/join`, bob, {});
      const from = (await req('GET', '/sync', alice)).body.next_batch as string;
      await uploadKeys(bob, BOB, 'bobDEV');
      await uploadKeys(carol, '@carol:localhost:8008', 'carolDEV');
      let to = '';
      const end = Date.now() + 5000;
      for (;;) {
        const s = (await req('GET', `/sync?since=${from}&timeout=500`, alice)).body;
        to = s.next_batch as string;
        if (((s.device_lists as { changed: string[] }).changed ?? []).includes(BOB) || Date.now() > end) break;
      }
      const changes = await req('GET', `/keys/changes?from=${from}&to=${to}`, alice);
      expect(changes.status).toBe(200);
      // Carol shares no room with alice: her change is not alice's business.
      expect(changes.body).toEqual({ changed: [BOB], left: [] });
      expect((await req('GET', `/keys/changes?from=${to}&to=${to}`, alice)).body).toEqual({ changed: [], left: [] });
      expect((await req('GET', '/keys/changes?from=nope&to=s1', alice)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', '/keys/changes', alice)).body.errcode).toBe('M_MISSING_PARAM');
    });

    it("tells a user's syncs about their own new devices", async () => {
      const since = (await req('GET', '/sync', carol)).body.next_batch as string;
      const login = await req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'carol' }, password: 'pw' });
      expect(login.status).toBe(200);
      const end = Date.now() + 5000;
      let changed: string[] = [];
      while (!changed.includes('@carol:localhost:8008') && Date.now() < end) {
        changed = (((await req('GET', `/sync?since=${since}&timeout=500`, carol)).body.device_lists as { changed?: string[] }).changed ?? []);
      }
      expect(changed).toContain('@carol:localhost:8008');
    });

    it('tells room-mates when a device without keys is renamed or deleted (Sytest 41e2e 06-device-lists)', async () => {
      const dave = (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'dave', password: 'pw' })).body.access_token as string;
      const DAVE = '@dave:localhost:8008';
      const room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${encodeURIComponent(room)}/join`, dave, {});
      const changedSince = async (since: string): Promise<boolean> => {
        const end = Date.now() + 5000;
        while (Date.now() < end) {
          const changed = ((await req('GET', `/sync?since=${since}&timeout=500`, alice)).body.device_lists as { changed?: string[] }).changed ?? [];
          if (changed.includes(DAVE)) return true;
        }
        return false;
      };
      const deviceId = (await req('GET', '/account/whoami', dave)).body.device_id as string;
      let since = (await req('GET', '/sync', alice)).body.next_batch as string;
      expect((await req('PUT', `/devices/${deviceId}`, dave, { display_name: 'wibble' })).status).toBe(200);
      expect(await changedSince(since)).toBe(true);
      // A second device, logged in then deleted.
      const second = (await req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'dave' }, password: 'pw' })).body.device_id as string;
      since = (await req('GET', '/sync', alice)).body.next_batch as string;
      const first = await req('DELETE', `/devices/${second}`, dave, {});
      const del = await req('DELETE', `/devices/${second}`, dave, { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'dave' }, password: 'pw', session: first.body.session } });
      expect(del.status).toBe(200);
      expect(await changedSince(since)).toBe(true);
    });

    it('serves the deprecated /events stream from a token', async () => {
      const room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      const start = (await req('GET', '/events?timeout=0', alice)).body;
      expect(typeof start.end).toBe('string');
      // An empty `from` is no token: it starts from now too.
      const empty = await req('GET', '/events?from=&timeout=0', alice);
      expect(empty.status).toBe(200);
      expect(typeof empty.body.end).toBe('string');
      await req('PUT', `/rooms/${encodeURIComponent(room)}/typing/${encodeURIComponent('@alice:localhost:8008')}`, alice, { typing: true, timeout: 5000 });
      const ev = (await req('GET', `/events?from=${start.end as string}&timeout=5000`, alice)).body;
      expect((ev.chunk as Array<Record<string, unknown>>).some((e) => e.type === 'm.typing' && e.room_id === room)).toBe(true);
      expect(ev.start).toBe(start.end);
      expect((await req('GET', '/events?from=garbage', alice)).body.errcode).toBe('M_INVALID_PARAM');
    });

    it('lists the members of a room the user left as left, in /sync and /keys/changes (Sytest "Get left notifs for other users ... when user leaves")', async () => {
      const frank = (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'frank', password: 'pw', device_id: 'frankDEV' })).body.access_token as string;
      const erin = (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'erin', password: 'pw', device_id: 'erinDEV' })).body.access_token as string;
      const ERIN = '@erin:localhost:8008';
      const room = (await req('POST', '/createRoom', frank, { preset: 'public_chat' })).body.room_id as string;
      expect((await req('POST', `/rooms/${encodeURIComponent(room)}/join`, erin, {})).status).toBe(200);
      // Frank's token once he shares the room with erin.
      let from = '';
      const end = Date.now() + 5000;
      for (;;) {
        const s = (await req('GET', `/sync?timeout=0`, frank)).body;
        from = s.next_batch as string;
        const members = (((s.rooms as Record<string, Record<string, Record<string, unknown> | undefined>>).join?.[room]?.timeline as { events: Array<{ state_key?: string }> } | undefined)?.events ?? []).map((e) => e.state_key);
        if (members.includes(ERIN) || Date.now() > end) break;
      }
      expect((await req('POST', `/rooms/${encodeURIComponent(room)}/leave`, frank, {})).status).toBe(200);
      let left: string[] = [];
      let to = from;
      while (!left.includes(ERIN) && Date.now() < end + 5000) {
        const s = (await req('GET', `/sync?since=${from}&timeout=500`, frank)).body;
        to = s.next_batch as string;
        left = (s.device_lists as { left?: string[] }).left ?? [];
      }
      expect(left).toEqual([ERIN]);
      expect((await req('GET', `/keys/changes?from=${from}&to=${to}`, frank)).body).toEqual({ changed: [], left: [ERIN] });
    });

    it('counts a user invited into a room of ours as changed, not left (Sytest 08-cross-signing waits for it)', async () => {
      const gina = (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'gina', password: 'pw', device_id: 'ginaDEV' })).body.access_token as string;
      await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'hugo', password: 'pw', device_id: 'hugoDEV' });
      const HUGO = '@hugo:localhost:8008';
      const room = (await req('POST', '/createRoom', gina, { preset: 'private_chat' })).body.room_id as string;
      const from = (await req('GET', '/sync?timeout=0', gina)).body.next_batch as string;
      expect((await req('POST', `/rooms/${encodeURIComponent(room)}/invite`, gina, { user_id: HUGO })).status).toBe(200);
      let lists: { changed?: string[]; left?: string[] } = {};
      let to = from;
      const end = Date.now() + 5000;
      while (!(lists.changed ?? []).includes(HUGO) && Date.now() < end) {
        const s = (await req('GET', `/sync?since=${from}&timeout=500`, gina)).body;
        to = s.next_batch as string;
        lists = s.device_lists as typeof lists;
      }
      expect(lists).toEqual({ changed: [HUGO], left: [] });
      expect((await req('GET', `/keys/changes?from=${from}&to=${to}`, gina)).body).toEqual({ changed: [HUGO], left: [] });
    });
  });
}
