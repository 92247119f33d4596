import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { syncapiMigrations } from './migrations.js';
import { PeekStore } from './peeks.js';
import type { SyncapiDatabase } from './tables.js';

describeEachDatabase<SyncapiDatabase>('syncapi peeks', (ctx) => {
  let peeks: PeekStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    peeks = new PeekStore(ctx.db());
  });

  it('keeps peeks per device, restarts one that is added again, and marks what was sent', async () => {
    await peeks.add('@u:hs', 'D1', '!r:hs', 5);
    await peeks.add('@u:hs', 'D2', '!r:hs', 6);
    await peeks.markSent('@u:hs', 'D1', ['!r:hs']);
    expect(await peeks.forDevice('@u:hs', 'D1')).toEqual([{ roomId: '!r:hs', pos: 5, sent: true }]);
    await peeks.add('@u:hs', 'D1', '!r:hs', 9);
    expect(await peeks.forDevice('@u:hs', 'D1')).toEqual([{ roomId: '!r:hs', pos: 9, sent: false }]);
    expect(await peeks.peekers('!r:hs')).toEqual(['@u:hs']);
  });

  it('lists every peek, and says whether a removal ended one', async () => {
    await peeks.add('@v:hs', 'D', '!s:hs', 1);
    await peeks.add('@w:hs', 'D', '!s:hs', 1);
    const all = await peeks.all();
    expect(all).toEqual(expect.arrayContaining([{ roomId: '!s:hs', userId: '@v:hs', deviceId: 'D' }, { roomId: '!s:hs', userId: '@w:hs', deviceId: 'D' }, { roomId: '!r:hs', userId: '@u:hs', deviceId: 'D2' }]));
    expect(await peeks.remove('@v:hs', 'D', '!s:hs')).toBe(true);
    expect(await peeks.remove('@v:hs', 'D', '!s:hs')).toBe(false);
    expect(await peeks.removeUser('@w:hs', '!s:hs')).toBe(true);
    expect(await peeks.removeUser('@w:hs', '!s:hs')).toBe(false);
    expect(await peeks.peekers('!s:hs')).toEqual([]);
  });
});
