/**
 * Outbound backfill end to end, across our servers federating over HTTPS on loopback: a user
 * of B joins a room whose history only A has, and pages back through it with /messages (B's
 * syncapi finds the gap before the join, its roomserver asks federationapi, which asks A's
 * GET /backfill, checks the events and inputs them as history). And a hostile server C, whose
 * /backfill answers carry an event with a broken signature and one whose content was changed
 * after signing: the first is dropped, the second kept only redacted (as the spec says of a
 * content hash mismatch), and the rest still comes through in order.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFederatingNode, nodeRequest, registerOn, type FederatingNode } from '../test/federation.js';
import { waitFor } from '../test/harness.js';
import type { QueryEventsByIdRequest, QueryEventsByIdResponse } from '../roomserver/api/index.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;

let a: FederatingNode;
let b: FederatingNode;
let c: FederatingNode;
let alice: string;
let bob: string;
let carol: string;

const req = nodeRequest;
const register = registerOn;
const until = <T>(fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> => waitFor(fn, ms);
let txn = 0;
const send = async (n: FederatingNode, token: string, roomId: string, body: string): Promise<string> => {
  const r = await req(n, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`, token, { msgtype: 'm.text', body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.event_id as string;
};
/** Joins over federation and waits until the joiner's /sync has the room. */
const joinSynced = async (n: FederatingNode, token: string, roomId: string): Promise<string> => {
  expect((await req(n, 'POST', `/join/${enc(roomId)}`, token, {})).status).toBe(200);
  return until(async () => {
    const s = (await req(n, 'GET', '/sync?timeout=0', token)).body;
    return ((s.rooms as Body | undefined)?.join as Record<string, Body> | undefined)?.[roomId] ? (s.next_batch as string) : undefined;
  });
};
/** Pages back with /messages until the end, as a client does; every page's events. */
const pageBack = async (n: FederatingNode, token: string, roomId: string, limit: number, from?: string): Promise<{ events: Body[]; pages: number }> => {
  const events: Body[] = [];
  let token_ = from;
  let pages = 0;
  for (;;) {
    const r = await req(n, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=${limit}${token_ !== undefined ? `&from=${enc(token_)}` : ''}`, token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    pages++;
    events.push(...(r.body.chunk as Body[]));
    if (r.body.end === undefined) return { events, pages };
    expect(pages).toBeLessThan(100);
    token_ = r.body.end as string;
  }
};
const bodies = (events: Body[]) => events.filter((e) => e.type === 'm.room.message').map((e) => (e.content as Body).body);

beforeAll(async () => {
  [a, b, c] = await Promise.all([startFederatingNode(), startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  bob = await register(b, 'bob');
  carol = await register(c, 'carol');
}, 90_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop(), c?.t.stop()]);
});

it('pages back through history only the other server had: all of it, in order, once', async () => {
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat', name: 'Long ago' })).body.room_id as string;
  const sent: string[] = [];
  for (let i = 0; i < 60; i++) sent.push(await send(a, alice, roomId, `m${i}`));
  const since = await joinSynced(b, bob, roomId);
  const BOB = `@bob:${b.name}`;
  // B has none of the messages yet.
  expect((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [sent[0]!, sent[59]!] })).events).toEqual([]);

  const { events, pages } = await pageBack(b, bob, roomId, 7);
  // Bob's join first, then every message newest first, then the room's creation state.
  expect(events[0]).toMatchObject({ type: 'm.room.member', state_key: BOB });
  expect(bodies(events)).toEqual(Array.from({ length: 60 }, (_, i) => `m${59 - i}`));
  const ids = events.map((e) => e.event_id as string);
  expect(new Set(ids).size).toBe(ids.length);
  expect(events[events.length - 1]!.type).toBe('m.room.create');
  expect(pages).toBeGreaterThan(9);
  // Held by B's roomserver as history with state, not as outliers.
  const held = (await b.t.server.apis.roomserver.queryEventsById({ event_ids: [sent[0]!, sent[30]!] })).events;
  expect(held.map((h) => [h.outlier, h.rejected])).toEqual([
    [false, false],
    [false, false],
  ]);

  // History is not news: an incremental sync since before the paging shows none of it.
  const s = (await req(b, 'GET', `/sync?timeout=0&since=${enc(since)}`, bob)).body;
  expect(((s.rooms as Body | undefined)?.join as Record<string, Body> | undefined)?.[roomId]).toBeUndefined();

  // Forwards from the start: the same events, oldest first.
  const fwd = await req(b, 'GET', `/rooms/${enc(roomId)}/messages?dir=f&limit=1000`, bob);
  expect(bodies(fwd.body.chunk as Body[])).toEqual(Array.from({ length: 60 }, (_, i) => `m${i}`));
  expect((fwd.body.chunk as Body[]).at(-1)).toMatchObject({ type: 'm.room.member', state_key: BOB });

  // A timeline's prev_batch (a stream token) pages back from just before the timeline: here, the join.
  const s1 = (await req(b, 'GET', `/sync?filter=${enc(JSON.stringify({ room: { timeline: { limit: 1 } } }))}`, bob)).body;
  const tl = ((s1.rooms as Body).join as Record<string, Body>)[roomId]!.timeline as Body;
  expect((tl.events as Body[]).map((e) => e.type)).toEqual(['m.room.member']);
  const back = await req(b, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=3&from=${enc(tl.prev_batch as string)}`, bob);
  expect(bodies(back.body.chunk as Body[])).toEqual(['m59', 'm58', 'm57']);

  // New messages after the backfill still come through /sync and sit above the history.
  const later = await send(a, alice, roomId, 'later');
  await until(async () => ((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [later] })).events.length > 0 ? true : undefined));
  const top = await until(async () => {
    const r = await req(b, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=3`, bob);
    const got = bodies(r.body.chunk as Body[]);
    return got[0] === 'later' ? r.body.chunk as Body[] : undefined;
  });
  expect(top.map((e) => e.type)).toEqual(['m.room.message', 'm.room.member', 'm.room.message']);
  expect(bodies(top)).toEqual(['later', 'm59']);
}, 120_000);

it('crosses several gaps: more history than one backfill brings, the state where it ends fetched', async () => {
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
  const sent: string[] = [];
  for (let i = 0; i < 130; i++) sent.push(await send(a, alice, roomId, `n${i}`));
  await joinSynced(b, bob, roomId);
  // One backfill brings 100 events: the first page needs the join and 100 messages, so the
  // second backfill runs within it, from the event where the first one's history ended.
  const first = await req(b, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=102`, bob);
  expect(bodies(first.body.chunk as Body[])).toEqual(Array.from({ length: 101 }, (_, i) => `n${129 - i}`));
  const { events } = await pageBack(b, bob, roomId, 50, first.body.end as string);
  expect(bodies(events)).toEqual(Array.from({ length: 29 }, (_, i) => `n${28 - i}`));
  const all = [...(first.body.chunk as Body[]), ...events].map((e) => e.event_id as string);
  expect(new Set(all).size).toBe(all.length);
  // Where the first backfill's history ended, the event went in with the state A gave for it.
  const held = (await b.t.server.apis.roomserver.queryEventsById({ event_ids: sent })).events;
  expect(held.length).toBe(130);
  expect(held.every((h) => !h.outlier && !h.rejected)).toBe(true);
}, 120_000);

