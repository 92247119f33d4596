/**
 * Relations and threads over HTTP on a real monolith, once on SQLite and once on PostgreSQL:
 * GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]] (filters, paging both
 * ways, recurse), GET /v1/rooms/{roomId}/threads, bundled aggregations (m.thread, m.reference,
 * m.replace) in /event, /context, /messages, /relations, /threads and limited /sync timelines,
 * redactions, ignored users, history visibility and errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const HS = 'localhost:8008';
const ALICE = `@alice:${HS}`;

/** The bundled aggregations of a served event. */
const relationsOf = (e: Body | undefined): Body | undefined => ((e?.unsigned as Body | undefined)?.['m.relations'] as Body | undefined) ?? undefined;

for (const dialect of TEST_DIALECTS) {
  describe(`relations and threads [${dialect}]`, () => {
    let t: TestServer;
    let alice: string;
    let bob: string;
    let carol: string;
    let dave: string;

    const req = (method: string, p: string, token: string, body?: unknown, version = 'v3') =>
      getJson(`${t.baseUrl}/_matrix/client/${version}${p}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    const v1 = (p: string, token: string) => req('GET', p, token, undefined, 'v1');
    const rels = (token: string, roomId: string, eventId: string, rest = '', query = '') => v1(`/rooms/${enc(roomId)}/relations/${enc(eventId)}${rest}${query ? `?${query}` : ''}`, token);
    const ids = (chunk: unknown) => (chunk as Body[]).map((e) => e.event_id as string);
    const until = async (fn: () => Promise<boolean>, ms = 10000) => {
      const end = Date.now() + ms;
      while (!(await fn())) {
        if (Date.now() > end) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    let txn = 0;
    const send = async (token: string, roomId: string, content: Body, type = 'm.room.message') => {
      const r = await req('PUT', `/rooms/${enc(roomId)}/send/${type}/r${++txn}`, token, content);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.event_id as string;
    };
    const msg = (token: string, roomId: string, body: string) => send(token, roomId, { msgtype: 'm.text', body });
    const thread = (token: string, roomId: string, root: string, body: string) => send(token, roomId, { msgtype: 'm.text', body, 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const edit = (token: string, roomId: string, original: string, body: string, withNewContent = true) =>
      send(token, roomId, { msgtype: 'm.text', body: `* ${body}`, ...(withNewContent ? { 'm.new_content': { msgtype: 'm.text', body } } : {}), 'm.relates_to': { rel_type: 'm.replace', event_id: original } });
    const reference = (token: string, roomId: string, target: string) => send(token, roomId, { msgtype: 'm.text', body: 'see that', 'm.relates_to': { rel_type: 'm.reference', event_id: target } });
    const react = (token: string, roomId: string, target: string, key: string) => send(token, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key } }, 'm.reaction');
    const redact = async (token: string, roomId: string, eventId: string) => {
      const r = await req('PUT', `/rooms/${enc(roomId)}/redact/${enc(eventId)}/x${++txn}`, token, {});
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    };
    /** Waits until syncapi has processed everything sent to the room so far (its consumer is in order per room). */
    const flush = async (roomId: string) => {
      const marker = await send(alice, roomId, {}, 'org.example.marker');
      await until(async () => (await req('GET', `/rooms/${enc(roomId)}/event/${enc(marker)}`, alice)).status === 200);
    };
    const createRoom = async (body: Body = { preset: 'public_chat' }) => (await req('POST', '/createRoom', alice, body)).body.room_id as string;
    const join = async (token: string, roomId: string) => expect((await req('POST', `/rooms/${enc(roomId)}/join`, token, {})).status).toBe(200);
    const getEvent = async (token: string, roomId: string, eventId: string) => {
      const r = await req('GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`, token);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body;
    };

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      const reg = async (u: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: u, password: 'pw' })).body.access_token as string;
      alice = await reg('alice');
      bob = await reg('bob');
      carol = await reg('carol');
      dave = await reg('dave');
    }, 60000);
    afterAll(() => t?.stop());

    it('lists annotations, references, edits and thread replies, filtered by rel_type and event type', async () => {
      const room = await createRoom();
      await join(bob, room);
      const root = await msg(alice, room, 'root');
      const reaction = await react(bob, room, root, '👍');
      const ref = await reference(bob, room, root);
      const ed = await edit(alice, room, root, 'root, edited');
      const reply = await thread(bob, room, root, 'in a thread');
      await msg(alice, room, 'unrelated');
      await flush(room);

      const all = await rels(alice, room, root);
      expect(all.status).toBe(200);
      expect(ids(all.body.chunk)).toEqual([reply, ed, ref, reaction]);
      expect(all.body.next_batch).toBeUndefined();
      expect(all.body.prev_batch).toBeUndefined();
      expect(all.body.recursion_depth).toBeUndefined();
      const first = (all.body.chunk as Body[])[3]!;
      expect(first).toMatchObject({ type: 'm.reaction', sender: `@bob:${HS}`, room_id: room });
      expect(((first.content as Body)['m.relates_to'] as Body).key).toBe('👍');

      expect(ids((await rels(alice, room, root, '/m.annotation')).body.chunk)).toEqual([reaction]);
      expect(ids((await rels(alice, room, root, '/m.annotation/m.reaction')).body.chunk)).toEqual([reaction]);
      expect(ids((await rels(alice, room, root, '/m.annotation/m.room.message')).body.chunk)).toEqual([]);
      expect(ids((await rels(alice, room, root, '/m.thread')).body.chunk)).toEqual([reply]);
      expect(ids((await rels(alice, room, root, '/m.replace/m.room.message')).body.chunk)).toEqual([ed]);
      expect(ids((await rels(alice, room, root, '/m.reference')).body.chunk)).toEqual([ref]);
      // A reference to nothing related and an event without children both give an empty chunk.
      expect((await rels(alice, room, reply)).body).toEqual({ chunk: [] });
    });

    it('pages both ways with next_batch, prev_batch and to, and takes /sync and /messages tokens', async () => {
      const room = await createRoom();
      const root = await msg(alice, room, 'root');
      const before = (await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=1`, alice)).body.start as string;
      const c: string[] = [];
      for (let i = 0; i < 7; i++) c.push(await thread(alice, room, root, `c${i}`));
      await flush(room);

      const b1 = await rels(alice, room, root, '', 'limit=3');
      expect(ids(b1.body.chunk)).toEqual([c[6], c[5], c[4]]);
      expect(typeof b1.body.next_batch).toBe('string');
      const b2 = await rels(alice, room, root, '', `limit=3&from=${enc(b1.body.next_batch as string)}`);
      expect(ids(b2.body.chunk)).toEqual([c[3], c[2], c[1]]);
      expect(b2.body.prev_batch).toBe(b1.body.next_batch);
      const b3 = await rels(alice, room, root, '', `limit=3&from=${enc(b2.body.next_batch as string)}`);
      expect(ids(b3.body.chunk)).toEqual([c[0]]);
      expect(b3.body.next_batch).toBeUndefined();

      const f1 = await rels(alice, room, root, '', 'dir=f&limit=3');
      expect(ids(f1.body.chunk)).toEqual([c[0], c[1], c[2]]);
      const f2 = await rels(alice, room, root, '', `dir=f&limit=3&from=${enc(f1.body.next_batch as string)}`);
      expect(ids(f2.body.chunk)).toEqual([c[3], c[4], c[5]]);
      const f3 = await rels(alice, room, root, '', `dir=f&limit=3&from=${enc(f2.body.next_batch as string)}`);
      expect(ids(f3.body.chunk)).toEqual([c[6]]);
      expect(f3.body.next_batch).toBeUndefined();
      // Exactly `limit` left: no next page is promised.
      const exact = await rels(alice, room, root, '', `dir=f&limit=1&from=${enc(f2.body.next_batch as string)}`);
      expect(ids(exact.body.chunk)).toEqual([c[6]]);
      expect(exact.body.next_batch).toBeUndefined();

      // `to` stops a page: backwards from the newest down to (not including) the end of the first forwards page.
      const bounded = await rels(alice, room, root, '', `limit=50&to=${enc(f1.body.next_batch as string)}`);
      expect(ids(bounded.body.chunk)).toEqual([c[6], c[5], c[4], c[3]]);
      // A /sync next_batch pages back over everything; a /messages token from before the children finds none backwards, all forwards.
      const next = (await req('GET', '/sync?timeout=0', alice)).body.next_batch as string;
      expect(ids((await rels(alice, room, root, '', `from=${enc(next)}`)).body.chunk)).toHaveLength(7);
      expect(ids((await rels(alice, room, root, '', `from=${enc(before)}`)).body.chunk)).toEqual([]);
      expect(ids((await rels(alice, room, root, '', `dir=f&from=${enc(before)}`)).body.chunk)).toHaveLength(7);
    });

    it('recurses through relations of relations, with the filters at every level, and says how deep', async () => {
      const room = await createRoom();
      const root = await msg(alice, room, 'root');
      const t1 = await thread(alice, room, root, 't1');
      const r1 = await react(alice, room, t1, '🎉');
      const e1 = await edit(alice, room, t1, 't1 edited');
      const deep = await reference(alice, room, e1);
      const deeper = await reference(alice, room, deep);
      await flush(room);

      const direct = await rels(alice, room, root);
      expect(ids(direct.body.chunk)).toEqual([t1]);
      expect(direct.body.recursion_depth).toBeUndefined();
      const rec = await rels(alice, room, root, '', 'recurse=true');
      expect(ids(rec.body.chunk)).toEqual([deep, e1, r1, t1]);
      expect(rec.body.recursion_depth).toBe(3);
      expect(deeper).toBeTypeOf('string');
      const unstable = await rels(alice, room, root, '', 'org.matrix.msc3981.recurse=true');
      expect(ids(unstable.body.chunk)).toEqual([deep, e1, r1, t1]);
      const off = await rels(alice, room, root, '', 'recurse=false');
      expect(ids(off.body.chunk)).toEqual([t1]);
      expect(off.body.recursion_depth).toBe(1);
      // m.thread at every level: the annotation and edit of t1 do not relate by m.thread.
      expect(ids((await rels(alice, room, root, '/m.thread', 'recurse=true')).body.chunk)).toEqual([t1]);
      // Paging works over the recursive set too.
      const p1 = await rels(alice, room, root, '', 'recurse=true&limit=2');
      expect(ids(p1.body.chunk)).toEqual([deep, e1]);
      const p2 = await rels(alice, room, root, '', `recurse=true&limit=2&from=${enc(p1.body.next_batch as string)}`);
      expect(ids(p2.body.chunk)).toEqual([r1, t1]);
      expect(p2.body.next_batch).toBeUndefined();
    });

    it('bundles m.thread, m.reference and the latest valid m.replace in /event, /context, /messages and /relations', async () => {
      const room = await createRoom();
      await join(bob, room);
      await join(dave, room);
      const root = await msg(alice, room, 'root');
      await thread(bob, room, root, 'reply 1');
      const ref = await reference(bob, room, root);
      const edit1 = await edit(alice, room, root, 'first edit');
      const reply2 = await thread(bob, room, root, 'reply 2');
      const edit2 = await edit(alice, room, root, 'second edit');
      const editOfReply = await edit(bob, room, reply2, 'reply 2 edited');
      // Not valid: another user's edit, and one without m.new_content.
      await edit(bob, room, root, 'bob edits alice');
      await edit(alice, room, root, 'no new content', false);
      await flush(room);

      const check = (e: Body | undefined, participated: boolean) => {
        const r = relationsOf(e)!;
        expect(r, JSON.stringify(e)).toBeDefined();
        const th = r['m.thread'] as Body;
        expect(th.count).toBe(2);
        expect(th.current_user_participated).toBe(participated);
        const latest = th.latest_event as Body;
        expect(latest.event_id).toBe(reply2);
        expect((latest.content as Body).body).toBe('reply 2');
        expect(latest.room_id).toBe(room);
        // The latest event carries its own bundle: its edit.
        expect(((relationsOf(latest)!['m.replace'] as Body).event_id)).toBe(editOfReply);
        expect(r['m.reference']).toEqual({ chunk: [{ event_id: ref }] });
        const replace = r['m.replace'] as Body;
        expect(replace.event_id).toBe(edit2);
        expect(replace.sender).toBe(ALICE);
        expect(((replace.content as Body)['m.new_content'] as Body).body).toBe('second edit');
        expect(r['m.annotation']).toBeUndefined();
        expect(e!.content).toMatchObject({ body: 'root' });
      };
      check(await getEvent(alice, room, root), true);
      check(await getEvent(bob, room, root), true);
      check(await getEvent(dave, room, root), false);
      const ctx = await req('GET', `/rooms/${enc(room)}/context/${enc(root)}?limit=2`, alice);
      check(ctx.body.event as Body, true);
      const page = await req('GET', `/rooms/${enc(room)}/messages?dir=b&limit=50`, alice);
      check((page.body.chunk as Body[]).find((e) => e.event_id === root), true);
      // The first edit's bundle: nothing (edits of edits are not a thing; it has no children).
      expect(relationsOf((page.body.chunk as Body[]).find((e) => e.event_id === edit1))).toBeUndefined();
      // /relations serves its children with their bundles.
      const replies = await rels(alice, room, root, '/m.thread');
      expect(((relationsOf((replies.body.chunk as Body[])[0])!['m.replace'] as Body).event_id)).toBe(editOfReply);

      // Dave ignores bob: bob's replies and reference leave dave's bundle; alice's edit stays.
      expect((await req('PUT', `/user/${enc(`@dave:${HS}`)}/account_data/m.ignored_user_list`, dave, { ignored_users: { [`@bob:${HS}`]: {} } })).status).toBe(200);
      const ignoring = relationsOf(await getEvent(dave, room, root))!;
      expect(ignoring['m.thread']).toBeUndefined();
      expect(ignoring['m.reference']).toBeUndefined();
      expect((ignoring['m.replace'] as Body).event_id).toBe(edit2);
      expect(ids((await rels(dave, room, root)).body.chunk).every((id) => id !== reply2 && id !== ref)).toBe(true);
    });

    it('bundles aggregations in a limited /sync timeline', async () => {
      const room = await createRoom();
      await join(bob, room);
      await msg(alice, room, 'older');
      const root = await msg(alice, room, 'root');
      const reply = await thread(bob, room, root, 'reply');
      await flush(room);
      const filter = enc(JSON.stringify({ room: { rooms: [room], timeline: { limit: 1, types: ['m.room.message'], senders: [ALICE] } } }));
      const s = await req('GET', `/sync?filter=${filter}`, alice);
      const tl = (((s.body.rooms as Body).join as Record<string, Body>)[room]!.timeline as Body);
      expect(tl.limited).toBe(true);
      const [served] = tl.events as Body[];
      expect(served!.event_id).toBe(root);
      const th = relationsOf(served)!['m.thread'] as Body;
      expect(th).toMatchObject({ count: 1, current_user_participated: true });
      expect((th.latest_event as Body).event_id).toBe(reply);
      // Served in the sync format, like the root: no room_id.
      expect((th.latest_event as Body).room_id).toBeUndefined();
    });

    it('drops a redacted child from /relations and from bundles, and bundles no edit of a redacted original', async () => {
      const room = await createRoom();
      await join(bob, room);
      const root = await msg(alice, room, 'root');
      const r1 = await thread(bob, room, root, 'r1');
      const r2 = await thread(bob, room, root, 'r2');
      const ref = await reference(bob, room, root);
      const ed = await edit(alice, room, root, 'edited');
      await flush(room);
      expect((relationsOf(await getEvent(alice, room, root))!['m.thread'] as Body).count).toBe(2);

      await redact(bob, room, r2);
      await redact(bob, room, ref);
      await redact(alice, room, ed);
      await flush(room);
      expect(ids((await rels(alice, room, root)).body.chunk)).toEqual([r1]);
      const after = relationsOf(await getEvent(alice, room, root))!;
      expect(after['m.thread']).toMatchObject({ count: 1 });
      expect(((after['m.thread'] as Body).latest_event as Body).event_id).toBe(r1);
      expect(after['m.reference']).toBeUndefined();
      expect(after['m.replace']).toBeUndefined();

      // An original with a live edit, then redacted itself: the edit is no longer bundled (its thread stays).
      const orig = await msg(alice, room, 'to be removed');
      const live = await edit(alice, room, orig, 'edited, alive');
      await flush(room);
      expect((relationsOf(await getEvent(alice, room, orig))!['m.replace'] as Body).event_id).toBe(live);
      await redact(alice, room, orig);
      await flush(room);
      expect(relationsOf(await getEvent(alice, room, orig))).toBeUndefined();
      expect(ids((await rels(alice, room, orig)).body.chunk)).toEqual([live]);
    });

    it('lists threads by latest activity, all or those the user took part in, page by page', async () => {
      const room = await createRoom();
      await join(bob, room);
      await join(dave, room);
      const a = await msg(alice, room, 'A');
      const b = await msg(alice, room, 'B');
      const c = await msg(alice, room, 'C');
      await msg(bob, room, 'no thread');
      await thread(bob, room, a, 'a1');
      await thread(dave, room, b, 'b1');
      await thread(bob, room, c, 'c1');
      const a2 = await thread(dave, room, a, 'a2');
      await flush(room);
      const threads = (token: string, q = '') => v1(`/rooms/${enc(room)}/threads${q ? `?${q}` : ''}`, token);

      const all = await threads(alice);
      expect(all.status).toBe(200);
      expect(ids(all.body.chunk)).toEqual([a, c, b]);
      expect(all.body.next_batch).toBeUndefined();
      const bundled = relationsOf((all.body.chunk as Body[])[0])!['m.thread'] as Body;
      expect(bundled).toMatchObject({ count: 2, current_user_participated: true });
      expect((bundled.latest_event as Body).event_id).toBe(a2);

      const p1 = await threads(alice, 'limit=2');
      expect(ids(p1.body.chunk)).toEqual([a, c]);
      const p2 = await threads(alice, `limit=2&from=${enc(p1.body.next_batch as string)}`);
      expect(ids(p2.body.chunk)).toEqual([b]);
      expect(p2.body.next_batch).toBeUndefined();

      expect(ids((await threads(bob, 'include=participated')).body.chunk)).toEqual([a, c]);
      expect(ids((await threads(dave, 'include=participated')).body.chunk)).toEqual([a, b]);
      expect(ids((await threads(alice, 'include=participated')).body.chunk)).toEqual([a, c, b]);
      // Carol never joined: the room is not hers to read.
      expect((await threads(carol, 'include=participated')).status).toBe(403);

      for (const q of ['include=some', 'limit=0', 'limit=x', 'from=garbage']) {
        const r = await threads(alice, q);
        expect(r.status, q).toBe(400);
        expect(r.body.errcode, q).toBe('M_INVALID_PARAM');
      }
    });

    it('refuses strangers (403), hides parents and children the user may not see (404, filtered), and checks parameters (400)', async () => {
      const priv = await createRoom({ preset: 'private_chat' });
      const secret = await msg(alice, priv, 'secret');
      await thread(alice, priv, secret, 'secret reply');
      await flush(priv);
      for (const r of [await rels(carol, priv, secret), await v1(`/rooms/${enc(priv)}/threads`, carol)]) {
        expect(r.status).toBe(403);
        expect(r.body.errcode).toBe('M_FORBIDDEN');
      }
      expect((await rels('', priv, secret)).status).toBe(401);

      // history_visibility joined: bob sees what happened while he was in the room, and nothing else.
      const room = await createRoom({ preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] });
      const early = await msg(alice, room, 'before bob');
      await join(bob, room);
      const root = await msg(alice, room, 'root');
      const seen = await thread(alice, room, root, 'while bob is here');
      expect((await req('POST', `/rooms/${enc(room)}/leave`, bob, {})).status).toBe(200);
      const unseen = await thread(alice, room, root, 'while bob is away');
      await join(bob, room);
      await flush(room);
      const missing = await rels(bob, room, early);
      expect(missing.status).toBe(404);
      expect(missing.body.errcode).toBe('M_NOT_FOUND');
      expect(ids((await rels(bob, room, root)).body.chunk)).toEqual([seen]);
      expect(ids((await rels(alice, room, root)).body.chunk)).toEqual([unseen, seen]);
      // The thread's latest event for bob is the newest he may see.
      const th = relationsOf(await getEvent(bob, room, root))!['m.thread'] as Body;
      expect((th.latest_event as Body).event_id).toBe(seen);
      expect(((relationsOf(await getEvent(alice, room, root))!['m.thread'] as Body).latest_event as Body).event_id).toBe(unseen);

      expect((await rels(alice, room, '$unknown')).body.errcode).toBe('M_NOT_FOUND');
      // An event of another room is not found in this one.
      expect((await rels(alice, room, secret)).status).toBe(404);
      for (const q of ['dir=x', 'limit=-1', 'limit=abc', 'limit=0', 'from=garbage', 'to=garbage', 'recurse=maybe']) {
        const r = await rels(alice, room, root, '', q);
        expect(r.status, q).toBe(400);
        expect(r.body.errcode, q).toBe('M_INVALID_PARAM');
      }
      expect((await rels(alice, 'not-a-room', root)).body.errcode).toBe('M_INVALID_PARAM');
    });
  });
}
