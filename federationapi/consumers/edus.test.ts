/**
 * Two of our servers in this process, federating over HTTPS on loopback: what alice does on A
 * (typing, read receipts, presence, a to-device message) reaches bob's /sync on B as EDUs;
 * a private read receipt does not leave A.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFederatingNode, nodeRequest, type FederatingNode } from '../../test/federation.js';
import pino from 'pino';
import { createBus, subjectFor, type Bus } from '../../setup/jetstream/index.js';
import { startEDUConsumers } from './edus.js';

type Body = Record<string, unknown>;




let a: FederatingNode;
let b: FederatingNode;
let alice: string;
let bob: string;
let bobDevice: string;
let ALICE: string;
const enc = encodeURIComponent;

const req = nodeRequest;
const register = async (n: FederatingNode, user: string) => (await req(n, 'POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: user, password: 'pw' })).body;

const until = async <T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** Bob's full /sync on B. */
const bobSync = async (): Promise<Body> => (await req(b, 'GET', '/sync?timeout=0', bob)).body;
const ephemeralOf = (s: Body, roomId: string): Body[] => ((((s.rooms as Body | undefined)?.join as Record<string, Body> | undefined)?.[roomId]?.ephemeral as Body | undefined)?.events as Body[] | undefined) ?? [];
/** The event alice's m.read receipt in the room points at, as bob sees it. */
const aliceReadIn = (s: Body, roomId: string): string | undefined => {
  for (const e of ephemeralOf(s, roomId)) {
    if (e.type !== 'm.receipt') continue;
    for (const [eventId, byType] of Object.entries(e.content as Record<string, Record<string, Body>>)) if (byType['m.read']?.[ALICE]) return eventId;
  }
  return undefined;
};