it("drops a hostile server's badly signed events and keeps tampered ones only redacted", async () => {
  const roomId = (await req(c, 'POST', '/createRoom', carol, { preset: 'public_chat', name: 'Hostile' })).body.room_id as string;
  const sent: string[] = [];
  for (let i = 0; i < 20; i++) sent.push(await send(c, carol, roomId, `h${i}`));
  const badSig = sent[12]!;
  const badHash = sent[5]!;
  await joinSynced(b, bob, roomId);

  // From now on C serves those two events altered, as a hostile server would (its /backfill and /event read events through this).
  const rs = c.t.server.apis.roomserver;
  const honest = rs.queryEventsById.bind(rs);
  // Recognised by their bodies: v10 PDUs carry no event ID.
  rs.queryEventsById = async (r: QueryEventsByIdRequest): Promise<QueryEventsByIdResponse> => {
    const res = await honest(r);
    return {
      events: res.events.map((h) => {
        const body = (h.pdu.content as Body | undefined)?.body;
        if (body === 'h12') {
          const sigs = structuredClone(h.pdu.signatures) as Record<string, Record<string, string>>;
          for (const byKey of Object.values(sigs)) for (const k of Object.keys(byKey)) byKey[k] = `${byKey[k]!.startsWith('A') ? 'B' : 'A'}${byKey[k]!.slice(1)}`;
          return { ...h, pdu: { ...h.pdu, signatures: sigs } };
        }
        if (body === 'h5') return { ...h, pdu: { ...h.pdu, content: { msgtype: 'm.text', body: 'tampered' } } };
        return h;
      }),
    };
  };
  try {
    const { events } = await pageBack(b, bob, roomId, 6);
    const ids = events.map((e) => e.event_id as string);
    expect(new Set(ids).size).toBe(ids.length);
    // Everything else, in order; the badly signed event is missing, the tampered one is there without content.
    expect(bodies(events)).toEqual(Array.from({ length: 20 }, (_, i) => `h${19 - i}`).flatMap((x) => (x === 'h12' ? [] : x === 'h5' ? [undefined] : [x])));
    expect(ids).not.toContain(badSig);
    const redacted = events.find((e) => e.event_id === badHash);
    expect(redacted?.content).toEqual({});
    expect(JSON.stringify(events)).not.toContain('tampered');
    expect(events[events.length - 1]!.type).toBe('m.room.create');
    // B stored nothing of the badly signed event.
    expect((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [badSig] })).events).toEqual([]);
    const [kept] = (await b.t.server.apis.roomserver.queryEventsById({ event_ids: [badHash] })).events;
    expect(kept?.pdu.content).toEqual({});
  } finally {
    rs.queryEventsById = honest;
  }
}, 120_000);
