import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { userapiMigrations } from './migrations.js';
import type { UserapiDatabase } from './tables.js';
import { UserStore } from './userstore.js';

describeEachDatabase<UserapiDatabase>('userapi storage', (ctx) => {
  let store: UserStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    store = new UserStore(ctx.db());
  });

  it('creates an account once, with its profile', async () => {
    expect(await store.createAccount('alice', 'hash', { isGuest: false, isAdmin: true }, 1000)).toBe(true);
    expect(await store.createAccount('alice', 'other', { isGuest: false, isAdmin: false }, 2000)).toBe(false);
    expect(await store.account('alice')).toEqual({ localpart: 'alice', passwordHash: 'hash', createdTs: 1000, isGuest: false, isAdmin: true, deactivated: false });
    expect(await store.account('nobody')).toBeUndefined();
    const profile = await ctx.db().selectFrom('userapi_profiles').selectAll().where('localpart', '=', 'alice').executeTakeFirst();
    expect(profile).toEqual({ localpart: 'alice', display_name: 'alice', avatar_url: null });
  });

  it('finds devices by token hash, replaces a device\'s token on re-login, deletes devices', async () => {
    await store.upsertDevice({ localpart: 'alice', deviceId: 'D1', tokenHash: 't1', displayName: 'phone', now: 5, ip: '1.2.3.4', userAgent: 'x' });
    await store.upsertDevice({ localpart: 'alice', deviceId: 'D2', tokenHash: 't2', displayName: null, now: 6, ip: null, userAgent: null });
    expect(await store.deviceByTokenHash('t1')).toMatchObject({ localpart: 'alice', deviceId: 'D1', displayName: 'phone', lastSeenIp: '1.2.3.4' });
    await store.upsertDevice({ localpart: 'alice', deviceId: 'D1', tokenHash: 't1b', displayName: null, now: 7, ip: null, userAgent: null });
    expect(await store.deviceByTokenHash('t1')).toBeUndefined();
    expect(await store.deviceByTokenHash('t1b')).toMatchObject({ deviceId: 'D1', displayName: 'phone', lastSeenTs: 7 });
    expect((await store.devices('alice')).map((d) => d.deviceId)).toEqual(['D1', 'D2']);
    await store.deleteDevice('alice', 'D1');
    expect(await store.deviceByTokenHash('t1b')).toBeUndefined();
    expect(await store.deleteAllDevices('alice')).toBe(1);
    expect(await store.devices('alice')).toEqual([]);
  });

  it('searches profiles by localpart or display name, literally and ignoring case, skipping deactivated accounts', async () => {
    for (const [lp, name] of [['carol', 'Carol 50%'], ['caroline', 'Lina'], ['xcar', null], ['dave', 'car_owner'], ['olduser', 'Carol Old']] as const) {
      await store.createAccount(lp, null, { isGuest: false, isAdmin: false }, 1);
      await store.updateProfile(lp, { displayName: name });
    }
    await store.deactivate('olduser');
    expect((await store.searchProfiles('CAR', 10)).map((p) => p.localpart)).toEqual(['carol', 'caroline', 'dave', 'xcar']);
    expect((await store.searchProfiles('0%', 10)).map((p) => p.localpart)).toEqual(['carol']);
    expect((await store.searchProfiles('r_o', 10)).map((p) => p.localpart)).toEqual(['dave']);
    expect((await store.searchProfiles('\\', 10))).toEqual([]);
    expect((await store.searchProfiles('car', 2)).length).toBe(2);
  });
});
