/**
 * Peeking over federation (MSC2444) between two of our servers in this process: a user of B
 * peeks a world_readable room of A; B's /sync shows the room (its state, then A's new events);
 * B renews its peek before A's (shortened) renewal interval elapses; A evicts a peek nobody
 * renews; an unpeek, or the peeking device going idle, ends B's peek at A; rooms that are not
 * world_readable are refused; the routes want X-Matrix and answer 404 M_UNRECOGNIZED with
 * msc2444 off.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { DEFAULT_PEEK_TIMING, peekTiming } from '../internal/peektiming.js';
import { openDatabase, type OpenedDatabase } from '../internal/sqlutil/index.js';
import { databaseFor } from '../setup/config/config.js';
import { federationRequest, startFederatingNode, type FederatingNode } from '../test/federation.js';
import { getJson, startTestServer, testConfig, type TestServer } from '../test/harness.js';
import { FederationPeekStore, type FederationapiPeeksDatabase } from './storage/peeks.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const INTERVAL = 2000;
const GRACE = 1000;

let a: FederatingNode;
let b: FederatingNode;
let alice: string;
let bob: string;
let aDb: OpenedDatabase<unknown>;
let bDb: OpenedDatabase<unknown>;
/** A's and B's federationapi peek tables, read beside the servers. */
let aPeeks: FederationPeekStore;
let bPeeks: FederationPeekStore;
const enc = encodeURIComponent;

const req = (n: { t: TestServer } | TestServer, method: string, p: string, token: string, body?: unknown) =>
  getJson(`${('t' in n ? n.t : n).baseUrl}/_matrix/client/v3${p}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  }) as Promise<{ status: number; body: Body }>;
const register = async (n: { t: TestServer } | TestServer, user: string) => (await req(n, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: user, password: 'pw' })).body.access_token as string;
const until = async <T>(fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FILTER = enc(JSON.stringify({ room: { timeline: { limit: 50 } } }));
const sync = async (n: FederatingNode, token: string, since?: string) => (await req(n, 'GET', `/sync?timeout=0&filter=${FILTER}${since ? `&since=${enc(since)}` : ''}`, token)).body;
/** Syncs (incrementally) until `check` passes on a response; that response. */
const syncUntil = async (n: FederatingNode, token: string, check: (b: Body) => boolean, since?: string): Promise<Body> => {
  let at = since;
  return until(async () => {
    const s = await sync(n, token, at);
    at = s.next_batch as string;
    return check(s) ? s : undefined;
  });
};
const peekSection = (s: Body, roomId: string): Body | undefined => s.rooms?.peek?.[roomId];
const bodies = (section: Body | undefined): string[] => ((section?.timeline?.events ?? []) as Body[]).filter((e) => e.type === 'm.room.message').map((e) => e.content.body as string);
let txn = 0;
const send = async (token: string, roomId: string, body: string) => (await req(a, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`, token, { msgtype: 'm.text', body })).body.event_id as string;
const worldReadableRoom = async (): Promise<string> => {
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat', name: 'Peekable' })).body.room_id as string;
  expect((await req(a, 'PUT', `/rooms/${enc(roomId)}/state/m.room.history_visibility/`, alice, { history_visibility: 'world_readable' })).status).toBe(200);
  return roomId;
};

/** An HTTPS request to A signed as B (or unsigned), as B's federation client would send it. */
const asB = (method: 'PUT' | 'DELETE', path: string, body: unknown, sign = true): Promise<{ status: number; body: Body }> =>
  federationRequest(b, a, method, path, { body, ...(sign ? {} : { authorization: null }) });

