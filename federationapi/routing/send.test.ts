/**
 * PUT /send/{txnId} with a fake remote server (signed keys, requests and events) against one of
 * our servers, on SQLite and PostgreSQL: a room's PDUs go to the roomserver together, yet each
 * gets its own outcome, in order; a PDU whose prev events we lack makes us fetch them once and
 * the rest follow it; a forged PDU is refused alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeRemote, remoteEvent } from '../../bench/federation/remote.js';
import type { Event, JsonObject, PDUJson } from '../../internal/matrix/index.js';
import { Event as EventClass } from '../../internal/matrix/index.js';
import { createTestDatabase, type TestDatabase } from '../../internal/sqlutil/testing.js';
import { startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { getJson } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`PUT /send [${dialect}]`, () => {
    let pg: TestDatabase | undefined;
    let ours: FederatingNode;
    let remote: FakeRemote;
    let alice: string;
    let roomId: string;
    let version: string;
    let bob: string;
    let msgAuth: string[];
    let last: Event;
    /** What the remote serves for get_missing_events, and the requests it saw. */
    let missing: Event[] = [];
    const seen: string[] = [];
    let txn = 0;

    const dest = () => ({ name: ours.name, port: Number(ours.name.split(':')[1]) });
    const req = (method: string, p: string, token: string, body?: unknown) =>
      getJson(`${ours.t.baseUrl}/_matrix/client/v3${p}`, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` } });
    /** bob's message after `prev` (the last one by default), not sent yet. */
    const message = (body: string, prev: Event = last, sender = bob): Event => {
      const e = remoteEvent(remote, version, {
        type: 'm.room.message',
        sender,
        room_id: roomId,
        content: { msgtype: 'm.text', body },
        prev_events: [prev.eventId],
        auth_events: msgAuth,
        depth: prev.depth + 1,
      });
      if (sender === bob) last = e;
      return e;
    };
    const send = async (pdus: unknown[], txnId = `t${++txn}`) => {
      const r = await remote.request(dest(), 'PUT', `/_matrix/federation/v1/send/${txnId}`, { origin: remote.serverName, origin_server_ts: Date.now(), pdus } as unknown as JsonObject);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body as { pdus: Record<string, { error?: string }> }).pdus;
    };
    const rs = () => ours.t.server.apis.roomserver;
    const stored = async (e: Event) => (await rs().queryEventsById({ event_ids: [e.eventId] })).events[0];
    const latest = async () => (await rs().queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] })).latest_event_ids;
    /**
     * The message bodies alice's /sync shows, in the order her server took them in (stream order:
     * /messages orders by depth, where a fork's events interleave), once syncapi has `upTo`.
     */
    const timeline = async (upTo: string): Promise<string[]> => {
      const end = Date.now() + 15_000;
      const filter = enc(JSON.stringify({ room: { timeline: { limit: 100 } } }));
      for (;;) {
        const s = (await req('GET', `/sync?timeout=0&filter=${filter}`, alice)).body;
        const chunk = ((((s.rooms as Body | undefined)?.join as Record<string, Body> | undefined)?.[roomId]?.timeline as Body | undefined)?.events as Body[] | undefined) ?? [];
        if (chunk.some((e) => e.event_id === upTo)) return chunk.filter((e) => e.type === 'm.room.message').map((e) => (e.content as Body).body as string);
        if (Date.now() > end) throw new Error(`syncapi never showed ${upTo}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    beforeAll(async () => {
      if (dialect === 'postgres') pg = await createTestDatabase('postgres');
      ours = await startFederatingNode((doc) => {
        if (!pg) return;
        // One PostgreSQL database for every component (the -db form of generate-config).
        doc.global!.database = { connection_string: pg.connectionString, max_open_conns: 20, max_idle_conns: 2, conn_max_lifetime: -1 };
        for (const [section, key] of [['app_service_api', 'database'], ['federation_api', 'database'], ['media_api', 'database'], ['mscs', 'database'], ['room_server', 'database'], ['sync_api', 'database'], ['user_api', 'account_database']] as const) {
          delete (doc[section] as Record<string, unknown> | undefined)?.[key];
        }
      });
      remote = await FakeRemote.start((r) => {
        seen.push(`${r.method} ${r.path}`);
        if (r.method === 'PUT' && r.path.startsWith('/_matrix/federation/v1/send/')) return { status: 200, body: { pdus: {} } };
        if (r.method === 'POST' && r.path.startsWith('/_matrix/federation/v1/get_missing_events/')) return { status: 200, body: { events: missing.map((e) => e.json) } };
        return undefined;
      });
      alice = (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'alice', password: 'pw' })).body.access_token as string;
      bob = `@bob:${remote.serverName}`;
      roomId = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      ({ join: last, msgAuth } = await joinRoom(roomId));
    }, 60_000);
    afterAll(async () => {
      await remote?.close();
      await ours?.t.stop();
      await pg?.drop();
    });

    /** bob joins a room of ours through make_join and v2 send_join; the auth events of his messages. */
    const joinRoom = async (id: string): Promise<{ join: Event; msgAuth: string[] }> => {
      const made = await remote.request(dest(), 'GET', `/_matrix/federation/v1/make_join/${enc(id)}/${enc(bob)}?ver=10&ver=11`);
      expect(made.status).toBe(200);
      const { room_version, event: t } = made.body as { room_version: string; event: JsonObject };
      version = room_version;
      const join = remoteEvent(remote, version, {
        type: 'm.room.member',
        state_key: bob,
        sender: bob,
        room_id: id,
        content: { membership: 'join' },
        prev_events: t['prev_events'] as string[],
        auth_events: t['auth_events'] as string[],
        depth: t['depth'] as number,
      });
      const sent = await remote.request(dest(), 'PUT', `/_matrix/federation/v2/send_join/${enc(id)}/${enc(join.eventId)}`, join.json as unknown as JsonObject);
      expect(sent.status).toBe(200);
      const state = ((sent.body as { state: unknown[] }).state ?? []).map((pdu) => EventClass.fromPDU(pdu as PDUJson, version));
      const stateId = (type: string) => state.find((s) => s.type === type && s.stateKey === '')!.eventId;
      return { join, msgAuth: [stateId('m.room.create'), stateId('m.room.power_levels'), join.eventId] };
    };
    it('gives each PDU of a batch its own outcome: a rejected one and duplicates leave their neighbours in, in order', async () => {
      const m1 = message('one');
      const m2 = message('two');
      // carol of the remote never joined: refused by her message's own auth events.
      const intruder = message('intruder', m2, `@carol:${remote.serverName}`);
      const m3 = message('three', m2);
      const results = await send([m1, m2, intruder, m3, m2].map((e) => e.json));
      // Rejected events are judged, not errors of the transaction.
      expect(results).toEqual({ [m1.eventId]: {}, [m2.eventId]: {}, [intruder.eventId]: {}, [m3.eventId]: {} });
      expect(await stored(intruder)).toMatchObject({ rejected: true });
      expect(await stored(m3)).toMatchObject({ rejected: false, soft_failed: false });
      expect(await latest()).toEqual([m3.eventId]);
      expect(await timeline(m3.eventId)).toEqual(['one', 'two', 'three']);
      // The same PDUs again, in a new transaction: duplicates, nothing changes.
      expect(await send([m1, m2, m3].map((e) => e.json))).toEqual({ [m1.eventId]: {}, [m2.eventId]: {}, [m3.eventId]: {} });
      expect(await latest()).toEqual([m3.eventId]);
    });

    it('fetches the missing prev events of the first PDU it cannot take, once, and puts the rest after it', async () => {
      const base = last;
      const g1 = message('gap one');
      const g2 = message('gap two');
      const m4 = message('four');
      const m5 = message('five');
      // Not after the gap: it could go in at once, but must wait for the PDU before it.
      const m6 = message('six', base);
      missing = [g1, g2];
      const before = seen.filter((s) => s.includes('get_missing_events')).length;
      const results = await send([m4, m5, m6].map((e) => e.json));
      expect(results).toEqual({ [m4.eventId]: {}, [m5.eventId]: {}, [m6.eventId]: {} });
      expect(seen.filter((s) => s.includes('get_missing_events')).length - before).toBe(1);
      expect(await stored(g1)).toMatchObject({ rejected: false });
      expect((await latest()).sort()).toEqual([m5.eventId, m6.eventId].sort());
      expect((await timeline(m6.eventId)).slice(-5)).toEqual(['gap one', 'gap two', 'four', 'five', 'six']);
      missing = [];
      // One forward extremity again.
      const merge = remoteEvent(remote, version, {
        type: 'm.room.message',
        sender: bob,
        room_id: roomId,
        content: { msgtype: 'm.text', body: 'merge' },
        prev_events: [m5.eventId, m6.eventId],
        auth_events: msgAuth,
        depth: m5.depth + 1,
      });
      last = merge;
      expect(await send([merge.json])).toEqual({ [merge.eventId]: {} });
      expect(await latest()).toEqual([merge.eventId]);
    });

    it('refuses a PDU with a forged signature alone, and answers a repeated transaction ID as the first time', async () => {
      const h1 = message('six');
      const forged = message('seven');
      const json = structuredClone(forged.json) as PDUJson & { signatures: Record<string, Record<string, string>> };
      const sigs = json.signatures[remote.serverName]!;
      for (const k of Object.keys(sigs)) sigs[k] = sigs[k]!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
      const h3 = message('eight', h1);
      const results = await send([h1.json, json, h3.json], 'forged');
      expect(results[h1.eventId]).toEqual({});
      expect(results[h3.eventId]).toEqual({});
      expect(results[forged.eventId]!.error).toMatch(/signature/);
      expect(await stored(forged)).toBeUndefined();
      expect(await latest()).toEqual([h3.eventId]);
      expect(await send([], 'forged')).toEqual(results);
    });

    it("takes PDUs of several rooms in one transaction, interleaved, each room's in order", async () => {
      const other = (await req('POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
      const joined = await joinRoom(other);
      let prev = joined.join;
      const inOther = Array.from({ length: 10 }, (_, i) => {
        prev = remoteEvent(remote, version, {
          type: 'm.room.message',
          sender: bob,
          room_id: other,
          content: { msgtype: 'm.text', body: `other ${i}` },
          prev_events: [prev.eventId],
          auth_events: joined.msgAuth,
          depth: prev.depth + 1,
        });
        return prev;
      });
      const inFirst = Array.from({ length: 10 }, (_, i) => message(`first ${i}`));
      const results = await send(inFirst.flatMap((e, i) => [e.json, inOther[i]!.json]));
      expect(Object.keys(results)).toHaveLength(20);
      expect(Object.values(results).every((r) => r.error === undefined)).toBe(true);
      expect(await latest()).toEqual([inFirst.at(-1)!.eventId]);
      expect((await rs().queryLatestEventsAndState({ room_id: other, state_to_fetch: [] })).latest_event_ids).toEqual([inOther.at(-1)!.eventId]);
      expect((await timeline(inFirst.at(-1)!.eventId)).slice(-10)).toEqual(inFirst.map((_, i) => `first ${i}`));
    });
  });
}
