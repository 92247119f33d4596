import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { federationapiMigrations } from './migrations.js';
import { ServerKeyStore, type FederationapiServerKeysDatabase, type StoredServerKey } from './serverkeys.js';

describeEachDatabase<FederationapiServerKeysDatabase>('federationapi server keys', (ctx) => {
  let store: ServerKeyStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'federationapi', federationapiMigrations);
    store = new ServerKeyStore(ctx.db());
  });
  const key = (keyId: string, extra: Partial<StoredServerKey> = {}): StoredServerKey => ({
    serverName: 'remote.test',
    keyId,
    publicKey: `pk-${keyId}`,
    validUntilTs: 2_000_000_000_000,
    expiredTs: null,
    fetchedTs: 1_700_000_000_000,
    ...extra,
  });

  it('stores and reads back keys with 64-bit timestamps and nullable expired_ts', async () => {
    await store.storeKeys([key('ed25519:a'), key('ed25519:old', { expiredTs: 1_600_000_000_000 })], '{"r":1}');
    const keys = await store.keysOf('remote.test');
    expect(keys.sort((a, b) => a.keyId.localeCompare(b.keyId))).toEqual([key('ed25519:a'), key('ed25519:old', { expiredTs: 1_600_000_000_000 })]);
    expect(await store.keysOf('other.test')).toEqual([]);
    expect(await store.responsesOf('remote.test')).toEqual([{ json: '{"r":1}', fetchedTs: 1_700_000_000_000 }]);
  });

  it('lets a fresher response replace a key and keeps it against a staler one', async () => {
    await store.storeKeys([key('ed25519:b', { validUntilTs: 100 })], '{"r":"first"}');
    await store.storeKeys([key('ed25519:b', { validUntilTs: 200, expiredTs: 150, fetchedTs: 1_800_000_000_000 })], '{"r":"newer"}');
    await store.storeKeys([key('ed25519:b', { validUntilTs: 150 })], '{"r":"stale"}');
    const b = (await store.keysOf('remote.test')).find((k) => k.keyId === 'ed25519:b');
    expect(b).toMatchObject({ validUntilTs: 200, expiredTs: 150, fetchedTs: 1_800_000_000_000 });
    const responses = await store.responsesOf('remote.test');
    expect(responses.map((r) => r.json)).toEqual(['{"r":"newer"}', '{"r":1}']);
  });
});