beforeAll(async () => {
  // Short clocks: A asks for renewal every 2 s; B renews at half of it; idle devices are not looked for yet.
  Object.assign(peekTiming, { inboundRenewalIntervalMs: INTERVAL, inboundEvictionGraceMs: GRACE, inboundSweepMs: 100, outboundCheckMs: 100, idlePeekerMs: 10 * 60_000, idleSweepMs: 100 });
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
  alice = await register(a, 'alice');
  bob = await register(b, 'bob');
  aDb = openDatabase(databaseFor(a.t.cfg, 'federationapi').connectionString, { baseDir: a.t.cfg.baseDir });
  bDb = openDatabase(databaseFor(b.t.cfg, 'federationapi').connectionString, { baseDir: b.t.cfg.baseDir });
  aPeeks = new FederationPeekStore(aDb.db as unknown as Kysely<FederationapiPeeksDatabase>);
  bPeeks = new FederationPeekStore(bDb.db as unknown as Kysely<FederationapiPeeksDatabase>);
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
  await Promise.all([aDb?.close(), bDb?.close()]);
  Object.assign(peekTiming, DEFAULT_PEEK_TIMING);
});

it('peeks a room of another server: its state, then its new events, with the peek renewed past its interval', async () => {
  const roomId = await worldReadableRoom();
  await send(alice, roomId, 'before the peek');
  const before = await sync(b, bob);

  expect(await req(b, 'POST', `/peek/${enc(roomId)}`, bob, {})).toMatchObject({ status: 200, body: { room_id: roomId } });
  // B peeks through A (the room ID's server), which knows B peeks.
  const [outbound] = await bPeeks.ofRoom('outbound', roomId);
  expect(outbound).toMatchObject({ serverName: a.name, renewalIntervalMs: INTERVAL });
  await until(async () => ((await aPeeks.ofRoom('inbound', roomId)).some((p) => p.serverName === b.name && p.peekId === outbound!.peekId) ? true : undefined));

  // The room comes in full in the peek section of B's next sync: the state A had, and its messages.
  const first = await syncUntil(b, bob, (s) => bodies(peekSection(s, roomId)).includes('before the peek'), before.next_batch as string);
  const section = peekSection(first, roomId)!;
  const shown = [...(section.state.events as Body[]), ...(section.timeline.events as Body[])];
  expect(shown.map((e) => e.type)).toEqual(expect.arrayContaining(['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.name', 'm.room.history_visibility']));
  expect(shown.find((e) => e.type === 'm.room.history_visibility')?.content).toEqual({ history_visibility: 'world_readable' });
  expect(shown.some((e) => e.type === 'm.room.member' && e.state_key === `@alice:${a.name}`)).toBe(true);
  expect(first.rooms.join[roomId]).toBeUndefined();

  // A's new events reach B, which is in no room of A's: A sends them because B peeks.
  await send(alice, roomId, 'news 1');
  const second = await syncUntil(b, bob, (s) => bodies(peekSection(s, roomId)).includes('news 1'), first.next_batch as string);
  expect(bodies(peekSection(second, roomId))).not.toContain('before the peek');

  // Past twice the interval, B has renewed (A's record of it moved on) and events still come.
  await sleep(2 * INTERVAL);
  const renewed = (await aPeeks.ofRoom('inbound', roomId)).find((p) => p.serverName === b.name)!;
  expect(renewed.renewedTs).toBeGreaterThan(renewed.creationTs);
  expect(Date.now() - renewed.renewedTs).toBeLessThan(INTERVAL);
  const bRow = (await bPeeks.ofRoom('outbound', roomId))[0]!;
  expect(bRow.renewedTs).toBeGreaterThan(bRow.creationTs);
  await send(alice, roomId, 'news 2');
  await syncUntil(b, bob, (s) => bodies(peekSection(s, roomId)).includes('news 2'), second.next_batch as string);
});

it('ends the peek at A on unpeek: A sends B nothing more of the room', async () => {
  const roomId = await worldReadableRoom();
  expect((await req(b, 'POST', `/peek/${enc(roomId)}`, bob, {})).status).toBe(200);
  await until(async () => ((await aPeeks.ofRoom('inbound', roomId)).length > 0 ? true : undefined));
  const seen = await send(alice, roomId, 'seen');
  await until(async () => ((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [seen] })).events.length > 0 ? true : undefined));

  expect(await req(b, 'POST', `/unpeek/${enc(roomId)}`, bob, {})).toMatchObject({ status: 200, body: {} });
  await until(async () => ((await aPeeks.ofRoom('inbound', roomId)).length === 0 ? true : undefined));
  expect(await bPeeks.ofRoom('outbound', roomId)).toEqual([]);
  const unseen = await send(alice, roomId, 'not for B');
  // A later event of another peeked room does reach B: had A sent the first, it would be there by then.
  const other = await worldReadableRoom();
  expect((await req(b, 'POST', `/peek/${enc(other)}`, bob, {})).status).toBe(200);
  const marker = await send(alice, other, 'marker');
  await until(async () => ((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [marker] })).events.length > 0 ? true : undefined));
  expect((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [unseen] })).events).toEqual([]);
  await req(b, 'POST', `/unpeek/${enc(other)}`, bob, {});
});