const createSharedRoom = async (name: string): Promise<string> => {
  const roomId = (await req(a, 'POST', '/createRoom', alice, { preset: 'public_chat', name })).body.room_id as string;
  expect((await req(b, 'POST', `/join/${enc(roomId)}`, bob, {})).body).toEqual({ room_id: roomId });
  // A knows bob joined (so B is among the room's servers) before anything is sent.
  await until('bob joined on A', async () =>
    (await a.t.server.apis.roomserver.queryMembershipForUser({ room_id: roomId, user_id: `@bob:${b.name}` })).membership === 'join' ? true : undefined,
  );
  return roomId;
};
const sendText = async (roomId: string, txn: string, body: string): Promise<string> =>
  (await req(a, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/${txn}`, alice, { msgtype: 'm.text', body })).body.event_id as string;

describe('two servers', () => {
  let roomId: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
    alice = (await register(a, 'alice')).access_token as string;
    const r = await register(b, 'bob');
    bob = r.access_token as string;
    bobDevice = r.device_id as string;
    ALICE = `@alice:${a.name}`;
    roomId = await createSharedRoom('Ephemeral');
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.t.stop(), b?.t.stop()]);
  });

  it('sends typing notifications to the other servers in the room', async () => {
    expect((await req(a, 'PUT', `/rooms/${enc(roomId)}/typing/${enc(ALICE)}`, alice, { typing: true, timeout: 20_000 })).status).toBe(200);
    await until('alice typing on B', async () => {
      const typing = ephemeralOf(await bobSync(), roomId).find((e) => e.type === 'm.typing');
      return ((typing?.content as Body | undefined)?.user_ids as string[] | undefined)?.includes(ALICE) ? true : undefined;
    });
    await req(a, 'PUT', `/rooms/${enc(roomId)}/typing/${enc(ALICE)}`, alice, { typing: false });
    await until('alice stopped typing on B', async () => {
      const typing = ephemeralOf(await bobSync(), roomId).find((e) => e.type === 'm.typing');
      return ((typing?.content as Body | undefined)?.user_ids as string[] | undefined)?.includes(ALICE) ? undefined : true;
    });
  }, 30_000);

  it('sends public read receipts, and not private ones', async () => {
    const first = await sendText(roomId, 'r1', 'read me');
    await until('the message on B', async () => ((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [first] })).events.length > 0 ? true : undefined));
    expect((await req(a, 'POST', `/rooms/${enc(roomId)}/receipt/m.read/${enc(first)}`, alice, {})).status).toBe(200);
    expect(await until('alice read receipt on B', async () => aliceReadIn(await bobSync(), roomId))).toBe(first);

    // A private receipt in a second room, then a public one in the first: once the public one
    // (queued behind it for the same server) arrives, a leaked private one would show.
    const other = await createSharedRoom('Private');
    const secret = await sendText(other, 'p1', 'secretly read');
    const later = await sendText(roomId, 'r2', 'read later');
    await until('messages on B', async () => ((await b.t.server.apis.roomserver.queryEventsById({ event_ids: [secret, later] })).events.length === 2 ? true : undefined));
    expect((await req(a, 'POST', `/rooms/${enc(other)}/receipt/m.read.private/${enc(secret)}`, alice, {})).status).toBe(200);
    expect((await req(a, 'POST', `/rooms/${enc(roomId)}/receipt/m.read/${enc(later)}`, alice, {})).status).toBe(200);
    const s = await until('the later receipt on B', async () => {
      const sync = await bobSync();
      return aliceReadIn(sync, roomId) === later ? sync : undefined;
    });
    expect(aliceReadIn(s, other)).toBeUndefined();
    expect(ephemeralOf(s, other).filter((e) => e.type === 'm.receipt')).toEqual([]);
  }, 45_000);

  it('sends presence to servers sharing a room with the user', async () => {
    expect((await req(a, 'PUT', `/presence/${enc(ALICE)}/status`, alice, { presence: 'unavailable', status_msg: 'baking' })).status).toBe(200);
    const p = await until('alice presence on B', async () => {
      const events = (((await bobSync()).presence as Body | undefined)?.events as Body[] | undefined) ?? [];
      const mine = events.find((e) => e.sender === ALICE && (e.content as Body).status_msg === 'baking');
      return mine?.content as Body | undefined;
    });
    expect(p.presence).toBe('unavailable');
    expect(typeof p.last_active_ago).toBe('number');
  }, 30_000);

  it('sends to-device messages for remote users to their server', async () => {
    const messages = { [`@bob:${b.name}`]: { [bobDevice]: { hello: 'bob' } } };
    expect((await req(a, 'PUT', '/sendToDevice/m.test.direct/t1', alice, { messages })).status).toBe(200);
    const got = await until('the to-device message on B', async () => {
      const events = ((((await bobSync()).to_device as Body | undefined)?.events as Body[] | undefined) ?? []).filter((e) => e.type === 'm.test.direct');
      return events.length > 0 ? events : undefined;
    });
    expect(got).toEqual([{ sender: ALICE, type: 'm.test.direct', content: { hello: 'bob' } }]);
    // '*' reaches all of bob's devices: B expands it.
    await req(a, 'PUT', '/sendToDevice/m.test.direct/t2', alice, { messages: { [`@bob:${b.name}`]: { '*': { hello: 'all' } } } });
    await until('the message for all devices on B', async () => {
      const events = (((await bobSync()).to_device as Body | undefined)?.events as Body[] | undefined) ?? [];
      return events.some((e) => (e.content as Body).hello === 'all') ? true : undefined;
    });
  }, 30_000);
});

describe('the consumers alone', () => {
  const HERE = 'here.test';
  let bus: Bus;
  let sent: Array<{ to: string[]; edu: Body }>;
  const publish = async (stream: 'OutputKeyChangeEvent' | 'OutputPresenceEvent' | 'OutputTypingEvent', key: string, payload: unknown) =>
    bus.publish(subjectFor('T', stream, key), new TextEncoder().encode(JSON.stringify(payload)));
  const start = async (presenceOutbound: boolean) => {
    bus = await createBus({ addresses: [], topicPrefix: 'T', inMemory: true, storagePath: '', logger: pino({ level: 'silent' }) });
    sent = [];
    await startEDUConsumers({
      bus,
      prefix: 'T',
      serverName: HERE,
      rsAPI: {
        queryRoomsForUser: async () => ({ room_ids: ['!r1:here.test', '!r2:there.test'] }),
        queryServersInRoom: async ({ room_id }) => ({ servers: room_id === '!r1:here.test' ? [HERE, 'one.test'] : ['one.test', 'two.test'] }),
      },
      userAPI: { queryDevices: async () => ({ devices: [{ deviceId: 'DEV', displayName: 'Phone' }] as never }) },
      sender: { sendEDU: async (to, edu) => void sent.push({ to: [...to], edu: edu as Body }) },
      presenceOutbound,
      log: pino({ level: 'silent' }),
    });
  };
  afterEach(async () => bus.close());
  const wait = (n: number) => until(`${n} EDUs`, async () => (sent.length >= n ? sent : undefined), 5_000);

  it('sends device list and signing key updates to servers sharing a room', async () => {
    await start(true);
    const keys = { user_id: '@u:here.test', device_id: 'DEV', algorithms: [], keys: {}, signatures: {} };
    await publish('OutputKeyChangeEvent', '@u:here.test', { offset: 1, type: 'device_keys', user_id: '@u:here.test', device_id: 'DEV', stream_id: 3, prev_stream_id: 2, display_name: 'Phone', keys });
    await publish('OutputKeyChangeEvent', '@u:here.test', { offset: 2, type: 'device_keys', user_id: '@u:here.test', device_id: 'OLD', stream_id: 4, deleted: true });
    // Someone else's change (from another server) is not ours to send.
    await publish('OutputKeyChangeEvent', '@x:one.test', { offset: 3, type: 'device_keys', user_id: '@x:one.test', device_id: 'X', stream_id: 1, keys });
    const master = { user_id: '@u:here.test', usage: ['master'], keys: { 'ed25519:m': 'm' } };
    await publish('OutputKeyChangeEvent', '@u:here.test', { offset: 4, type: 'cross_signing', user_id: '@u:here.test', master_key: master });
    await wait(3);
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toEqual([
      { to: ['one.test', 'two.test'], edu: { edu_type: 'm.device_list_update', content: { user_id: '@u:here.test', device_id: 'DEV', device_display_name: 'Phone', stream_id: 3, prev_id: [2], keys } } },
      { to: ['one.test', 'two.test'], edu: { edu_type: 'm.device_list_update', content: { user_id: '@u:here.test', device_id: 'OLD', stream_id: 4, prev_id: [], deleted: true } } },
      { to: ['one.test', 'two.test'], edu: { edu_type: 'm.signing_key_update', content: { user_id: '@u:here.test', master_key: master } } },
    ]);
  });

  it('sends no presence when outbound presence is off, and nothing for other servers\' users', async () => {
    await start(false);
    await publish('OutputPresenceEvent', '@u:here.test', { user_id: '@u:here.test', presence: 'online', last_active_ts: Date.now() });
    await publish('OutputTypingEvent', '!r1:here.test', { room_id: '!r1:here.test', user_id: '@x:one.test', typing: true });
    await publish('OutputTypingEvent', '!r1:here.test', { room_id: '!r1:here.test', user_id: '@u:here.test', typing: true, timeout_ms: 5 });
    await wait(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toEqual([{ to: ['one.test'], edu: { edu_type: 'm.typing', content: { room_id: '!r1:here.test', user_id: '@u:here.test', typing: true } } }]);
  });
});
