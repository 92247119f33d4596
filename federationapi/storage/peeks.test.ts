import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { federationapiMigrations } from './migrations.js';
import { FederationPeekStore, type FederationapiPeeksDatabase } from './peeks.js';

describeEachDatabase<FederationapiPeeksDatabase>('federationapi peeks', (ctx) => {
  let store: FederationPeekStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'federationapi', federationapiMigrations);
    store = new FederationPeekStore(ctx.db());
  });
  const T = 1_700_000_000_000;

  it('adds, reads back, renews and removes an inbound peek with 64-bit timestamps', async () => {
    await store.add('inbound', 'b.test', '!r:a.test', 'p1', 60_000, T);
    expect(await store.get('inbound', 'b.test', '!r:a.test', 'p1')).toEqual({ serverName: 'b.test', roomId: '!r:a.test', peekId: 'p1', creationTs: T, renewedTs: T, renewalIntervalMs: 60_000 });
    expect(await store.get('outbound', 'b.test', '!r:a.test', 'p1')).toBeUndefined();
    expect(await store.renew('inbound', 'b.test', '!r:a.test', 'p1', 30_000, T + 10)).toBe(true);
    expect(await store.get('inbound', 'b.test', '!r:a.test', 'p1')).toMatchObject({ creationTs: T, renewedTs: T + 10, renewalIntervalMs: 30_000 });
    expect(await store.renew('inbound', 'b.test', '!r:a.test', 'other', 30_000, T + 10)).toBe(false);
    expect(await store.remove('inbound', 'b.test', '!r:a.test', 'p1')).toBe(true);
    expect(await store.remove('inbound', 'b.test', '!r:a.test', 'p1')).toBe(false);
  });

  it('starts a lapsed peek afresh when it is added again', async () => {
    await store.add('outbound', 'a.test', '!again:a.test', 'p', 1000, T);
    await store.add('outbound', 'a.test', '!again:a.test', 'p', 2000, T + 5000);
    expect(await store.ofRoom('outbound', '!again:a.test')).toEqual([{ serverName: 'a.test', roomId: '!again:a.test', peekId: 'p', creationTs: T + 5000, renewedTs: T + 5000, renewalIntervalMs: 2000 }]);
    expect(await store.countOf('outbound', 'a.test')).toBe(1);
    expect(await store.countOf('inbound', 'a.test')).toBe(0);
  });

  it('names live inbound peekers of a room and evicts those not renewed within interval plus grace', async () => {
    await store.add('inbound', 'fresh.test', '!live:a.test', 'x', 1000, T);
    await store.add('inbound', 'stale.test', '!live:a.test', 'x', 1000, T - 5000);
    await store.add('inbound', 'late.test', '!live:a.test', 'x', 1000, T - 1400);
    await store.add('inbound', 'fresh.test', '!other:a.test', 'x', 1000, T);
    // late.test is past its interval but within the 500 ms grace.
    expect((await store.liveInboundServers('!live:a.test', 500, T)).sort()).toEqual(['fresh.test', 'late.test']);
    expect(await store.evictInbound(500, T)).toBe(1);
    expect((await store.ofRoom('inbound', '!live:a.test')).map((p) => p.serverName).sort()).toEqual(['fresh.test', 'late.test']);
    expect(await store.evictInbound(0, T)).toBe(1);
    expect((await store.ofRoom('inbound', '!live:a.test')).map((p) => p.serverName)).toEqual(['fresh.test']);
  });

  it('removes every peek of a room at once, in one direction only', async () => {
    await store.add('outbound', 'a.test', '!gone:a.test', 'p', 1000, T);
    await store.add('outbound', 'c.test', '!gone:a.test', 'q', 1000, T);
    await store.add('inbound', 'b.test', '!gone:a.test', 'p', 1000, T);
    expect((await store.removeRoom('outbound', '!gone:a.test')).map((p) => p.serverName).sort()).toEqual(['a.test', 'c.test']);
    expect(await store.ofRoom('outbound', '!gone:a.test')).toEqual([]);
    expect(await store.ofRoom('inbound', '!gone:a.test')).toHaveLength(1);
    expect(await store.removeRoom('outbound', '!gone:a.test')).toEqual([]);
  });
});