it('refuses a peek into a room that is not world_readable, over federation too', async () => {
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat' })).body.room_id as string;
  await req(a, 'PUT', `/rooms/${enc(roomId)}/state/m.room.history_visibility/`, alice, { history_visibility: 'shared' });
  expect(await req(b, 'POST', `/peek/${enc(roomId)}`, bob, {})).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
  expect(await bPeeks.ofRoom('outbound', roomId)).toEqual([]);
  expect(await aPeeks.ofRoom('inbound', roomId)).toEqual([]);
  const path = `/_matrix/federation/v1/peek/${enc(roomId)}/pk1?ver=10&ver=11`;
  expect(await asB('PUT', path, {})).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
  // A room of A's that B cannot reach: unknown at A.
  expect((await req(b, 'POST', `/peek/${enc(`!unknown:${a.name}`)}`, bob, {})).status).toBe(404);
});

it('wants X-Matrix on PUT and DELETE /peek, answers the state signed requests ask for, and takes a peek away on DELETE', async () => {
  const roomId = await worldReadableRoom();
  const path = `/_matrix/federation/v1/peek/${enc(roomId)}/manual`;
  expect(await asB('PUT', `${path}?ver=10`, {}, false)).toMatchObject({ status: 401, body: { errcode: 'M_UNAUTHORIZED' } });
  expect(await asB('DELETE', path, {}, false)).toMatchObject({ status: 401 });
  const version = (await a.t.server.apis.roomserver.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] })).room_version!;
  expect(await asB('PUT', `${path}?ver=1`, {})).toMatchObject({ status: 400, body: { errcode: 'M_INCOMPATIBLE_ROOM_VERSION', room_version: version } });
  expect(await asB('PUT', `/_matrix/federation/v1/peek/${enc(`!nope:${a.name}`)}/x?ver=${version}`, {})).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });

  const fresh = await asB('PUT', `${path}?ver=${version}`, {});
  expect(fresh.status).toBe(200);
  expect(fresh.body).toMatchObject({ room_version: version, renewal_interval: INTERVAL });
  expect((fresh.body.state as Body[]).map((e) => e.type)).toEqual(expect.arrayContaining(['m.room.create', 'm.room.history_visibility', 'm.room.member']));
  expect((fresh.body.auth_chain as Body[]).some((e) => e.type === 'm.room.create')).toBe(true);
  expect(fresh.body.latest_event.type).toBe('m.room.history_visibility');
  expect(typeof fresh.body.latest_event_id).toBe('string');
  await until(async () => ((await aPeeks.get('inbound', b.name, roomId, 'manual')) ? true : undefined));
  // Within its interval, a second PUT renews it.
  expect(await asB('PUT', `${path}?ver=${version}`, {})).toEqual({ status: 200, body: {} });
  expect(await asB('DELETE', path, {})).toEqual({ status: 200, body: {} });
  expect(await aPeeks.get('inbound', b.name, roomId, 'manual')).toBeUndefined();
  expect(await asB('DELETE', path, {})).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
});

