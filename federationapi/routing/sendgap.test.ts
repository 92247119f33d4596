/**
 * PUT /send when prev events are missing, with a fake remote server (Sytest 36state.pl
 * "Outbound federation requests missing prev_events and then asks for /state_ids and resolves
 * the state", "Federation rejects inbound events where the prev_events cannot be found"):
 * - a pushed event C whose prev X we lack: X comes from get_missing_events; X's own prev Y is
 *   missing too, so the state before Y is asked of the origin (/state_ids at Y, Y by /event),
 *   X goes in with the state after Y given (resolved with B's branch) and C follows; Y stays
 *   an outlier, with no state of its own here;
 * - a pushed event whose missing prev the origin does not give is refused, and the state at
 *   the gap is never asked for.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeRemote, remoteEvent } from '../../bench/federation/remote.js';
import { Event, type JsonObject, type PDUJson } from '../../internal/matrix/index.js';
import { startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { getJson } from '../../test/harness.js';

const enc = encodeURIComponent;

let ours: FederatingNode;
let remote: FakeRemote;
let alice: string;
let bob: string;
let roomId: string;
let version: string;
let authFor: (type: string) => string[];
let last: Event;
/** What the remote serves: get_missing_events, events by ID, /state_ids answers by event ID. */
let missing: Event[] = [];
const events = new Map<string, Event>();
const stateIdsAt = new Map<string, { pdu_ids: string[]; auth_chain_ids: string[] }>();
const seen: string[] = [];
let txn = 0;
let sendJoinAnswer: { state: unknown[]; auth_chain: unknown[] } = { state: [], auth_chain: [] };

