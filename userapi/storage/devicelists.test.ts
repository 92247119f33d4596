import type { Kysely } from 'kysely';
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { RemoteDeviceListStore } from './devicelists.js';
import { userapiMigrations } from './migrations.js';
import type { UserapiDatabase } from './tables.js';

const BOB = '@bob:remote.test';
const CAROL = '@carol:remote.test';
const DAN = '@dan:other.test';
const key = (userId: string, deviceId: string) => JSON.stringify({ user_id: userId, device_id: deviceId, keys: { [`ed25519:${deviceId}`]: deviceId } });

describeEachDatabase<UserapiDatabase>('userapi remote device list storage', (ctx) => {
  let store: RemoteDeviceListStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    store = new RemoteDeviceListStore(ctx.db());
  });
  beforeEach(async () => {
    for (const t of ['userapi_remote_device_lists', 'userapi_remote_device_keys', 'userapi_remote_cross_signing_keys'] as const) await ctx.db().deleteFrom(t).execute();
  });

  it('follows a user from a stale, unfetched list to a fetched one, and replaces it whole', async () => {
    expect(await store.lists([BOB])).toEqual(new Map());
    expect(await store.track(BOB, 'remote.test')).toBe(true);
    expect(await store.track(BOB, 'remote.test')).toBe(false);
    expect(await store.lists([BOB])).toEqual(new Map([[BOB, { streamId: 0, stale: true, fetched: false }]]));

    await store.replaceList(BOB, 'remote.test', 7, [
      { deviceId: 'B1', displayName: 'phone', keyJson: key(BOB, 'B1') },
      { deviceId: 'B2', displayName: null, keyJson: null },
    ], new Map([['master', '{"m":1}'], ['self_signing', '{"s":1}']]));
    expect(await store.lists([BOB, CAROL])).toEqual(new Map([[BOB, { streamId: 7, stale: false, fetched: true }]]));
    expect((await store.devices([BOB])).sort((a, b) => a.deviceId.localeCompare(b.deviceId))).toEqual([
      { userId: BOB, deviceId: 'B1', displayName: 'phone', keyJson: key(BOB, 'B1') },
      { userId: BOB, deviceId: 'B2', displayName: null, keyJson: null },
    ]);
    expect(await store.crossSigningKeys([BOB])).toEqual(new Map([[BOB, new Map([['master', '{"m":1}'], ['self_signing', '{"s":1}']])]]));

    // A new fetch is the whole truth: B2 and the self-signing key are gone.
    await store.replaceList(BOB, 'remote.test', 9, [{ deviceId: 'B1', displayName: 'phone 2', keyJson: key(BOB, 'B1') }], new Map([['master', '{"m":2}']]));
    expect(await store.devices([BOB])).toEqual([{ userId: BOB, deviceId: 'B1', displayName: 'phone 2', keyJson: key(BOB, 'B1') }]);
    expect(await store.crossSigningKeys([BOB])).toEqual(new Map([[BOB, new Map([['master', '{"m":2}']])]]));
    expect((await store.lists([BOB])).get(BOB)).toEqual({ streamId: 9, stale: false, fetched: true });
  });

  it('applies single updates, adding, replacing and deleting a device, and moves the version', async () => {
    await store.replaceList(BOB, 'remote.test', 1, [], new Map());
    await store.applyUpdate(BOB, 2, { deviceId: 'B1', displayName: 'a', keyJson: key(BOB, 'B1') });
    await store.applyUpdate(BOB, 3, { deviceId: 'B1', displayName: 'b', keyJson: key(BOB, 'B1') });
    await store.applyUpdate(BOB, 4, { deviceId: 'B2', displayName: null, keyJson: key(BOB, 'B2') });
    expect((await store.devices([BOB])).map((d) => [d.deviceId, d.displayName]).sort()).toEqual([['B1', 'b'], ['B2', null]]);
    await store.applyUpdate(BOB, 5, { deviceId: 'B1', deleted: true });
    expect((await store.devices([BOB])).map((d) => d.deviceId)).toEqual(['B2']);
    expect((await store.lists([BOB])).get(BOB)?.streamId).toBe(5);
  });

  it('marks lists stale and lists stale users and servers; untracking drops everything', async () => {
    await store.replaceList(BOB, 'remote.test', 1, [{ deviceId: 'B1', displayName: null, keyJson: key(BOB, 'B1') }], new Map([['master', '{}']]));
    await store.replaceList(CAROL, 'remote.test', 1, [], new Map());
    await store.track(DAN, 'other.test');
    expect(await store.markStale('@nobody:remote.test', true)).toBe(false);
    expect(await store.markStale(CAROL, true)).toBe(true);
    expect(await store.staleServers()).toEqual(['other.test', 'remote.test']);
    expect(await store.staleUsers('remote.test', 10)).toEqual([CAROL]);
    expect(await store.staleUsers(undefined, 10)).toEqual([CAROL, DAN]);
    expect(await store.staleUsers(undefined, 1)).toEqual([CAROL]);
    // A stale list keeps its devices and stays "fetched".
    expect((await store.lists([CAROL])).get(CAROL)).toEqual({ streamId: 1, stale: true, fetched: true });
    expect(await store.trackedUsers('', 2)).toEqual([BOB, CAROL]);
    expect(await store.trackedUsers(CAROL, 2)).toEqual([DAN]);

    await store.putCrossSigningKeys(BOB, new Map([['self_signing', '{"s":1}']]));
    expect(await store.crossSigningKeys([BOB])).toEqual(new Map([[BOB, new Map([['master', '{}'], ['self_signing', '{"s":1}']])]]));
    await store.untrack([BOB, DAN]);
    expect([...(await store.lists([BOB, CAROL, DAN])).keys()]).toEqual([CAROL]);
    expect(await store.devices([BOB])).toEqual([]);
    expect(await store.crossSigningKeys([BOB])).toEqual(new Map());
  });
});
