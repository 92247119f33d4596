/** Pushers, GET /notifications, unread counts in /sync and delivery to a push gateway, end to end. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getJson, startTestServer, type TestServer } from '../../test/harness.js';

let t: TestServer;
let alice: string;
let bob: string;
let gw: http.Server;
let gwUrl: string;
const pushes: Array<Record<string, unknown>> = [];
const rejectKeys = new Set<string>();

const req = (token: string, method: string, path: string, body?: unknown) =>
  getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
const register = async (username: string) => (await req('', 'POST', '/register', { auth: { type: 'm.login.dummy' }, username, password: 'pw' })).body.access_token as string;

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  gw = http.createServer((rq, rs) => {
    let text = '';
    rq.on('data', (b: Buffer) => (text += b.toString()));
    rq.on('end', () => {
      const body = JSON.parse(text) as { notification: { devices: Array<{ pushkey: string }> } };
      pushes.push(body.notification);
      const keys = body.notification.devices.map((d) => d.pushkey).filter((k) => rejectKeys.has(k));
      rs.writeHead(200, { 'Content-Type': 'application/json' });
      rs.end(JSON.stringify({ rejected: keys }));
    });
  });
  await new Promise<void>((r) => gw.listen(0, '127.0.0.1', r));
  gwUrl = `http://127.0.0.1:${(gw.address() as AddressInfo).port}/_matrix/push/v1/notify`;
  t = await startTestServer();
  alice = await register('alice');
  bob = await register('bob');
});
afterAll(async () => {
  await t.stop();
  gw.close();
});

const pusher = (pushkey: string, extra: Record<string, unknown> = {}) => ({
  kind: 'http',
  app_id: 'app.test',
  app_display_name: 'Test',
  device_display_name: 'Phone',
  profile_tag: 'tag',
  pushkey,
  lang: 'en',
  data: { url: gwUrl },
  ...extra,
});

it('validates POST /pushers/set and lists and deletes pushers', async () => {
  const bad = async (body: unknown) => {
    const r = await req(alice, 'POST', '/pushers/set', body);
    return `${r.status} ${String(r.body.errcode)}`;
  };
  expect(await bad(pusher('k', { data: { url: 'not a url' } }))).toBe('400 M_INVALID_PARAM');
  expect(await bad(pusher('k', { data: { url: '/relative/path' } }))).toBe('400 M_INVALID_PARAM');
  expect(await bad(pusher('k', { data: { url: 'ftp://gw/x' } }))).toBe('400 M_INVALID_PARAM');
  expect(await bad(pusher('k', { data: {} }))).toBe('400 M_MISSING_PARAM');
  expect(await bad(pusher('k', { kind: 'carrier-pigeon' }))).toBe('400 M_INVALID_PARAM');
  expect(await bad({ ...pusher('k'), app_id: undefined })).toBe('400 M_MISSING_PARAM');
  expect((await req('', 'GET', '/pushers')).status).toBe(401);

  expect((await req(alice, 'POST', '/pushers/set', pusher('tmp', { data: { url: gwUrl, format: 'event_id_only', extra: 1 } }))).status).toBe(200);
  const listed = (await req(alice, 'GET', '/pushers')).body.pushers as Array<Record<string, unknown>>;
  expect(listed).toEqual([{ ...pusher('tmp'), data: { url: gwUrl, format: 'event_id_only', extra: 1 } }]);
  expect((await req(alice, 'POST', '/pushers/set', { app_id: 'app.test', pushkey: 'tmp', kind: null })).status).toBe(200);
  expect((await req(alice, 'GET', '/pushers')).body).toEqual({ pushers: [] });
});

it('counts, lists, pushes and resets notifications', async () => {
  expect((await req(alice, 'POST', '/pushers/set', pusher('key1'))).status).toBe(200);
  expect((await req(alice, 'POST', '/pushers/set', pusher('key2', { data: { url: gwUrl, format: 'event_id_only' } }))).status).toBe(200);
  const roomId = (await req(alice, 'POST', '/createRoom', { preset: 'public_chat', name: 'Tea room' })).body.room_id as string;
  expect((await req(bob, 'POST', `/join/${encodeURIComponent(roomId)}`, {})).status).toBe(200);
  const send = async (body: string, extra: Record<string, unknown> = {}) =>
    (await req(bob, 'PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${Math.random()}`, { msgtype: 'm.text', body, ...extra })).body.event_id as string;
  const e1 = await send('hello there');
  const e2 = await send('hey alice, look', {});

  const counts = async (): Promise<Record<string, number> | undefined> => {
    const s = await req(alice, 'GET', '/sync');
    const room = (s.body.rooms as Record<string, Record<string, Record<string, unknown>> | undefined>).join?.[roomId];
    return room?.['unread_notifications'] as Record<string, number> | undefined;
  };
  await until('two notifications', async () => ((await counts())?.['notification_count'] === 2 ? true : undefined));
  expect(await counts()).toEqual({ notification_count: 2, highlight_count: 1 });

  const list = (await req(alice, 'GET', '/notifications')).body;
  const notifs = list.notifications as Array<Record<string, unknown>>;
  expect(notifs.map((n) => (n.event as { event_id: string }).event_id)).toEqual([e2, e1]);
  expect(notifs[0]).toMatchObject({ room_id: roomId, read: false, profile_tag: null });
  expect(notifs[0]!.actions).toContainEqual({ set_tweak: 'highlight' });
  expect(((await req(alice, 'GET', '/notifications?only=highlight')).body.notifications as unknown[]).length).toBe(1);
  const page = (await req(alice, 'GET', '/notifications?limit=1')).body;
  expect((page.notifications as unknown[]).length).toBe(1);
  const next = (await req(alice, 'GET', `/notifications?limit=1&from=${String(page.next_token)}`)).body;
  expect(((next.notifications as Array<{ event: { event_id: string } }>)[0]!).event.event_id).toBe(e1);

  // The gateway heard of both messages on both pushers, full and event_id_only.
  const full = await until('full push', async () => pushes.find((p) => p['event_id'] === e2 && (p['devices'] as Array<{ pushkey: string }>)[0]!.pushkey === 'key1'));
  expect(full).toMatchObject({ room_id: roomId, type: 'm.room.message', sender: '@bob:localhost:8008', room_name: 'Tea room', counts: { unread: 2 }, content: { body: 'hey alice, look' } });
  expect((full['devices'] as Array<Record<string, unknown>>)[0]).toMatchObject({ app_id: 'app.test', pushkey: 'key1', data: {}, tweaks: { highlight: true, sound: 'default' } });
  const idOnly = await until('event_id_only push', async () => pushes.find((p) => p['event_id'] === e2 && (p['devices'] as Array<{ pushkey: string }>)[0]!.pushkey === 'key2'));
  expect(idOnly['content']).toBeUndefined();
  expect(idOnly['type']).toBeUndefined();

  // A receipt reads up to its event; the badge goes to the gateway.
  pushes.length = 0;
  expect((await req(alice, 'POST', `/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(e2)}`, {})).status).toBe(200);
  await until('counts reset', async () => ((await counts())?.['notification_count'] === 0 ? true : undefined));
  expect(await counts()).toEqual({ notification_count: 0, highlight_count: 0 });
  await until('zero badge', async () => pushes.find((p) => (p['counts'] as { unread: number } | undefined)?.unread === 0 && p['event_id'] === undefined));
  expect(((await req(alice, 'GET', '/notifications')).body.notifications as Array<{ read: boolean }>).every((n) => n.read)).toBe(true);

  // A private receipt resets too; a pushkey the gateway rejects loses its pusher.
  rejectKeys.add('key1');
  const e3 = await send('again');
  await until('count 1', async () => ((await counts())?.['notification_count'] === 1 ? true : undefined));
  await until('rejected pusher removed', async () => (((await req(alice, 'GET', '/pushers')).body.pushers as unknown[]).length === 1 ? true : undefined));
  expect((await req(alice, 'POST', `/rooms/${encodeURIComponent(roomId)}/receipt/m.read.private/${encodeURIComponent(e3)}`, {})).status).toBe(200);
  await until('private receipt reset', async () => ((await counts())?.['notification_count'] === 0 ? true : undefined));

  // Bob's own messages never notify him; a muted room stops notifying alice.
  expect(((await req(bob, 'GET', '/notifications')).body.notifications as unknown[]).length).toBe(0);
  expect((await req(alice, 'PUT', `/pushrules/global/room/${encodeURIComponent(roomId)}`, { actions: ['dont_notify'] })).status).toBe(200);
  await send('muted');
  const e5 = await send('muted but hey alice', { 'm.mentions': { user_ids: ['@alice:localhost:8008'] } });
  await until('mention still counted', async () => ((await counts())?.['highlight_count'] === 1 ? true : undefined));
  expect(await counts()).toEqual({ notification_count: 1, highlight_count: 1 });
  expect(((await req(alice, 'GET', '/notifications?limit=1')).body.notifications as Array<{ event: { event_id: string } }>)[0]!.event.event_id).toBe(e5);
});

it('pushes invites to the invitee', async () => {
  pushes.length = 0;
  const carol = await register('carol');
  expect((await req(carol, 'POST', '/pushers/set', pusher('carolkey'))).status).toBe(200);
  const roomId = (await req(bob, 'POST', '/createRoom', { preset: 'private_chat' })).body.room_id as string;
  expect((await req(bob, 'POST', `/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: '@carol:localhost:8008' })).status).toBe(200);
  const p = await until('invite push', async () => pushes.find((x) => x['type'] === 'm.room.member'));
  expect(p).toMatchObject({ room_id: roomId, sender: '@bob:localhost:8008', membership: 'invite', user_is_target: true });
});

it('counts threads apart when the filter asks, and a receipt alone brings the room to an incremental sync', async () => {
  const dave = await register('dave');
  const erin = await register('erin');
  const roomId = (await req(dave, 'POST', '/createRoom', { preset: 'public_chat' })).body.room_id as string;
  const room = encodeURIComponent(roomId);
  expect((await req(erin, 'POST', `/join/${room}`, {})).status).toBe(200);
  const send = async (body: string, extra: Record<string, unknown> = {}) =>
    (await req(erin, 'PUT', `/rooms/${room}/send/m.room.message/${Math.random()}`, { msgtype: 'm.text', body, ...extra })).body.event_id as string;
  const root = await send('a thread root');
  const inThread = { 'm.relates_to': { rel_type: 'm.thread', event_id: root } };
  await send('reply one', inThread);
  const last = await send('reply two', inThread);

  type RoomSync = { unread_notifications?: Record<string, number>; unread_thread_notifications?: Record<string, Record<string, number>> };
  const roomOf = async (filter: unknown, since?: string): Promise<{ room: RoomSync | undefined; next: string }> => {
    const q = `/sync?timeout=0&filter=${encodeURIComponent(JSON.stringify(filter))}${since ? `&since=${encodeURIComponent(since)}` : ''}`;
    const s = await req(dave, 'GET', q);
    return { room: (s.body.rooms as { join?: Record<string, RoomSync> } | undefined)?.join?.[roomId], next: s.body.next_batch as string };
  };
  // Receipts are filtered out, so that only the change of counts can bring the room back.
  const threaded = { room: { timeline: { unread_thread_notifications: true }, ephemeral: { not_types: ['m.receipt'] } } };
  await until('three notifications', async () => ((await roomOf({})).room?.unread_notifications?.['notification_count'] === 3 ? true : undefined));
  // Without the filter flag: one count for the room, no thread section.
  const plain = (await roomOf({})).room!;
  expect(plain.unread_notifications).toEqual({ notification_count: 3, highlight_count: 0 });
  expect(plain.unread_thread_notifications).toBeUndefined();
  // With it: the main timeline and the thread apart.
  const split = (await roomOf(threaded)).room!;
  expect(split.unread_notifications).toEqual({ notification_count: 1, highlight_count: 0 });
  expect(split.unread_thread_notifications).toEqual({ [root]: { notification_count: 2, highlight_count: 0 } });

  // A threaded receipt reads the thread only; an incremental sync shows the room for that alone.
  const { next } = await roomOf(threaded);
  expect((await roomOf(threaded, next)).room).toBeUndefined();
  expect((await req(dave, 'POST', `/rooms/${room}/receipt/m.read/${encodeURIComponent(last)}`, { thread_id: root })).status).toBe(200);
  const after = await until('the receipt comes down', async () => (await roomOf(threaded, next)).room);
  expect(after.unread_notifications).toEqual({ notification_count: 1, highlight_count: 0 });
  expect(after.unread_thread_notifications).toEqual({});
});

it('does not notify a user of the messages of someone they ignore', async () => {
  const fay = await register('fay');
  const gus = await register('gus');
  const hal = await register('hal');
  const roomId = (await req(fay, 'POST', '/createRoom', { preset: 'public_chat' })).body.room_id as string;
  const room = encodeURIComponent(roomId);
  for (const t of [gus, hal]) expect((await req(t, 'POST', `/join/${room}`, {})).status).toBe(200);
  expect((await req(fay, 'PUT', `/user/${encodeURIComponent('@fay:localhost:8008')}/account_data/m.ignored_user_list`, { ignored_users: { '@gus:localhost:8008': {} } })).status).toBe(200);
  const send = async (token: string, body: string) => (await req(token, 'PUT', `/rooms/${room}/send/m.room.message/${Math.random()}`, { msgtype: 'm.text', body })).body.event_id as string;
  const ignoredId = await send(gus, 'from gus');
  const heardId = await send(hal, 'from hal');
  const ids = async () => ((await req(fay, 'GET', '/notifications')).body.notifications as Array<{ event: { event_id: string } }>).map((n) => n.event.event_id);
  await until('hal notified', async () => ((await ids()).includes(heardId) ? true : undefined));
  expect(await ids()).not.toContain(ignoredId);
  // Unignored, gus notifies again.
  expect((await req(fay, 'PUT', `/user/${encodeURIComponent('@fay:localhost:8008')}/account_data/m.ignored_user_list`, { ignored_users: {} })).status).toBe(200);
  const later = await send(gus, 'gus again');
  await until('gus notified', async () => ((await ids()).includes(later) ? true : undefined));
});
