/**
 * The device list updater and keys/query's answers from followed lists, on both databases.
 * The other server is an in-memory GET /user/devices (what it answers and how often it is asked
 * is the point here); the two-server test in devicelist.federation.test.ts goes over HTTPS.
 */
import type { Kysely } from 'kysely';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import type { KeyObject, OutputKeyChangeEvent, QueryKeysResponse } from '../api/keys.js';
import { RemoteDeviceListStore } from '../storage/devicelists.js';
import { userapiMigrations } from '../storage/migrations.js';
import type { UserapiDatabase } from '../storage/tables.js';
import { DeviceListUpdater, deviceListTiming } from './devicelist.js';
import { RemoteKeyCache } from './devicelistquery.js';

const SERVER = 'remote.test';
const BOB = `@bob:${SERVER}`;
const CAROL = `@carol:${SERVER}`;

const deviceKeys = (userId: string, deviceId: string, v = 1): KeyObject => ({
  user_id: userId,
  device_id: deviceId,
  algorithms: ['m.olm.v1.curve25519-aes-sha2'],
  keys: { [`ed25519:${deviceId}`]: `ed-${deviceId}-${v}` },
  signatures: { [userId]: { [`ed25519:${deviceId}`]: 'sig' } },
});
const masterKey = (userId: string, pub = 'A'.repeat(43)): KeyObject => ({ user_id: userId, usage: ['master'], keys: { [`ed25519:${pub}`]: pub } });

const until = async (fn: () => Promise<boolean>, ms = 5_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};
const emptyAnswer = (): QueryKeysResponse => ({ deviceKeys: {}, masterKeys: {}, selfSigningKeys: {}, userSigningKeys: {}, failures: {} });

/** What the other server holds and answers, and how often it was asked. */
class FakeRemote {
  lists = new Map<string, { stream_id: number; devices: Array<Record<string, unknown>>; master_key?: KeyObject }>();
  fetches: string[] = [];
  mode: 'ok' | 'down' | 'refuse' = 'ok';
  fetch = async (userId: string): Promise<{ body: Record<string, unknown> } | { error: string; unreachable: boolean }> => {
    this.fetches.push(userId);
    if (this.mode === 'down') return { error: 'connection refused', unreachable: true };
    if (this.mode === 'refuse') return { error: 'answered 404', unreachable: false };
    const l = this.lists.get(userId) ?? { stream_id: 0, devices: [] };
    return { body: { user_id: userId, ...l } };
  };
}

