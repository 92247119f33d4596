import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import type { KeyBackupSession } from '../api/keybackup.js';
import { KeyBackupStore } from '../storage/keybackup.js';
import { userapiMigrations } from '../storage/migrations.js';
import type { UserapiDatabase } from '../storage/tables.js';
import { KeyBackupAPIImpl, isBetterKey } from './keybackup.js';

const key = (first: number, forwarded: number, verified: boolean, data = 'x'): KeyBackupSession => ({
  first_message_index: first,
  forwarded_count: forwarded,
  is_verified: verified,
  session_data: { ciphertext: data },
});

it('ranks keys: verified first, then the lower first message index, then the fewer forwards', () => {
  expect(isBetterKey(key(5, 5, true), key(0, 0, false))).toBe(true);
  expect(isBetterKey(key(0, 0, false), key(5, 5, true))).toBe(false);
  expect(isBetterKey(key(1, 9, true), key(2, 0, true))).toBe(true);
  expect(isBetterKey(key(2, 1, true), key(2, 2, true))).toBe(true);
  expect(isBetterKey(key(2, 2, true), key(2, 2, true))).toBe(false);
});

describeEachDatabase<UserapiDatabase>('key backup', (ctx) => {
  let api: KeyBackupAPIImpl;
  let user = 0;
  const nextUser = () => `@u${++user}:hs`;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    api = new KeyBackupAPIImpl(new KeyBackupStore(ctx.db()));
  });

  it('creates, reads, updates and deletes versions; the latest undeleted one is current', async () => {
    const u = nextUser();
    expect(await api.queryKeyBackupVersion({ userId: u })).toEqual({});
    const { version: v1 } = await api.performKeyBackupVersionCreation({ userId: u, algorithm: 'm.megolm_backup.v1', authData: { public_key: 'a' } });
    const { version: v2 } = await api.performKeyBackupVersionCreation({ userId: u, algorithm: 'm.megolm_backup.v1', authData: 'opaque' });
    expect(Number(v2)).toBeGreaterThan(Number(v1));
    expect((await api.queryKeyBackupVersion({ userId: u })).info).toEqual({ version: v2, algorithm: 'm.megolm_backup.v1', auth_data: 'opaque', count: 0, etag: '0' });
    expect(await api.performKeyBackupVersionUpdate({ userId: u, version: v1, algorithm: 'm.megolm_backup.v1', authData: { public_key: 'b' } })).toEqual({});
    expect((await api.queryKeyBackupVersion({ userId: u, version: v1 })).info?.auth_data).toEqual({ public_key: 'b' });
    expect(await api.performKeyBackupVersionUpdate({ userId: u, version: v1, algorithm: 'other', authData: {} })).toEqual({ error: 'algorithm_mismatch' });
    expect(await api.performKeyBackupVersionDeletion({ userId: u, version: v2 })).toEqual({});
    expect(await api.performKeyBackupVersionDeletion({ userId: u, version: v2 })).toEqual({ error: 'not_found' });
    expect((await api.queryKeyBackupVersion({ userId: u })).info?.version).toBe(v1);
    expect(await api.queryKeyBackupVersion({ userId: u, version: v2 })).toEqual({});
    for (const bogus of ['bogus', '0', '-1', '1e3', '']) expect(await api.queryKeyBackupVersion({ userId: u, version: bogus })).toEqual({});
    // Another user's version is not this user's.
    expect(await api.queryKeyBackupVersion({ userId: nextUser(), version: v1 })).toEqual({});
  });

  it('keeps the best key per session, counts keys, changes the etag only with the keys', async () => {
    const u = nextUser();
    const { version } = await api.performKeyBackupVersionCreation({ userId: u, algorithm: 'm.megolm_backup.v1', authData: {} });
    const first = await api.performKeyBackupUpload({ userId: u, version, keys: { '!r:hs': { s1: key(3, 0, false, 'first'), s2: key(0, 0, false) } } });
    expect(first).toEqual({ count: 2, etag: '1' });
    const worse = await api.performKeyBackupUpload({ userId: u, version, keys: { '!r:hs': { s1: key(4, 0, false, 'worse') } } });
    expect(worse).toEqual({ count: 2, etag: '1' });
    const better = await api.performKeyBackupUpload({ userId: u, version, keys: { '!r:hs': { s1: key(1, 0, false, 'better') } } });
    expect(better).toEqual({ count: 2, etag: '2' });
    expect((await api.queryKeyBackup({ userId: u, version, roomId: '!r:hs', sessionId: 's1' })).keys).toEqual({ '!r:hs': { s1: key(1, 0, false, 'better') } });
    expect((await api.queryKeyBackup({ userId: u, version })).keys?.['!r:hs']).toHaveProperty('s2');
    expect(await api.performKeyBackupDeletion({ userId: u, version, roomId: '!r:hs', sessionId: 's2' })).toEqual({ count: 1, etag: '3' });
    expect(await api.performKeyBackupDeletion({ userId: u, version, roomId: '!none:hs' })).toEqual({ count: 1, etag: '3' });
    expect((await api.queryKeyBackupVersion({ userId: u, version })).info).toMatchObject({ count: 1, etag: '3' });
  });

  it('takes uploads for the current version only, and forgets the keys of deleted versions', async () => {
    const u = nextUser();
    const { version: old } = await api.performKeyBackupVersionCreation({ userId: u, algorithm: 'm.megolm_backup.v1', authData: {} });
    await api.performKeyBackupUpload({ userId: u, version: old, keys: { '!r:hs': { s: key(0, 0, true) } } });
    const { version: current } = await api.performKeyBackupVersionCreation({ userId: u, algorithm: 'm.megolm_backup.v1', authData: {} });
    expect(await api.performKeyBackupUpload({ userId: u, version: old, keys: { '!r:hs': { s: key(0, 0, true) } } })).toEqual({ error: 'wrong_version', currentVersion: current });
    expect(await api.performKeyBackupUpload({ userId: u, version: '999999', keys: {} })).toEqual({ error: 'not_found' });
    await api.performKeyBackupVersionDeletion({ userId: u, version: old });
    expect(await api.queryKeyBackup({ userId: u, version: old })).toEqual({ error: 'not_found' });
    expect(await api.queryKeyBackup({ userId: u, version: current })).toEqual({ keys: {} });
  });
});
