/** The record of 3PID bindings, and the API over it, on both databases. */
import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { ThreePidAPIImpl } from '../internal/threepid.js';
import { userapiMigrations } from './migrations.js';
import type { UserapiDatabase } from './tables.js';
import { ThreePidBindingStore } from './threepidbindings.js';

describeEachDatabase<UserapiDatabase>('3PID bindings', (ctx) => {
  let store: ThreePidBindingStore;
  let now = 1_000;
  let api: ThreePidAPIImpl;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    store = new ThreePidBindingStore(ctx.db());
    api = new ThreePidAPIImpl('hs.example', store, () => now);
  });

  it('keeps one row per user, 3PID and identity server; binding again renews it', async () => {
    await store.add('alice', 'email', 'a@example.org', 'is1.example', 10);
    await store.add('alice', 'email', 'a@example.org', 'is2.example:8443', 20);
    await store.add('alice', 'msisdn', '447700900000', 'is1.example', 30);
    await store.add('bob', 'email', 'a@example.org', 'is1.example', 40);
    await store.add('alice', 'email', 'a@example.org', 'is1.example', 50);
    expect(await store.list('alice')).toEqual([
      { medium: 'email', address: 'a@example.org', idServer: 'is2.example:8443', boundTs: 20 },
      { medium: 'msisdn', address: '447700900000', idServer: 'is1.example', boundTs: 30 },
      { medium: 'email', address: 'a@example.org', idServer: 'is1.example', boundTs: 50 },
    ]);
    expect(await store.list('bob')).toHaveLength(1);
    expect(await store.list('carol')).toEqual([]);
  });

  it('removes exactly one binding', async () => {
    expect(await store.remove('alice', 'email', 'a@example.org', 'is1.example')).toBe(true);
    expect(await store.remove('alice', 'email', 'a@example.org', 'is1.example')).toBe(false);
    expect((await store.list('alice')).map((b) => b.idServer)).toEqual(['is2.example:8443', 'is1.example']);
    expect(await store.list('bob')).toHaveLength(1);
  });

  it('API: saves and finds local users bindings, emails without regard to case', async () => {
    const dave = '@dave:hs.example';
    expect(await api.performThreePidBindingSave({ userId: '@dave:other.example', medium: 'email', address: 'd@example.org', idServer: 'is1.example' })).toEqual({ saved: false });
    now = 2_000;
    expect(await api.performThreePidBindingSave({ userId: dave, medium: 'email', address: 'Dave@Example.org', idServer: 'is1.example' })).toEqual({ saved: true });
    now = 3_000;
    // The same address in another case is the same binding (the first spelling is kept).
    await api.performThreePidBindingSave({ userId: dave, medium: 'email', address: 'dave@example.org', idServer: 'is1.example' });
    now = 4_000;
    await api.performThreePidBindingSave({ userId: dave, medium: 'email', address: 'dave@example.org', idServer: 'is2.example' });
    now = 5_000;
    await api.performThreePidBindingSave({ userId: dave, medium: 'msisdn', address: '15551234567', idServer: 'is1.example' });
    expect((await store.list('dave')).map((b) => [b.address, b.boundTs])).toEqual([
      ['Dave@Example.org', 3_000],
      ['dave@example.org', 4_000],
      ['15551234567', 5_000],
    ]);
    expect((await api.queryThreePidBindings({ userId: dave, medium: 'email', address: 'DAVE@example.ORG' })).bindings).toEqual([
      { medium: 'email', address: 'Dave@Example.org', idServer: 'is1.example' },
      { medium: 'email', address: 'dave@example.org', idServer: 'is2.example' },
    ]);
    // Phone numbers are not emails: no case folding, and another medium is another 3PID.
    expect((await api.queryThreePidBindings({ userId: dave, medium: 'msisdn', address: 'dave@example.org' })).bindings).toEqual([]);
    expect((await api.queryThreePidBindings({ userId: dave })).bindings).toHaveLength(3);
    expect((await api.queryThreePidBindings({ userId: '@dave:other.example' })).bindings).toEqual([]);
  });

  it('API: removes a 3PID binding on one server, or on all', async () => {
    const dave = '@dave:hs.example';
    expect(await api.performThreePidBindingRemoval({ userId: dave, medium: 'email', address: 'dave@EXAMPLE.org', idServer: 'is2.example' })).toEqual({ removed: 1 });
    expect(await api.performThreePidBindingRemoval({ userId: dave, medium: 'email', address: 'dave@example.org', idServer: 'is3.example' })).toEqual({ removed: 0 });
    await api.performThreePidBindingSave({ userId: dave, medium: 'email', address: 'dave@example.org', idServer: 'is3.example' });
    expect(await api.performThreePidBindingRemoval({ userId: dave, medium: 'email', address: 'dave@example.org' })).toEqual({ removed: 2 });
    expect((await api.queryThreePidBindings({ userId: dave })).bindings).toEqual([{ medium: 'msisdn', address: '15551234567', idServer: 'is1.example' }]);
    expect(await api.performThreePidBindingRemoval({ userId: '@dave:other.example', medium: 'msisdn', address: '15551234567' })).toEqual({ removed: 0 });
  });
});
