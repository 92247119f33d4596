/** /messages, /context, /event and /members over HTTP on a real monolith, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, clientRequester, registerUser, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const ALICE = '@alice:localhost:8008';
const BOB = '@bob:localhost:8008';

const until = async (fn: () => Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};
const bodies = (chunk: unknown) => (chunk as Body[]).filter((e) => e.type === 'm.room.message').map((e) => (e.content as Body).body);

for (const dialect of TEST_DIALECTS) {
  describe(`/messages, /context, /event and /members [${dialect}]`, () => {
    let t: TestServer;
    const req = clientRequester(() => t);
    /** Waits until syncapi has the event (its consumer runs behind the send). */
    const synced = (token: string, roomId: string, eventId: string) => until(async () => (await req('GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`, token)).status === 200);
    const send = async (token: string, roomId: string, body: string, txn: string, type = 'm.room.message') =>
      (await req('PUT', `/rooms/${enc(roomId)}/send/${type}/${txn}`, token, { msgtype: 'm.text', body })).body.event_id as string;

    let alice: string;
    let bob: string;
    let carol: string;
    let room: string;
    const sent: string[] = [];

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      const reg = (u: string): Promise<string> => registerUser(req, u);
      alice = await reg('alice');
      bob = await reg('bob');
      carol = await reg('carol');
      room = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      for (let i = 0; i < 12; i++) sent.push(await send(alice, room, `m${i}`, `t${i}`));
      await synced(alice, room, sent[11]!);
    }, 60_000);
    afterAll(() => t?.stop());

    it('pages backwards from the newest event and forwards from the oldest, with end tokens', async () => {
      const first = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=5`, alice);
      expect(first.status).toBe(200);
      expect(bodies(first.body.chunk)).toEqual(['m11', 'm10', 'm9', 'm8', 'm7']);
      const second = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=5&from=${first.body.end as string}`, alice);
      expect(bodies(second.body.chunk)).toEqual(['m6', 'm5', 'm4', 'm3', 'm2']);
      expect(second.body.start).toBe(first.body.end);
      // Back to the room's creation: the page ends with m.room.create; the page after it is empty and has no end token.
      const rest = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=100&from=${second.body.end as string}`, alice);
      const chunk = rest.body.chunk as Body[];
      expect(chunk[chunk.length - 1]!.type).toBe('m.room.create');
      const none = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=100&from=${rest.body.end as string}`, alice);
      expect(none.body.chunk).toEqual([]);
      expect(none.body.end).toBeUndefined();

      // Forwards from a backwards page's end returns what was skipped, oldest first.
      const fwd = await req('GET', `/rooms/${enc(room)}/messages?dir=f&limit=3&from=${second.body.end as string}`, alice);
      expect(bodies(fwd.body.chunk)).toEqual(['m2', 'm3', 'm4']);
      // `to` bounds the page.
      const bounded = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=50&from=${first.body.end as string}&to=${second.body.end as string}`, alice);
      expect(bodies(bounded.body.chunk)).toEqual(['m6', 'm5', 'm4', 'm3', 'm2']);
    });

    it('pages back from a /sync prev_batch and applies filters', async () => {
      const s = (await req('GET', `/sync?filter=${enc(JSON.stringify({ room: { timeline: { limit: 2 } } }))}`, alice)).body;
      const tl = ((s.rooms as Body).join as Record<string, Body>)[room]!.timeline as Body;
      expect(bodies(tl.events)).toEqual(['m10', 'm11']);
      expect(tl.limited).toBe(true);
      const back = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=2&from=${tl.prev_batch as string}`, alice);
      expect(bodies(back.body.chunk)).toEqual(['m9', 'm8']);

      const onlyState = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=3&filter=${enc(JSON.stringify({ not_types: ['m.room.message'] }))}`, alice);
      expect((onlyState.body.chunk as Body[]).every((e) => e.type !== 'm.room.message')).toBe(true);
      expect((onlyState.body.chunk as Body[]).length).toBe(3);

      const lazy = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=1&filter=${enc(JSON.stringify({ lazy_load_members: true }))}`, alice);
      expect((lazy.body.state as Body[]).map((e) => e.state_key)).toEqual([ALICE]);
    });

    it('refuses bad parameters and strangers to a private room', async () => {
      expect((await req('GET', `/rooms/${enc(room)}/messages?dir=x`, alice)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', `/rooms/${enc(room)}/messages?dir=b&from=garbage`, alice)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=-1`, alice)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', `/rooms/${enc(room)}/messages?dir=b&filter=%7Bnope`, alice)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await req('GET', `/rooms/not-a-room/messages?dir=b`, alice)).body.errcode).toBe('M_INVALID_PARAM');
      const priv = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      const r = await req('GET', `/rooms/${enc(priv)}/messages?dir=b`, carol);
      expect(r.status).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
      expect((await req('GET', `/rooms/${enc(priv)}/messages?dir=b`, '')).status).toBe(401);
    });

    it('hides history before the join when history_visibility is joined', async () => {
      const r = (await req('POST', '/createRoom', alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] })).body.room_id as string;
      await send(alice, r, 'before bob', 'hv1');
      await req('POST', `/rooms/${enc(r)}/join`, bob, {});
      const after = await send(alice, r, 'after bob', 'hv2');
      await synced(alice, r, after);
      const page = await req('GET', `/rooms/${enc(r)}/messages?dir=b&limit=50`, bob);
      expect(bodies(page.body.chunk)).toEqual(['after bob']);
      const mine = await req('GET', `/rooms/${enc(r)}/messages?dir=b&limit=50`, alice);
      expect(bodies(mine.body.chunk)).toEqual(['after bob', 'before bob']);
      // An initial sync for bob shows the same.
      const s = (await req('GET', '/sync', bob)).body;
      const tl = ((s.rooms as Body).join as Record<string, Body>)[r]!.timeline as Body;
      expect(bodies(tl.events)).toEqual(['after bob']);
    });

    it('gives an event with its context, and single events', async () => {
      const ctx = await req('GET', `/rooms/${enc(room)}/context/${enc(sent[5]!)}?limit=4`, alice);
      expect(ctx.status).toBe(200);
      expect((ctx.body.event as Body).event_id).toBe(sent[5]);
      expect(bodies(ctx.body.events_before)).toEqual(['m4', 'm3']);
      expect(bodies(ctx.body.events_after)).toEqual(['m6', 'm7']);
      expect((ctx.body.state as Body[]).some((e) => e.type === 'm.room.create')).toBe(true);
      const next = await req('GET', `/rooms/${enc(room)}/messages?dir=f&limit=1&from=${ctx.body.end as string}`, alice);
      expect(bodies(next.body.chunk)).toEqual(['m8']);
      const prev = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=1&from=${ctx.body.start as string}`, alice);
      expect(bodies(prev.body.chunk)).toEqual(['m2']);

      const one = await req('GET', `/rooms/${enc(room)}/event/${enc(sent[0]!)}`, alice);
      expect((one.body.content as Body).body).toBe('m0');
      // The sending device sees its transaction ID.
      expect((one.body.unsigned as Body | undefined)?.transaction_id).toBe('t0');
      expect((await req('GET', `/rooms/${enc(room)}/event/$nope`, alice)).body.errcode).toBe('M_NOT_FOUND');
      expect((await req('GET', `/rooms/${enc(room)}/context/$nope`, alice)).body.errcode).toBe('M_NOT_FOUND');
    });

    it('lists members now, at a token, by membership, and for a member who left as of their leave', async () => {
      const r = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${enc(r)}/join`, bob, {});
      const marker = await send(alice, r, 'marker', 'mk');
      await synced(alice, r, marker);
      const s = (await req('GET', '/sync', alice)).body;
      const token = s.next_batch as string;
      await req('POST', `/rooms/${enc(r)}/join`, carol, {});
      await req('POST', `/rooms/${enc(r)}/leave`, bob, {});
      const last = await send(alice, r, 'after', 'mk2');
      await synced(alice, r, last);

      const ids = (b: Body) => (b.chunk as Body[]).map((e) => e.state_key).sort();
      expect(ids((await req('GET', `/rooms/${enc(r)}/members`, alice)).body)).toEqual([ALICE, BOB, '@carol:localhost:8008']);
      expect(ids((await req('GET', `/rooms/${enc(r)}/members?membership=join`, alice)).body)).toEqual([ALICE, '@carol:localhost:8008']);
      expect(ids((await req('GET', `/rooms/${enc(r)}/members?not_membership=join`, alice)).body)).toEqual([BOB]);
      expect(ids((await req('GET', `/rooms/${enc(r)}/members?at=${token}`, alice)).body)).toEqual([ALICE, BOB]);
      // Bob, who left after carol joined, sees the members as of his leave.
      expect(ids((await req('GET', `/rooms/${enc(r)}/members?membership=join`, bob)).body)).toEqual([ALICE, '@carol:localhost:8008']);
      const stranger = (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'dave', password: 'pw' })).body.access_token as string;
      const priv = (await req('POST', '/createRoom', alice, {})).body.room_id as string;
      expect((await req('GET', `/rooms/${enc(priv)}/members`, stranger)).status).toBe(403);
    });

    it('pages a departed room back from the leave, without what came after', async () => {
      const r = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      await req('POST', `/rooms/${enc(r)}/join`, carol, {});
      await send(carol, r, 'carol before leaving', 'd1');
      await req('POST', `/rooms/${enc(r)}/leave`, carol, {});
      const after = await send(alice, r, 'after carol left', 'd2');
      await synced(alice, r, after);
      const page = await req('GET', `/rooms/${enc(r)}/messages?dir=b&limit=10`, carol);
      expect(bodies(page.body.chunk)).toEqual(['carol before leaving']);
      expect((page.body.chunk as Body[])[0]!.type).toBe('m.room.member');
    });

    it('gives topological tokens, taken back by /messages, /context and /members, and refuses malformed ones', async () => {
      const first = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=3`, alice);
      expect(first.body.start).toMatch(/^t\d+_\d+$/);
      expect(first.body.end).toMatch(/^t\d+_-?\d+$/);
      const again = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=3&from=${first.body.start as string}`, alice);
      expect(again.body.chunk).toEqual(first.body.chunk);
      const members = await req('GET', `/rooms/${enc(room)}/members?at=${first.body.end as string}`, alice);
      expect(members.status).toBe(200);
      expect((members.body.chunk as Body[]).map((e) => e.state_key)).toEqual([ALICE]);
      for (const bad of ['t1_x', 't_1', 's', 'tt1_1']) {
        const r = await req('GET', `/rooms/${enc(room)}/messages?dir=b&from=${bad}`, alice);
        expect([bad, r.status, r.body.errcode]).toEqual([bad, 400, 'M_INVALID_PARAM']);
      }
      expect((await req('GET', `/rooms/${enc(room)}/members?at=nope`, alice)).body.errcode).toBe('M_INVALID_PARAM');
    });
  });
}