const dest = () => ({ name: ours.name, port: Number(ours.name.split(':')[1]) });
const req = (method: string, p: string, token: string, body?: unknown) =>
  getJson(`${ours.t.baseUrl}/_matrix/client/v3${p}`, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` } });
const rs = () => ours.t.server.apis.roomserver;
const send = async (pdus: Event[]) => {
  const r = await remote.request(dest(), 'PUT', `/_matrix/federation/v1/send/g${++txn}`, { origin: remote.serverName, origin_server_ts: Date.now(), pdus: pdus.map((p) => p.json) } as unknown as JsonObject);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body as { pdus: Record<string, { error?: string }> }).pdus;
};
const build = (fields: { type: string; state_key?: string; content: JsonObject; prev: Event[] }): Event => {
  const e = remoteEvent(remote, version, {
    type: fields.type,
    ...(fields.state_key !== undefined ? { state_key: fields.state_key } : {}),
    sender: bob,
    room_id: roomId,
    content: fields.content,
    prev_events: fields.prev.map((p) => p.eventId),
    auth_events: authFor(fields.type),
    depth: Math.max(...fields.prev.map((p) => p.depth)) + 1,
  });
  events.set(e.eventId, e);
  return e;
};

beforeAll(async () => {
  ours = await startFederatingNode();
  remote = await FakeRemote.start((r) => {
    seen.push(`${r.method} ${r.url}`);
    if (r.method === 'PUT' && r.path.startsWith('/_matrix/federation/v1/send/')) return { status: 200, body: { pdus: {} } };
    if (r.method === 'POST' && r.path.startsWith('/_matrix/federation/v1/get_missing_events/')) return { status: 200, body: { events: missing.map((e) => e.json) } };
    if (r.method === 'GET' && r.path.startsWith('/_matrix/federation/v1/event/')) {
      const e = events.get(decodeURIComponent(r.path.slice('/_matrix/federation/v1/event/'.length)));
      return e ? { status: 200, body: { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [e.json] } } : { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'no such event' } };
    }
    if (r.method === 'GET' && r.path.startsWith('/_matrix/federation/v1/state_ids/')) {
      const at = stateIdsAt.get(new URL(r.url, 'https://x').searchParams.get('event_id') ?? '');
      return at ? { status: 200, body: at } : { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'unknown event' } };
    }
    return undefined;
  });
  alice = (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: 'alice', password: 'pw' })).body.access_token as string;
  bob = `@bob:${remote.serverName}`;
  // bob may set any state (power 100), as Sytest's user is made to.
  roomId = (await req('POST', '/createRoom', alice, { preset: 'public_chat', power_level_content_override: { users: { [`@alice:${ours.name}`]: 100, [bob]: 100 } } })).body.room_id as string;
  const made = await remote.request(dest(), 'GET', `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(bob)}?ver=10&ver=11`);
  expect(made.status).toBe(200);
  const { room_version, event: t } = made.body as { room_version: string; event: JsonObject };
  version = room_version;
  const join = remoteEvent(remote, version, { type: 'm.room.member', state_key: bob, sender: bob, room_id: roomId, content: { membership: 'join' }, prev_events: t['prev_events'] as string[], auth_events: t['auth_events'] as string[], depth: t['depth'] as number });
  const sent = await remote.request(dest(), 'PUT', `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(join.eventId)}`, join.json as unknown as JsonObject);
  expect(sent.status).toBe(200);
  sendJoinAnswer = sent.body as { state: unknown[]; auth_chain: unknown[] };
  const state = ((sent.body as { state: unknown[] }).state ?? []).map((pdu) => Event.fromPDU(pdu as PDUJson, version));
  const id = (type: string) => state.find((s) => s.type === type && s.stateKey === '')!.eventId;
  authFor = () => [id('m.room.create'), id('m.room.power_levels'), join.eventId];
  last = join;
}, 60_000);
afterAll(async () => {
  await remote?.close();
  await ours?.t.stop();
});

it("answers send_join with an auth chain oldest first, so a client keeping each key's last event keeps the newest (Sytest's federation client does)", async () => {
  const depths = sendJoinAnswer.auth_chain.map((pdu) => (pdu as { depth: number }).depth);
  expect(depths.length).toBeGreaterThan(2);
  expect(depths).toEqual([...depths].sort((a, b) => a - b));
});

it('takes a pulled event whose prev is missing with the state at that prev from the origin, and resolves the state of both branches', async () => {
  const b = build({ type: 'test_state', state_key: 'B', content: { body: 'event_b' }, prev: [last] });
  expect(await send([b])).toEqual({ [b.eventId]: {} });
  const y = build({ type: 'test_state', state_key: 'Y', content: { body: 'event_y' }, prev: [b] });
  const x = build({ type: 'm.room.message', content: { msgtype: 'm.text', body: 'event_x' }, prev: [b, y] });
  const c = build({ type: 'm.room.message', content: { msgtype: 'm.text', body: 'event_c' }, prev: [b, x] });
  // The state before Y, as the origin tells it: the room's state after B, and a state event T we have never seen.
  const t = build({ type: 'test_state', state_key: 'T', content: { topic: 'how now' }, prev: [b] });
  const afterB = (await rs().queryStateAfterEvents({ room_id: roomId, prev_event_ids: [b.eventId] })).state_events.map((h) => Event.fromPDU(h.pdu, h.room_version).eventId);
  stateIdsAt.set(y.eventId, { pdu_ids: [...afterB, t.eventId], auth_chain_ids: [] });
  missing = [x];

  expect(await send([c])).toEqual({ [c.eventId]: {} });
  expect(seen.filter((s) => s.includes('/state_ids/')).map((s) => decodeURIComponent(s))).toEqual([expect.stringContaining(`event_id=${y.eventId}`)]);
  for (const e of [y, x, c]) expect((await rs().queryEventsById({ event_ids: [e.eventId] })).events).toHaveLength(1);
  expect((await rs().queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] })).latest_event_ids).toEqual([c.eventId]);
  const current = await rs().queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'test_state', state_key: 'B' }, { type: 'test_state', state_key: 'Y' }, { type: 'test_state', state_key: 'T' }] });
  const stateKeys = current.state_events.map((h) => `${h.pdu.state_key}=${Event.fromPDU(h.pdu, h.room_version).eventId}`).sort();
  expect(stateKeys).toEqual([`B=${b.eventId}`, `T=${t.eventId}`, `Y=${y.eventId}`].sort());
  // The state at X, served to others, is the resolved one (Sytest checks it after the current state).
  const atX = await remote.request(dest(), 'GET', `/_matrix/federation/v1/state_ids/${enc(roomId)}?event_id=${enc(x.eventId)}`);
  expect(atX.status).toBe(200);
  expect((atX.body as { pdu_ids: string[] }).pdu_ids).toEqual(expect.arrayContaining([b.eventId, t.eventId, y.eventId]));
  // Y itself stays an outlier: there is no state at it here (Sytest "/state_ids returns M_NOT_FOUND for an outlier").
  for (const endpoint of ['state', 'state_ids']) {
    const r = await remote.request(dest(), 'GET', `/_matrix/federation/v1/${endpoint}/${enc(roomId)}?event_id=${enc(y.eventId)}`);
    expect(r.status, `${endpoint}: ${JSON.stringify(r.body)}`).toBe(404);
    expect((r.body as { errcode?: string }).errcode).toBe('M_NOT_FOUND');
  }
  last = c;
  missing = [];
});

it('refuses a pushed event whose missing prev the origin does not give, without asking for the state at the gap', async () => {
  const gone = build({ type: 'm.room.message', content: { msgtype: 'm.text', body: 'never sent' }, prev: [last] });
  events.delete(gone.eventId);
  const pushed = build({ type: 'm.room.message', content: { msgtype: 'm.text', body: 'after the gap' }, prev: [gone] });
  const before = seen.length;
  const results = await send([pushed]);
  expect(results[pushed.eventId]?.error).toMatch(/missing prev events/);
  expect(seen.slice(before).filter((s) => s.includes('get_missing_events'))).toHaveLength(1);
  expect(seen.slice(before).filter((s) => s.includes('/state_ids/'))).toEqual([]);
  expect((await rs().queryEventsById({ event_ids: [pushed.eventId] })).events).toEqual([]);
});
