/**
 * POST /search over HTTP on a real monolith, once on SQLite (FTS5) and once on PostgreSQL
 * (tsvector). The first block reproduces the scenarios of Complement's
 * tests/csapi/apidoc_search_test.go (Sytest's search tests), in our own words; the rest covers
 * history visibility, filters, context, state, groups, errors and the admin reindex.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startTestServer, testConfig, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

for (const dialect of TEST_DIALECTS) {
  describe(`POST /search [${dialect}]`, () => {
    let t: TestServer;
    let alice: string;
    let bob: string;
    let carol: string;
    let admin: string;

    const req = (method: string, p: string, token: string, body?: unknown, version = 'v3') =>
      getJson(`${t.baseUrl}/_matrix/client/${version}${p}`, {
        method,
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      });
    const until = async (fn: () => Promise<boolean>, ms = 10000) => {
      const end = Date.now() + ms;
      while (!(await fn())) {
        if (Date.now() > end) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    /**
     * Waits until the event comes down /sync, as Complement's SendEventSynced does: syncapi's
     * consumer indexes an event before it wakes /sync, so it is searchable by then.
     */
    const synced = (token: string, roomId: string, eventId: string) =>
      until(async () => {
        const filter = enc(JSON.stringify({ room: { rooms: [roomId], timeline: { limit: 20 } } }));
        const s = (await req('GET', `/sync?timeout=0&filter=${filter}`, token)).body as { rooms?: { join?: Record<string, { timeline?: { events?: Body[] } }> } };
        return (s.rooms?.join?.[roomId]?.timeline?.events ?? []).some((e) => e.event_id === eventId);
      });
    let txn = 0;
    const send = async (token: string, roomId: string, body: string) => {
      const r = await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/s${++txn}`, token, { msgtype: 'm.text', body });
      expect(r.status).toBe(200);
      return r.body.event_id as string;
    };
    const sendSynced = async (token: string, roomId: string, body: string) => {
      const id = await send(token, roomId, body);
      await synced(token, roomId, id);
      return id;
    };
    const createRoom = async (token: string, body: Body = { preset: 'private_chat' }) => (await req('POST', '/createRoom', token, body)).body.room_id as string;
    const search = async (token: string, roomEvents: Body, nextBatch?: string) => {
      const r = await req('POST', `/search${nextBatch !== undefined ? `?next_batch=${enc(nextBatch)}` : ''}`, token, { search_categories: { room_events: roomEvents } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body.search_categories as Body).room_events as Body & { results: Array<{ rank: number; result: Body; context?: Body }>; count: number; next_batch?: string; highlights: string[] };
    };
    const bodyOf = (e: Body) => (e.content as Body).body;

    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      const reg = async (u: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: u, password: 'pw' })).body.access_token as string;
      alice = await reg('alice');
      bob = await reg('bob');
      carol = await reg('carol');
      const { nonce } = (await getJson(`${t.baseUrl}/_synapse/admin/v1/register`)).body as { nonce: string };
      const mac = createHmac('sha1', 'complement').update([nonce, 'root', 'pw', 'admin'].join('\0')).digest('hex');
      admin = (await getJson(`${t.baseUrl}/_synapse/admin/v1/register`, { method: 'POST', body: JSON.stringify({ nonce, username: 'root', password: 'pw', admin: true, mac }) })).body.access_token as string;
    }, 60000);
    afterAll(() => t?.stop());

    describe('Complement apidoc_search_test.go', () => {
      it('Can search for an event by body', async () => {
        const roomId = await createRoom(alice);
        const eventId = await sendSynced(alice, roomId, 'hello, world');
        const re = await search(alice, { keys: ['content.body'], search_term: 'hello', filter: { rooms: [roomId] } });
        expect(re.count).toBe(1);
        expect(re.results).toHaveLength(1);
        const r0 = re.results[0]!.result;
        expect(r0.event_id).toBe(eventId);
        expect(r0.room_id).toBe(roomId);
        expect(r0.type).toBe('m.room.message');
        expect(r0.content).toBeDefined();
        expect(bodyOf(r0)).toBe('hello, world');
        expect(typeof re.results[0]!.rank).toBe('number');
        expect(re.highlights).toContain('hello');
      });

      it('Can get context around search results', async () => {
        const roomId = await createRoom(alice);
        for (let i = 1; i <= 7; i++) await send(alice, roomId, `Message number ${i}`);
        await sendSynced(alice, roomId, 'done');
        const re = await search(alice, {
          keys: ['content.body'],
          search_term: 'Message 4',
          order_by: 'recent',
          filter: { limit: 1, rooms: [roomId] },
          event_context: { before_limit: 2, after_limit: 2 },
        });
        expect(re.count).toBe(1);
        const r0 = re.results[0]!;
        expect(r0.result.room_id).toBe(roomId);
        expect(bodyOf(r0.result)).toBe('Message number 4');
        const ctx = r0.context!;
        expect((ctx.events_before as Body[]).map(bodyOf)).toEqual(['Message number 3', 'Message number 2']);
        expect((ctx.events_after as Body[]).map(bodyOf)).toEqual(['Message number 5', 'Message number 6']);
        expect(typeof ctx.start).toBe('string');
        expect(typeof ctx.end).toBe('string');
        // The context tokens page on with /messages.
        const more = await req('GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=1&from=${enc(ctx.start as string)}`, alice);
        expect((more.body.chunk as Body[]).map(bodyOf)).toEqual(['Message number 1']);
      });

      it('Can back-paginate search results', async () => {
        const roomId = await createRoom(alice);
        const ids: string[] = [];
        for (let i = 0; i <= 19; i++) ids.push(await send(alice, roomId, `Message number ${i}`));
        await synced(alice, roomId, ids[19]!);
        const request = { keys: ['content.body'], search_term: 'Message', order_by: 'recent', filter: { limit: 10, rooms: [roomId] } };
        const first = await search(alice, request);
        expect(first.count).toBe(20);
        expect(first.results.map((r) => r.result.event_id)).toEqual(ids.slice(10).reverse());
        expect(first.next_batch).toBeTruthy();
        const second = await search(alice, request, first.next_batch);
        expect(second.count).toBe(20);
        expect(second.results.map((r) => r.result.event_id)).toEqual(ids.slice(0, 10).reverse());
        expect(second.next_batch).toBeTruthy();
        const third = await search(alice, request, second.next_batch);
        expect(third.count).toBe(20);
        expect(third.results).toEqual([]);
        expect(third.next_batch).toBeUndefined();
      });

      it('Search works across an upgraded room and its predecessor', async () => {
        const roomId = await createRoom(alice, { preset: 'private_chat', room_version: '8' });
        const before = await sendSynced(alice, roomId, 'Message before upgrade');
        const up = await req('POST', `/rooms/${enc(roomId)}/upgrade`, alice, { new_version: '9' });
        expect(up.status).toBe(200);
        const newRoomId = up.body.replacement_room as string;
        const after = await sendSynced(alice, newRoomId, 'Message after upgrade');
        const re = await search(alice, { keys: ['content.body'], search_term: 'upgrade', filter: { rooms: [roomId, newRoomId] } });
        expect(re.count).toBe(2);
        expect(re.results.map((r) => r.result.event_id)).toEqual([before, after]);
        expect(re.results.map((r) => bodyOf(r.result))).toEqual(['Message before upgrade', 'Message after upgrade']);
        // Naming only the new room finds the old room's message too.
        const onlyNew = await search(alice, { search_term: 'upgrade', filter: { rooms: [newRoomId] } });
        expect(onlyNew.count).toBe(2);
      });

      for (const ordering of ['rank', 'recent']) {
        it(`Search results with ${ordering} ordering do not include redacted events`, async () => {
          const roomId = await createRoom(alice);
          const redacted = await sendSynced(alice, roomId, 'This message is going to be redacted');
          const visible = await sendSynced(alice, roomId, 'This message is not going to be redacted');
          const r = await req('PUT', `/rooms/${enc(roomId)}/redact/${enc(redacted)}/${ordering}-${txn++}`, alice, { reason: 'testing' });
          expect(r.status).toBe(200);
          // Wait until syncapi has the redaction applied (the index entry goes first).
          await until(async () => Object.keys(((await req('GET', `/rooms/${enc(roomId)}/event/${enc(redacted)}`, alice)).body.content as Body) ?? {}).length === 0);
          const re = await search(alice, { keys: ['content.body'], order_by: ordering, search_term: 'redacted', filter: { rooms: [roomId] } });
          expect(re.results).toHaveLength(1);
          expect(re.results[0]!.result.event_id).toBe(visible);
          expect(bodyOf(re.results[0]!.result)).toBe('This message is not going to be redacted');
        });
      }
    });

    it('never finds events the user could not see: before joining, after leaving, or in rooms never joined', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] });
      await send(alice, roomId, 'zebra early');
      expect((await req('POST', `/rooms/${enc(roomId)}/join`, bob, {})).status).toBe(200);
      const late = await sendSynced(alice, roomId, 'zebra late');
      const q = { search_term: 'zebra', filter: { rooms: [roomId] } };
      const bobs = await search(bob, q);
      expect(bobs.results.map((r) => r.result.event_id)).toEqual([late]);
      expect(bobs.count).toBe(1);
      expect((await search(alice, q)).count).toBe(2);
      expect((await search(carol, q)).results).toEqual([]);
      expect((await search(carol, q)).count).toBe(0);

      expect((await req('POST', `/rooms/${enc(roomId)}/leave`, bob, {})).status).toBe(200);
      await sendSynced(alice, roomId, 'zebra gone');
      const afterLeaving = await search(bob, { search_term: 'zebra', include_state: true, event_context: { before_limit: 5, after_limit: 5 } });
      expect(afterLeaving.results.map((r) => r.result.event_id)).toEqual([late]);
      // Context stops where bob's view of the room does.
      const ctxAfter = afterLeaving.results[0]!.context!.events_after as Body[];
      expect(ctxAfter.map((e) => bodyOf(e)).filter((b) => b !== undefined)).not.toContain('zebra gone');
      const ctxBefore = afterLeaving.results[0]!.context!.events_before as Body[];
      expect(ctxBefore.map((e) => bodyOf(e))).not.toContain('zebra early');
      // State as it was when bob left.
      const state = (afterLeaving.state as Record<string, Body[]>)[roomId]!;
      expect(state.find((e) => e.type === 'm.room.member' && e.state_key === '@bob:localhost:8008')!.content).toMatchObject({ membership: 'leave' });
    });

    it('searches names and topics by key, filters, groups, profiles and highlights', async () => {
      const roomId = await createRoom(alice, { preset: 'public_chat', name: 'Parrot club', topic: 'All about parrots' });
      await req('POST', `/rooms/${enc(roomId)}/join`, bob, {});
      await req('PUT', `/profile/${enc('@bob:localhost:8008')}/displayname`, bob, { displayname: 'Bobby' });
      const fromAlice = await send(alice, roomId, 'a parrot appeared');
      const fromBob = await sendSynced(bob, roomId, 'parrots everywhere');
      const other = await createRoom(alice);
      await sendSynced(alice, other, 'parrot elsewhere');

      const names = await search(alice, { search_term: 'parrot', keys: ['content.name'] });
      expect(names.results.map((r) => r.result.type)).toEqual(['m.room.name']);
      const topics = await search(alice, { search_term: 'parrot', keys: ['content.topic'], filter: { rooms: [roomId] } });
      expect(topics.results.map((r) => r.result.type)).toEqual(['m.room.topic']);

      const all = await search(alice, { search_term: 'parrot', filter: { rooms: [roomId, other] } });
      expect(all.count).toBe(5);
      expect(all.highlights).toEqual(expect.arrayContaining(['parrot', 'parrots']));
      expect((await search(alice, { search_term: 'parrot', filter: { senders: ['@bob:localhost:8008'] } })).results.map((r) => r.result.event_id)).toEqual([fromBob]);
      expect((await search(alice, { search_term: 'parrot', filter: { not_rooms: [roomId], rooms: [roomId, other] } })).count).toBe(1);
      expect((await search(alice, { search_term: 'parrot', filter: { rooms: [roomId], not_types: ['m.room.name', 'm.room.topic'] } })).count).toBe(2);
      expect((await search(alice, { search_term: 'parrot', filter: { rooms: [roomId], types: ['m.room.*'], not_senders: ['@bob:localhost:8008'] } })).count).toBe(3);

      const grouped = await search(alice, {
        search_term: 'parrot',
        order_by: 'recent',
        filter: { rooms: [roomId], types: ['m.room.message'] },
        groupings: { group_by: [{ key: 'room_id' }, { key: 'sender' }] },
        event_context: { before_limit: 0, after_limit: 0, include_profile: true },
      });
      const groups = grouped.groups as Record<string, Record<string, { results: string[]; order: number }>>;
      expect(groups.room_id![roomId]!.results).toEqual([fromBob, fromAlice]);
      expect(groups.sender!['@bob:localhost:8008']!.results).toEqual([fromBob]);
      expect(groups.sender!['@alice:localhost:8008']!.results).toEqual([fromAlice]);
      expect((grouped.results[0]!.context!.profile_info as Record<string, Body>)['@bob:localhost:8008']).toMatchObject({ displayname: 'Bobby' });

      // r0 answers the same.
      const r0 = await req('POST', '/search', alice, { search_categories: { room_events: { search_term: 'parrot', filter: { rooms: [other] } } } }, 'r0');
      expect(((r0.body.search_categories as Body).room_events as Body).count).toBe(1);
    });

    it('bundles aggregations into the results: a thread root shows its thread, an edited message its edit', async () => {
      const roomId = await createRoom(alice);
      const root = await send(alice, roomId, 'axolotl root');
      const reply = (await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/s${++txn}`, alice, { msgtype: 'm.text', body: 'in thread', 'm.relates_to': { rel_type: 'm.thread', event_id: root } })).body.event_id as string;
      const edit = (await req('PUT', `/rooms/${enc(roomId)}/send/m.room.message/s${++txn}`, alice, {
        msgtype: 'm.text',
        body: '* axolotl root edited',
        'm.new_content': { msgtype: 'm.text', body: 'axolotl root edited' },
        'm.relates_to': { rel_type: 'm.replace', event_id: root },
      })).body.event_id as string;
      await synced(alice, roomId, edit);
      const re = await search(alice, { search_term: 'axolotl', filter: { rooms: [roomId] } });
      const found = re.results.find((r) => r.result.event_id === root)!.result;
      const relations = (found.unsigned as Body)['m.relations'] as Body;
      expect((relations['m.thread'] as Body).count).toBe(1);
      expect(((relations['m.thread'] as Body).latest_event as Body).event_id).toBe(reply);
      expect((relations['m.replace'] as Body).event_id).toBe(edit);
    });

    it('pages in rank order', async () => {
      const roomId = await createRoom(alice);
      for (let i = 0; i < 5; i++) await send(alice, roomId, `otter ${'otter '.repeat(i)}`);
      await sendSynced(alice, roomId, 'otter end');
      const seen: string[] = [];
      let next: string | undefined;
      for (let page = 0; page < 5; page++) {
        const re = await search(alice, { search_term: 'otter', filter: { rooms: [roomId], limit: 2 } }, next);
        expect(re.count).toBe(6);
        for (let i = 1; i < re.results.length; i++) expect(re.results[i - 1]!.rank).toBeGreaterThanOrEqual(re.results[i]!.rank);
        seen.push(...re.results.map((r) => r.result.event_id as string));
        next = re.next_batch;
        if (!next) break;
      }
      expect(seen).toHaveLength(6);
      expect(new Set(seen).size).toBe(6);
    });

    it('refuses bad requests', async () => {
      const raw = (body: string, q = '') => req('POST', `/search${q}`, alice, body);
      expect((await raw('{nope')).status).toBe(400);
      expect((await raw('{nope')).body.errcode).toBe('M_NOT_JSON');
      expect((await raw('{}')).status).toBe(400);
      expect((await raw(JSON.stringify({ search_categories: { room_events: {} } }))).status).toBe(400);
      expect((await raw(JSON.stringify({ search_categories: { room_events: { search_term: 1 } } }))).body.errcode).toBe('M_BAD_JSON');
      expect((await raw(JSON.stringify({ search_categories: { room_events: { search_term: 'x', order_by: 'best' } } }))).status).toBe(400);
      expect((await raw(JSON.stringify({ search_categories: { room_events: { search_term: 'x', keys: ['content.foo'] } } }))).status).toBe(400);
      expect((await raw(JSON.stringify({ search_categories: { room_events: { search_term: 'x', groupings: { group_by: [{ key: 'type' }] } } } }))).status).toBe(400);
      const bad = await raw(JSON.stringify({ search_categories: { room_events: { search_term: 'x' } } }), '?next_batch=garbage');
      expect(bad.status).toBe(400);
      expect(bad.body.errcode).toBe('M_INVALID_PARAM');
      // A next_batch of the other order is unknown too.
      expect((await raw(JSON.stringify({ search_categories: { room_events: { search_term: 'x', order_by: 'recent' } } }), '?next_batch=rank_10')).status).toBe(400);
      expect((await raw(JSON.stringify({ search_categories: {} }))).body).toEqual({ search_categories: {} });
      expect((await getJson(`${t.baseUrl}/_matrix/client/v3/search`, { method: 'POST', body: '{}' })).status).toBe(401);
      // Terms with no words find nothing.
      expect((await search(alice, { search_term: '  ?! ' })).count).toBe(0);
    });

    it('reindexes for admins only', async () => {
      const roomId = await createRoom(alice);
      const id = await sendSynced(alice, roomId, 'narwhal');
      const reindex = (token: string) => getJson(`${t.baseUrl}/_dendrite/admin/fulltext/reindex`, { headers: { Authorization: `Bearer ${token}` } });
      expect((await reindex(alice)).status).toBe(403);
      const r = await reindex(admin);
      expect(r.status).toBe(200);
      expect(r.body.indexed).toBeGreaterThan(0);
      expect((await search(alice, { search_term: 'narwhal' })).results.map((x) => x.result.event_id)).toEqual([id]);
    });
  });
}

describe('POST /search with search disabled', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(testConfig((doc) => ((doc.sync_api!.search as Body).enabled = false)));
  });
  afterAll(async () => t?.stop());

  it('answers 400 M_UNKNOWN', async () => {
    const reg = await getJson(`${t.baseUrl}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: 'dave', password: 'pw' }) });
    const r = await getJson(`${t.baseUrl}/_matrix/client/v3/search`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${reg.body.access_token as string}` },
      body: JSON.stringify({ search_categories: { room_events: { search_term: 'x' } } }),
    });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_UNKNOWN');
  });
});
