/** Typing, receipts, read markers, to-device messages and presence, end to end through /sync, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, clientRequester, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

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
const joinedRoom = (s: Body, roomId: string) => ((s.rooms as Body).join as Record<string, Body>)[roomId];
const ephemeralOf = (s: Body, roomId: string, type: string) => ((joinedRoom(s, roomId)?.ephemeral as { events: Body[] } | undefined)?.events ?? []).find((e) => e.type === type);

for (const dialect of TEST_DIALECTS) {
  describe(`typing, receipts, read markers, to-device and presence through /sync [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    let alice: string;
    let bob: string;
    let bob2: string;
    let room: string;
    let message: string;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      const reg = async (u: string, device: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: u, password: 'pw', device_id: device })).body.access_token as string;
      alice = await reg('alice', 'ALICEDEV');
      bob = await reg('bob', 'BOBDEV');
      bob2 = (await req('POST', '/login', '', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: 'pw', device_id: 'BOBDEV2' })).body.access_token as string;
      room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${enc(room)}/join`, bob, {});
      message = (await req('PUT', `/rooms/${enc(room)}/send/m.room.message/m1`, alice, { msgtype: 'm.text', body: 'hello' })).body.event_id as string;
      await until(async () => ((await req('GET', `/rooms/${enc(room)}/event/${enc(message)}`, bob)).status === 200 ? true : undefined));
    }, 60_000);
    afterAll(() => t?.stop());

    it('shows typing in initial and incremental syncs, wakes a waiting sync, and ends it on request or timeout', async () => {
      const before = (await req('GET', '/sync', bob)).body.next_batch as string;
      const waiting = req('GET', `/sync?since=${before}&timeout=5000`, bob);
      await new Promise((r) => setTimeout(r, 50));
      expect((await req('PUT', `/rooms/${enc(room)}/typing/${enc(ALICE)}`, alice, { typing: true, timeout: 10000 })).status).toBe(200);
      const woke = (await waiting).body;
      expect(ephemeralOf(woke, room, 'm.typing')?.content).toEqual({ user_ids: [ALICE] });
      expect(ephemeralOf((await req('GET', '/sync', bob)).body, room, 'm.typing')?.content).toEqual({ user_ids: [ALICE] });

      await req('PUT', `/rooms/${enc(room)}/typing/${enc(ALICE)}`, alice, { typing: false });
      const stopped = await until(async () => {
        const s = (await req('GET', `/sync?since=${woke.next_batch as string}`, bob)).body;
        return ephemeralOf(s, room, 'm.typing') ? s : undefined;
      });
      expect(ephemeralOf(stopped, room, 'm.typing')?.content).toEqual({ user_ids: [] });

      await req('PUT', `/rooms/${enc(room)}/typing/${enc(ALICE)}`, alice, { typing: true, timeout: 100 });
      await until(async () => ((ephemeralOf((await req('GET', '/sync', bob)).body, room, 'm.typing')?.content as Body | undefined)?.user_ids as string[] | undefined)?.length === 1 ? true : undefined);
      // Once it has run out, an initial sync says nobody types.
      await until(async () => {
        const content = ephemeralOf((await req('GET', '/sync', bob)).body, room, 'm.typing')?.content as Body | undefined;
        return (content?.user_ids as string[] | undefined)?.length === 0 ? true : undefined;
      });
    });

    it('tells a sync from before the user joined that typing in the room stopped (Sytest "Typing can be explicitly stopped")', async () => {
      // Bob's token predates the room: the room is new to that sync, and nobody types in it by then.
      const before = (await req('GET', '/sync', bob)).body.next_batch as string;
      const other = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      expect((await req('POST', `/rooms/${enc(other)}/join`, bob, {})).status).toBe(200);
      expect((await req('PUT', `/rooms/${enc(other)}/typing/${enc(ALICE)}`, alice, { typing: true, timeout: 30000 })).status).toBe(200);
      expect((await req('PUT', `/rooms/${enc(other)}/typing/${enc(ALICE)}`, alice, { typing: false })).status).toBe(200);
      const s = await until(async () => {
        const body = (await req('GET', `/sync?since=${before}&timeout=0`, bob)).body;
        return joinedRoom(body, other) ? body : undefined;
      });
      expect(ephemeralOf(s, other, 'm.typing')?.content).toEqual({ user_ids: [] });
      // An initial sync tells of the room's typing too once anyone has typed there (Sytest polls from one).
      expect(ephemeralOf((await req('GET', '/sync?timeout=0', bob)).body, other, 'm.typing')?.content).toEqual({ user_ids: [] });
    });

    it('refuses typing for someone else, outside the room, or with a bad body', async () => {
      expect((await req('PUT', `/rooms/${enc(room)}/typing/${enc(BOB)}`, alice, { typing: true })).status).toBe(403);
      const other = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      expect((await req('PUT', `/rooms/${enc(other)}/typing/${enc(BOB)}`, bob, { typing: true })).status).toBe(403);
      expect((await req('PUT', `/rooms/${enc(room)}/typing/${enc(BOB)}`, bob, { typing: 'yes' })).body.errcode).toBe('M_BAD_JSON');
      expect((await req('PUT', `/rooms/${enc(room)}/typing/${enc(BOB)}`, bob, { typing: true, timeout: -5 })).body.errcode).toBe('M_BAD_JSON');
    });

    it('delivers receipts to the room, private receipts only to their owner, and read markers as account data', async () => {
      expect((await req('POST', `/rooms/${enc(room)}/receipt/m.read/${enc(message)}`, bob, {})).status).toBe(200);
      const seen = await until(async () => {
        const s = (await req('GET', '/sync', alice)).body;
        return ephemeralOf(s, room, 'm.receipt') ? s : undefined;
      });
      const content = ephemeralOf(seen, room, 'm.receipt')!.content as Record<string, Record<string, Record<string, Body>>>;
      expect(typeof content[message]!['m.read']![BOB]!.ts).toBe('number');

      const since = seen.next_batch as string;
      await req('POST', `/rooms/${enc(room)}/receipt/m.read.private/${enc(message)}`, alice, {});
      const own = await until(async () => {
        const s = (await req('GET', '/sync', alice)).body;
        const c = ephemeralOf(s, room, 'm.receipt')?.content as Record<string, Body> | undefined;
        return c?.[message]?.['m.read.private'] ? c : undefined;
      });
      expect(Object.keys(own[message]!['m.read.private'] as Body)).toEqual([ALICE]);
      const bobView = ephemeralOf((await req('GET', '/sync', bob)).body, room, 'm.receipt')?.content as Record<string, Body>;
      expect(bobView[message]!['m.read.private']).toBeUndefined();

      // Threaded receipts carry their thread.
      await req('POST', `/rooms/${enc(room)}/receipt/m.read/${enc(message)}`, alice, { thread_id: 'main' });
      await until(async () => {
        const s = (await req('GET', `/sync?since=${since}`, bob)).body;
        const c = ephemeralOf(s, room, 'm.receipt')?.content as Record<string, Record<string, Record<string, Body>>> | undefined;
        return c?.[message]?.['m.read']?.[ALICE]?.thread_id === 'main' ? true : undefined;
      });

      expect((await req('POST', `/rooms/${enc(room)}/read_markers`, bob, { 'm.fully_read': message, 'm.read': message })).status).toBe(200);
      const marker = await until(async () => {
        const s = (await req('GET', '/sync', bob)).body;
        const ad = ((joinedRoom(s, room)?.account_data as { events: Body[] }).events ?? []).find((e) => e.type === 'm.fully_read');
        return ad;
      });
      expect(marker.content).toEqual({ event_id: message });

      expect((await req('POST', `/rooms/${enc(room)}/receipt/m.bogus/${enc(message)}`, bob, {})).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('POST', `/rooms/${enc(room)}/receipt/m.read/not-an-event`, bob, {})).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('POST', `/rooms/${enc(room)}/read_markers`, bob, { 'm.fully_read': 5 })).body.errcode).toBe('M_BAD_JSON');
    });

    it('delivers to-device messages once per device, to every device for *, and drops retried transactions', async () => {
      const s0 = (await req('GET', '/sync', bob2)).body.next_batch as string;
      const body = { messages: { [BOB]: { BOBDEV2: { n: 1 } } } };
      expect((await req('PUT', '/sendToDevice/m.test/txn1', alice, body)).status).toBe(200);
      expect((await req('PUT', '/sendToDevice/m.test/txn1', alice, body)).status).toBe(200);
      const got = await until(async () => {
        const s = (await req('GET', `/sync?since=${s0}`, bob2)).body;
        return ((s.to_device as { events: Body[] }).events.length > 0 ? s : undefined);
      });
      expect((got.to_device as { events: Body[] }).events).toEqual([{ sender: ALICE, type: 'm.test', content: { n: 1 } }]);
      // Syncing on from the new token acknowledges them: they are not given again.
      const again = (await req('GET', `/sync?since=${got.next_batch as string}`, bob2)).body;
      expect((again.to_device as { events: Body[] }).events).toEqual([]);
      // Retrying from the old token after the acknowledgement finds nothing either.
      expect(((await req('GET', `/sync?since=${got.next_batch as string}`, bob2)).body.to_device as { events: unknown[] }).events).toEqual([]);

      await req('PUT', '/sendToDevice/m.test/txn2', alice, { messages: { [BOB]: { '*': { n: 2 } } } });
      for (const token of [bob, bob2]) {
        await until(async () => (((await req('GET', '/sync', token)).body.to_device as { events: Body[] }).events.some((e) => (e.content as Body).n === 2) ? true : undefined));
      }
      expect((await req('PUT', '/sendToDevice/m.test/txn3', alice, { messages: { nobody: {} } })).body.errcode).toBe('M_BAD_JSON');
      expect((await req('PUT', '/sendToDevice/m.test/txn4', alice, { messages: [] })).body.errcode).toBe('M_BAD_JSON');
    });

    it('sets and reads presence, and shows room-mates their changes in /sync', async () => {
      expect((await req('PUT', `/presence/${enc(ALICE)}/status`, alice, { presence: 'unavailable', status_msg: 'away' })).status).toBe(200);
      const got = (await req('GET', `/presence/${enc(ALICE)}/status`, bob)).body;
      expect(got.presence).toBe('unavailable');
      expect(got.status_msg).toBe('away');
      expect(typeof got.last_active_ago).toBe('number');
      expect((await req('PUT', `/presence/${enc(ALICE)}/status`, bob, { presence: 'online' })).status).toBe(403);
      expect((await req('PUT', `/presence/${enc(BOB)}/status`, bob, { presence: 'asleep' })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', `/presence/${enc('@nobody:localhost:8008')}/status`, bob)).body.presence).toBe('offline');

      const s = (await req('GET', '/sync?set_presence=offline', bob)).body;
      const events = (s.presence as { events: Body[] }).events;
      expect(events.find((e) => e.sender === ALICE)?.content).toMatchObject({ presence: 'unavailable', status_msg: 'away' });
      const waiting = req('GET', `/sync?since=${s.next_batch as string}&timeout=5000&set_presence=offline`, bob);
      await new Promise((r) => setTimeout(r, 50));
      await req('PUT', `/presence/${enc(ALICE)}/status`, alice, { presence: 'online' });
      const woke = (await waiting).body;
      expect((woke.presence as { events: Body[] }).events.find((e) => e.sender === ALICE)?.content).toMatchObject({ presence: 'online', currently_active: true, status_msg: 'away' });
      expect((await req('GET', '/sync?set_presence=sleeping', bob)).body.errcode).toBe('M_INVALID_PARAM');
    });
  });
}
