import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { userapiMigrations } from './migrations.js';
import { RegistrationTokenStore, isUsable } from './registrationtokens.js';
import type { UserapiDatabase } from './tables.js';

describeEachDatabase<UserapiDatabase>('registration tokens', (ctx) => {
  let store: RegistrationTokenStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    store = new RegistrationTokenStore(ctx.db());
  });

  it('hands out exactly uses_allowed uses, even to concurrent registrations', async () => {
    expect(await store.create('three', 3, null)).toBe(true);
    expect(await store.create('three', 1, null)).toBe(false);
    const results = await Promise.all(Array.from({ length: 10 }, () => store.use('three', Date.now())));
    expect(results.filter(Boolean)).toHaveLength(3);
    expect(await store.get('three')).toEqual({ token: 'three', usesAllowed: 3, pending: 0, completed: 3, expiryTime: null });
  });

  it('refuses expired tokens; unlimited tokens never run out; lists by validity', async () => {
    const now = Date.now();
    await store.create('expired', null, now - 1);
    await store.create('unlimited', null, null);
    expect(await store.use('expired', now)).toBe(false);
    for (let i = 0; i < 5; i++) expect(await store.use('unlimited', now)).toBe(true);
    expect(await store.use('missing', now)).toBe(false);
    expect((await store.list(true, now)).map((t) => t.token)).toEqual(['unlimited']);
    expect((await store.list(false, now)).map((t) => t.token)).toEqual(['expired', 'three']);
    expect(isUsable((await store.update('three', { usesAllowed: 4 }))!, now)).toBe(true);
    expect(await store.delete('three')).toBe(true);
    expect(await store.delete('three')).toBe(false);
  });
});
