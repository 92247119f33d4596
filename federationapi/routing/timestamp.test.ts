/**
 * timestamp_to_event across two of our servers federating over HTTPS on loopback: A holds a
 * room's early history, B joins later. B's users get events only A had (asked of A, checked and
 * backfilled into B's roomserver); A's federation endpoint answers servers in the room, refuses
 * others (403) and unsigned requests (401).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { federationRequest, startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { getJson } from '../../test/harness.js';

type Body = Record<string, unknown>;
const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let a: FederatingNode;
let b: FederatingNode;
let alice: string;
let bob: string;
let roomId: string;
const early: Array<{ id: string; ts: number }> = [];
let late: { id: string; ts: number };

const client = (n: FederatingNode, method: string, p: string, token: string, body?: unknown, prefix = '/_matrix/client/v3') =>
  getJson(`${n.t.baseUrl}${prefix}${p}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
const register = async (n: FederatingNode, user: string) => (await client(n, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: user, password: 'pw' })).body.access_token as string;
const lookup = (n: FederatingNode, token: string, room: string, query: string) => client(n, 'GET', `/rooms/${enc(room)}/timestamp_to_event?${query}`, token, undefined, '/_matrix/client/v1');
let txn = 0;
const send = async (token: string, body: string): Promise<{ id: string; ts: number }> => {
  const r = await client(a, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`, token, { msgtype: 'm.text', body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  const id = r.body.event_id as string;
  const [e] = (await a.t.server.apis.roomserver.queryEventsById({ event_ids: [id] })).events;
  await sleep(5);
  return { id, ts: e!.pdu.origin_server_ts };
};
const until = async <T>(fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await sleep(50);
  }
};

/** A request to A's federation API, signed by B unless `authorization` says otherwise (null: none). */
function fedToA(p: string, authorization?: string | null): Promise<{ status: number; body: Body }> {
  return federationRequest(b, a, 'GET', `/_matrix/federation${p}`, { authorization });
}

beforeAll(async () => {
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  bob = await register(b, 'bob');
  roomId = (await client(a, 'POST', '/createRoom', alice, { preset: 'public_chat', name: 'History' })).body.room_id as string;
  await sleep(5);
  for (const body of ['one', 'two', 'three']) early.push(await send(alice, body));
  expect((await client(b, 'POST', `/join/${enc(roomId)}`, bob, {})).status).toBe(200);
  await sleep(5);
  late = await send(alice, 'after bob joined');
  // B has the message sent after the join.
  await until(async () => ((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [late.id] })).events.length > 0 ? true : undefined));
}, 90_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
});

it('serves GET /timestamp_to_event to a server in the room, signed; 401 unsigned, 403 for a server not in the room', async () => {
  const [, two] = early;
  const path = (room: string, query: string) => `/v1/timestamp_to_event/${enc(room)}?${query}`;
  expect(await fedToA(path(roomId, `ts=${two!.ts}&dir=f`))).toEqual({ status: 200, body: { event_id: two!.id, origin_server_ts: two!.ts } });
  expect((await fedToA(path(roomId, `ts=${two!.ts}&dir=b`))).body.event_id).toBe(two!.id);
  const none = await fedToA(path(roomId, `ts=${late.ts + 60_000}&dir=f`));
  expect([none.status, none.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

  const unsigned = await fedToA(path(roomId, 'ts=0&dir=f'), null);
  expect([unsigned.status, unsigned.body.errcode]).toEqual([401, 'M_UNAUTHORIZED']);
  for (const [query, errcode] of [
    ['ts=x&dir=f', 'M_INVALID_PARAM'],
    ['ts=0&dir=up', 'M_INVALID_PARAM'],
    ['dir=f', 'M_MISSING_PARAM'],
  ] as const) {
    const bad = await fedToA(path(roomId, query));
    expect([query, bad.status, bad.body.errcode]).toEqual([query, 400, errcode]);
  }
  const unknown = await fedToA(path(`!nope:${a.name}`, 'ts=0&dir=f'));
  expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

  // A room B has no user in: not B's to ask about, unless anyone may read it.
  const secret = (await client(a, 'POST', '/createRoom', alice, { preset: 'private_chat' })).body.room_id as string;
  const refused = await fedToA(path(secret, `ts=${Date.now()}&dir=b`));
  expect([refused.status, refused.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
  const open = (await client(a, 'POST', '/createRoom', alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'world_readable' } }] }))
    .body.room_id as string;
  const said = (await client(a, 'PUT', `/rooms/${enc(open)}/send/m.room.message/open1`, alice, { msgtype: 'm.text', body: 'to anyone' })).body.event_id as string;
  expect((await fedToA(path(open, `ts=${Date.now() + 1000}&dir=b`))).body.event_id).toBe(said);
});

it("finds for B's user the history only A had, asking A and backfilling what it answers", async () => {
  const [one, two, three] = early as [{ id: string; ts: number }, { id: string; ts: number }, { id: string; ts: number }];
  const held = async (id: string) => (await b.t.server.apis.roomserver.queryEventsById({ event_ids: [id] })).events[0];
  expect(await held(two.id)).toBeUndefined();

  // Forwards from the second message: B's nearest is bob's join, next to the gap before it; A knows better.
  expect((await lookup(b, bob, roomId, `ts=${two.ts}&dir=f`)).body).toEqual({ event_id: two.id, origin_server_ts: two.ts });
  expect(await held(two.id)).toMatchObject({ outlier: false, rejected: false });
  // Backwards from between the first two: B has nothing before, A has the first.
  expect((await lookup(b, bob, roomId, `ts=${one.ts + 1}&dir=b`)).body).toEqual({ event_id: one.id, origin_server_ts: one.ts });
  expect(await held(one.id)).toMatchObject({ outlier: false });
  // Forwards from the third: B now has the second message and its join, but the third is closer.
  expect((await lookup(b, bob, roomId, `ts=${three.ts}&dir=f`)).body.event_id).toBe(three.id);
  // What B has itself and is next to no gap, it answers alone.
  expect((await lookup(b, bob, roomId, `ts=${late.ts}&dir=f`)).body.event_id).toBe(late.id);
  const past = await lookup(b, bob, roomId, `ts=${late.ts + 60_000}&dir=f`);
  expect([past.status, past.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

  // The backfilled event reads on B like any other.
  const ev = await client(b, 'GET', `/rooms/${enc(roomId)}/event/${enc(two.id)}`, bob);
  expect([ev.status, (ev.body.content as Body | undefined)?.body]).toEqual([200, 'two']);
}, 60_000);