it('evicts a peek its server stops renewing', async () => {
  const roomId = await worldReadableRoom();
  const version = (await a.t.server.apis.roomserver.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [] })).room_version!;
  // B's key, but not B's peeker: nobody renews this one.
  expect((await asB('PUT', `/_matrix/federation/v1/peek/${enc(roomId)}/lapsing?ver=${version}`, {})).status).toBe(200);
  const recorded = await until(async () => aPeeks.get('inbound', b.name, roomId, 'lapsing'));
  expect(recorded.renewalIntervalMs).toBe(INTERVAL);
  expect(await aPeeks.liveInboundServers(roomId, GRACE)).toEqual([b.name]);
  // Gone once its interval and the grace have passed (and a sweep ran), not before.
  await sleep(INTERVAL - 300);
  expect(await aPeeks.get('inbound', b.name, roomId, 'lapsing')).toBeDefined();
  await until(async () => ((await aPeeks.get('inbound', b.name, roomId, 'lapsing')) === undefined ? true : undefined), 5_000);
  expect(Date.now() - recorded.renewedTs).toBeGreaterThanOrEqual(INTERVAL + GRACE);
  // No longer among the servers the room's events are sent to.
  expect(await aPeeks.liveInboundServers(roomId, GRACE)).toEqual([]);
  // A renewal after eviction is a new peek: the state again.
  const again = await asB('PUT', `/_matrix/federation/v1/peek/${enc(roomId)}/lapsing?ver=${version}`, {});
  expect(again.status).toBe(200);
  expect(Array.isArray(again.body.state)).toBe(true);
  await asB('DELETE', `/_matrix/federation/v1/peek/${enc(roomId)}/lapsing`, {}).catch(() => undefined);
});

it('ends the remote peek when the peeking device stops syncing, and peeks again when it comes back', async () => {
  const roomId = await worldReadableRoom();
  const start = await sync(b, bob);
  expect((await req(b, 'POST', `/peek/${enc(roomId)}`, bob, {})).status).toBe(200);
  const first = await syncUntil(b, bob, (s) => Boolean(peekSection(s, roomId)), start.next_batch as string);
  await until(async () => ((await aPeeks.ofRoom('inbound', roomId)).length > 0 ? true : undefined));

  // The device goes quiet: after idlePeekerMs without a /sync, B ends its peek at A.
  peekTiming.idlePeekerMs = 300;
  try {
    await until(async () => ((await bPeeks.ofRoom('outbound', roomId)).length === 0 ? true : undefined), 5_000);
    await until(async () => ((await aPeeks.ofRoom('inbound', roomId)).length === 0 ? true : undefined), 5_000);
  } finally {
    peekTiming.idlePeekerMs = 10 * 60_000;
  }
  const missed = await send(alice, roomId, 'while nobody looked');
  // Back: its next /sync peeks the room again, which then comes in full, with what it missed.
  const back = await syncUntil(b, bob, (s) => bodies(peekSection(s, roomId)).includes('while nobody looked'), first.next_batch as string);
  // The room's state came over federation: it shows as state, not as timeline.
  const backSection = peekSection(back, roomId)!;
  expect([...(backSection.state.events as Body[]), ...(backSection.timeline.events as Body[])].some((e: Body) => e.type === 'm.room.create')).toBe(true);
  expect((await bPeeks.ofRoom('outbound', roomId)).length).toBe(1);
  expect((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [missed] })).events).toHaveLength(1);
  await req(b, 'POST', `/unpeek/${enc(roomId)}`, bob, {});
});

it('with msc2444 off: the federation peek routes are unrecognized and rooms of other servers cannot be peeked', async () => {
  const { cfg, dir } = testConfig((doc) => {
    (doc.mscs as { mscs: string[] }).mscs = ['msc2753'];
  });
  const t = await startTestServer({ cfg, dir });
  try {
    const res = await getJson(`${t.baseUrl}/_matrix/federation/v1/peek/${enc('!r:elsewhere.example')}/p`, { method: 'PUT', body: '{}', headers: { 'Content-Type': 'application/json' } });
    expect(res).toMatchObject({ status: 404, body: { errcode: 'M_UNRECOGNIZED' } });
    const del = await getJson(`${t.baseUrl}/_matrix/federation/v1/peek/${enc('!r:elsewhere.example')}/p`, { method: 'DELETE' });
    expect(del).toMatchObject({ status: 404, body: { errcode: 'M_UNRECOGNIZED' } });
    const carol = await register(t, 'carol');
    // The room ID names another server; with msc2444 off nothing is asked of it.
    expect(await req(t, 'POST', `/peek/${enc(`!r:${a.name}`)}`, carol, {})).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
  } finally {
    await t.stop();
  }
});