describeEachDatabase<UserapiDatabase>('device list updater', (ctx) => {
  let store: RemoteDeviceListStore;
  let remote: FakeRemote;
  let announced: Array<Omit<OutputKeyChangeEvent, 'offset'>>;
  let shared: Set<string>;
  let updater: DeviceListUpdater;
  let cache: RemoteKeyCache;
  const timing = { ...deviceListTiming };

  const newUpdater = (): DeviceListUpdater =>
    new DeviceListUpdater({
      serverName: 'here.test',
      store,
      fetchDevices: (u) => remote.fetch(u),
      announce: async (c) => void announced.push(c),
      sharesRoom: async (u) => shared.has(u),
      log: pino({ level: 'silent' }),
    });
  const edu = (o: Record<string, unknown>) => ({ user_id: BOB, device_id: 'B1', stream_id: 1, prev_id: [], ...o });
  const query = async (userToDevices: Record<string, string[]>) => {
    const out = emptyAnswer();
    const r = await cache.answer(SERVER, userToDevices, 1_000, out);
    return { out, ...r };
  };

  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    store = new RemoteDeviceListStore(ctx.db());
    Object.assign(deviceListTiming, { startupDelayMs: 0, firstBackoffMs: 1500, cleanupIntervalMs: 60 * 60_000 });
  });
  beforeEach(async () => {
    for (const t of ['userapi_remote_device_lists', 'userapi_remote_device_keys', 'userapi_remote_cross_signing_keys'] as const) await ctx.db().deleteFrom(t).execute();
    remote = new FakeRemote();
    announced = [];
    shared = new Set([BOB]);
    updater = newUpdater();
    cache = new RemoteKeyCache({ store, updater, sharesRoom: async (u) => shared.has(u) });
  });
  afterEach(async () => {
    await updater.stop();
    Object.assign(deviceListTiming, { ...timing, startupDelayMs: 0, firstBackoffMs: 1500 });
  });

  it('answers a followed list from our copy: the first query fetches it, the next ones ask no one', async () => {
    remote.lists.set(BOB, { stream_id: 5, devices: [{ device_id: 'B1', device_display_name: 'phone', keys: deviceKeys(BOB, 'B1') }, { device_id: 'NOKEYS' }], master_key: masterKey(BOB) });
    const first = await query({ [BOB]: [] });
    expect(first.ask).toEqual({});
    expect(first.out.deviceKeys).toEqual({ [BOB]: { B1: { ...deviceKeys(BOB, 'B1'), unsigned: { device_display_name: 'phone' } } } });
    expect(first.out.masterKeys).toEqual({ [BOB]: masterKey(BOB) });
    expect(remote.fetches).toEqual([BOB]);
    const again = await query({ [BOB]: [] });
    expect(again.out).toEqual(first.out);
    const one = await query({ [BOB]: ['B1', 'B9'] });
    expect(Object.keys(one.out.deviceKeys[BOB]!)).toEqual(['B1']);
    expect(remote.fetches).toEqual([BOB]);
    expect((await store.lists([BOB])).get(BOB)).toEqual({ streamId: 5, stale: false, fetched: true });
  });

  it('leaves users who share no room with ours to keys/query, and those whose server refuses /user/devices', async () => {
    const r = await query({ [CAROL]: ['C1'] });
    expect(r.ask).toEqual({ [CAROL]: ['C1'] });
    expect(remote.fetches).toEqual([]);
    remote.mode = 'refuse';
    const refused = await query({ [BOB]: [] });
    expect(refused.ask).toEqual({ [BOB]: [] });
    expect(await store.lists([BOB])).toEqual(new Map());
    // Not asked again for a while.
    await query({ [BOB]: [] });
    expect(remote.fetches).toEqual([BOB]);
  });

  it('applies updates that follow on, ignores old ones, and announces each change', async () => {
    remote.lists.set(BOB, { stream_id: 0, devices: [] });
    await query({ [BOB]: [] });
    announced = [];
    // prev_id empty onto version 0: the first update.
    expect(await updater.onDeviceListUpdate(SERVER, edu({ stream_id: 3, device_display_name: 'phone', keys: deviceKeys(BOB, 'B1') }))).toEqual({});
    expect(await updater.onDeviceListUpdate(SERVER, edu({ device_id: 'B2', stream_id: 4, prev_id: [3], keys: deviceKeys(BOB, 'B2') }))).toEqual({});
    expect(announced.map((a) => [a.type, a.device_id])).toEqual([['device_keys', 'B1'], ['device_keys', 'B2']]);
    expect(announced[0]).toMatchObject({ user_id: BOB, display_name: 'phone', keys: deviceKeys(BOB, 'B1') });
    // The same update again, and an older one: nothing.
    await updater.onDeviceListUpdate(SERVER, edu({ device_id: 'B2', stream_id: 4, prev_id: [3], keys: deviceKeys(BOB, 'B2', 2) }));
    await updater.onDeviceListUpdate(SERVER, edu({ device_id: 'B3', stream_id: 2, prev_id: [1], keys: deviceKeys(BOB, 'B3') }));
    expect(announced).toHaveLength(2);
    // A deletion.
    await updater.onDeviceListUpdate(SERVER, edu({ device_id: 'B1', stream_id: 5, prev_id: [4], deleted: true }));
    expect(announced[2]).toMatchObject({ device_id: 'B1', deleted: true });
    const q = await query({ [BOB]: [] });
    expect(Object.keys(q.out.deviceKeys[BOB]!)).toEqual(['B2']);
    expect(q.out.deviceKeys[BOB]!['B2']).toEqual(deviceKeys(BOB, 'B2'));
    expect(remote.fetches).toEqual([BOB]);
    expect((await store.lists([BOB])).get(BOB)).toMatchObject({ streamId: 5, stale: false });
  });

  it('on a gap marks the list stale and fetches it again in the background, folding in updates that follow on', async () => {
    remote.lists.set(BOB, { stream_id: 10, devices: [{ device_id: 'B1', keys: deviceKeys(BOB, 'B1') }] });
    await query({ [BOB]: [] });
    // The server has moved on to 12 (B1 replaced, B2 new) and we missed 11.
    remote.lists.set(BOB, { stream_id: 12, devices: [{ device_id: 'B1', keys: deviceKeys(BOB, 'B1', 2) }, { device_id: 'B2', keys: deviceKeys(BOB, 'B2') }] });
    await updater.onDeviceListUpdate(SERVER, edu({ device_id: 'B2', stream_id: 12, prev_id: [11], keys: deviceKeys(BOB, 'B2') }));
    // Stale at once; the update itself is not applied on its own.
    expect((await store.lists([BOB])).get(BOB)?.stale).toBe(true);
    await until(async () => (await store.lists([BOB])).get(BOB)?.stale === false);
    expect(remote.fetches).toEqual([BOB, BOB]);
    const q = await query({ [BOB]: [] });
    expect(q.out.deviceKeys[BOB]).toEqual({ B1: deviceKeys(BOB, 'B1', 2), B2: deviceKeys(BOB, 'B2') });
    expect(announced).toContainEqual({ type: 'device_keys', user_id: BOB });
    expect((await store.lists([BOB])).get(BOB)?.streamId).toBe(12);
    // An update that follows on from the fetched version applies again.
    await updater.onDeviceListUpdate(SERVER, edu({ device_id: 'B3', stream_id: 13, prev_id: [12], keys: deviceKeys(BOB, 'B3') }));
    expect(Object.keys((await query({ [BOB]: [] })).out.deviceKeys[BOB]!).sort()).toEqual(['B1', 'B2', 'B3']);
    expect(remote.fetches).toHaveLength(2);
  });

  it('ignores updates from servers other than the user’s and garbled ones', async () => {
    await query({ [BOB]: [] });
    announced = [];
    expect(await updater.onDeviceListUpdate('evil.test', edu({ keys: deviceKeys(BOB, 'B1') }))).toEqual({ error: 'not a user of the sending server' });
    expect(await updater.onDeviceListUpdate(SERVER, edu({ keys: deviceKeys('@mallory:evil.test', 'B1') }))).toMatchObject({ error: expect.any(String) });
    expect(await updater.onDeviceListUpdate(SERVER, edu({ stream_id: -1 }))).toMatchObject({ error: expect.any(String) });
    expect(await updater.onSigningKeyUpdate('evil.test', { user_id: BOB, master_key: masterKey(BOB) })).toEqual({ error: 'not a user of the sending server' });
    expect(await updater.onSigningKeyUpdate(SERVER, { user_id: BOB, master_key: masterKey('@mallory:evil.test') })).toMatchObject({ error: expect.any(String) });
    expect(announced).toEqual([]);
    expect(await store.devices([BOB])).toEqual([]);
    expect(await store.crossSigningKeys([BOB])).toEqual(new Map());
  });

  it('updates cross-signing keys from m.signing_key_update', async () => {
    await query({ [BOB]: [] });
    expect(await updater.onSigningKeyUpdate(SERVER, { user_id: BOB, master_key: masterKey(BOB) })).toEqual({});
    expect(announced).toEqual([{ type: 'cross_signing', user_id: BOB, master_key: masterKey(BOB) }]);
    await updater.onSigningKeyUpdate(SERVER, { user_id: BOB, master_key: masterKey(BOB) });
    expect(announced).toHaveLength(1);
    expect((await query({ [BOB]: [] })).out.masterKeys).toEqual({ [BOB]: masterKey(BOB) });
  });

  it('starts following a user when an update about them comes and they share a room with ours', async () => {
    remote.lists.set(BOB, { stream_id: 0, devices: [] });
    remote.lists.set(CAROL, { stream_id: 0, devices: [] });
    // Carol shares no room: announced, not followed.
    await updater.onDeviceListUpdate(SERVER, edu({ user_id: CAROL, device_id: 'C1', stream_id: 1, keys: deviceKeys(CAROL, 'C1') }));
    expect(announced.map((a) => a.user_id)).toEqual([CAROL]);
    expect(await store.lists([CAROL])).toEqual(new Map());
    // Bob does: his list is fetched; the update that came is applied on top of it.
    await updater.onDeviceListUpdate(SERVER, edu({ stream_id: 1, keys: deviceKeys(BOB, 'B1') }));
    await until(async () => (await store.lists([BOB])).get(BOB)?.stale === false);
    expect((await store.lists([BOB])).get(BOB)?.streamId).toBe(1);
    expect(Object.keys((await query({ [BOB]: [] })).out.deviceKeys[BOB]!)).toEqual(['B1']);
    expect(remote.fetches).toEqual([BOB]);
  });

  it('answers a stale list from our copy while the server is down, and fails only with nothing to answer', async () => {
    remote.lists.set(BOB, { stream_id: 1, devices: [{ device_id: 'B1', keys: deviceKeys(BOB, 'B1') }] });
    await query({ [BOB]: [] });
    await store.markStale(BOB, true);
    shared.add(CAROL);
    remote.mode = 'down';
    const r = await query({ [BOB]: [], [CAROL]: [] });
    expect(r.out.deviceKeys[BOB]).toEqual({ B1: deviceKeys(BOB, 'B1') });
    expect(r.failure).toBe('connection refused');
    // Carol is followed from now on, to be fetched when the server answers.
    expect((await store.lists([CAROL])).get(CAROL)).toEqual({ streamId: 0, stale: true, fetched: false });
    // Backing off: not asked again for a while, yet Bob still answers.
    expect(updater.inBackoff(SERVER)).toBe(true);
    const n = remote.fetches.length;
    const again = await query({ [BOB]: [] });
    expect(again.out.deviceKeys[BOB]).toEqual({ B1: deviceKeys(BOB, 'B1') });
    expect(again.failure).toBeUndefined();
    expect(remote.fetches).toHaveLength(n);
    // The server is back: the background fetches both.
    remote.mode = 'ok';
    remote.lists.set(CAROL, { stream_id: 2, devices: [{ device_id: 'C1', keys: deviceKeys(CAROL, 'C1') }] });
    updater.schedule(SERVER);
    await until(async () => [...(await store.lists([BOB, CAROL])).values()].every((s) => !s.stale), 10_000);
    expect(Object.keys((await query({ [CAROL]: [] })).out.deviceKeys[CAROL]!)).toEqual(['C1']);
  });

  it('fetches stale lists again after a restart', async () => {
    await store.replaceList(BOB, SERVER, 1, [], new Map());
    await store.markStale(BOB, true);
    await store.track(CAROL, SERVER);
    remote.lists.set(BOB, { stream_id: 3, devices: [{ device_id: 'B1', keys: deviceKeys(BOB, 'B1') }] });
    shared.add(CAROL);
    const restarted = newUpdater();
    restarted.start();
    try {
      await until(async () => [...(await store.lists([BOB, CAROL])).values()].every((s) => !s.stale));
      expect(remote.fetches.sort()).toEqual([BOB, CAROL]);
      expect((await store.devices([BOB])).map((d) => d.deviceId)).toEqual(['B1']);
    } finally {
      await restarted.stop();
    }
  });

  it('refreshNow fetches a fresh list again (admin refreshDevices)', async () => {
    remote.lists.set(BOB, { stream_id: 1, devices: [] });
    await query({ [BOB]: [] });
    remote.lists.set(BOB, { stream_id: 1, devices: [{ device_id: 'B9', keys: deviceKeys(BOB, 'B9') }] });
    await updater.refreshNow(BOB, 5_000);
    expect(remote.fetches).toEqual([BOB, BOB]);
    expect(Object.keys((await query({ [BOB]: [] })).out.deviceKeys[BOB]!)).toEqual(['B9']);
  });

  it('the hourly sweep stops following users no one shares a room with', async () => {
    await query({ [BOB]: [] });
    shared.delete(BOB);
    const restarted = newUpdater();
    restarted.start();
    try {
      await until(async () => (await store.lists([BOB])).size === 0);
    } finally {
      await restarted.stop();
    }
  });
});
