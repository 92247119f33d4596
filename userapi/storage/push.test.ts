import type { Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { userapiMigrations } from './migrations.js';
import { PushStore, type NewNotification } from './push.js';
import type { UserapiDatabase } from './tables.js';

const n = (userId: string, eventId: string, depth: number, o: Partial<NewNotification> = {}): NewNotification => ({
  userId,
  roomId: '!r:x',
  eventId,
  threadId: '',
  depth,
  ts: Date.now(),
  highlight: false,
  actions: ['notify'],
  event: { event_id: eventId },
  ...o,
});

describeEachDatabase<UserapiDatabase>('userapi push storage', (ctx) => {
  let store: PushStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
    store = new PushStore(ctx.db());
  });

  it('counts notifications per user and room, once per event, and resets them on receipts', async () => {
    let changed = await store.addNotifications([n('@a:x', '$1', 5), n('@b:x', '$1', 5, { highlight: true })]);
    expect(changed.get('@b:x')).toEqual({ roomId: '!r:x', notification_count: 1, highlight_count: 1 });
    changed = await store.addNotifications([n('@a:x', '$1', 5)]);
    expect(changed.size).toBe(0);
    await store.addNotifications([n('@a:x', '$2', 6, { highlight: true }), n('@a:x', '$3', 7)]);
    expect(await store.counts('@a:x', ['!r:x', '!other:x'])).toEqual(new Map([['!r:x', { notification_count: 3, highlight_count: 1 }]]));
    expect(await store.totalUnread('@a:x')).toBe(3);
    expect(await store.markRead('@a:x', '!r:x', 6, undefined)).toEqual({ counts: { notification_count: 1, highlight_count: 0 }, changed: true });
    expect(await store.markRead('@a:x', '!r:x', 6, undefined)).toMatchObject({ changed: false });
    // An event that arrives after a receipt that reaches past it is read already.
    changed = await store.addNotifications([n('@a:x', '$late', 4)]);
    expect(changed.size).toBe(0);
    const page = await store.notifications('@a:x', undefined, 10, false);
    expect(page.map((p) => [p.event.event_id, p.read])).toEqual([['$late', true], ['$3', false], ['$2', true], ['$1', true]]);
    expect((await store.notifications('@a:x', page[1]!.id, 10, true)).map((p) => p.event.event_id)).toEqual(['$2']);
  });

  it('resets one thread for a threaded receipt', async () => {
    await store.addNotifications([n('@t:x', '$m', 1), n('@t:x', '$t1', 2, { threadId: '$root' }), n('@t:x', '$m2', 3)]);
    expect((await store.markRead('@t:x', '!r:x', 9, '$root')).counts).toEqual({ notification_count: 2, highlight_count: 0 });
    expect((await store.markRead('@t:x', '!r:x', 1, 'main')).counts).toEqual({ notification_count: 1, highlight_count: 0 });
  });

  it('keeps pushers per (app_id, pushkey, user); without append other users lose theirs; devices take theirs along', async () => {
    const p = { pushkey: 'k', kind: 'http', app_id: 'app', app_display_name: 'A', device_display_name: 'D', lang: 'en', data: { url: 'https://gw/_matrix/push/v1/notify' }, pushkeyTs: 5 };
    await store.setPusher({ ...p, userId: '@a:x', deviceId: 'DA' }, false);
    await store.setPusher({ ...p, userId: '@b:x', deviceId: 'DB' }, true);
    expect((await store.pushers('@a:x')).length).toBe(1);
    await store.setPusher({ ...p, userId: '@b:x', deviceId: 'DB', lang: 'fr' }, false);
    expect(await store.pushers('@a:x')).toEqual([]);
    expect(await store.pushers('@b:x')).toEqual([{ ...p, lang: 'fr', profile_tag: '', userId: '@b:x', deviceId: 'DB' }]);
    await store.deletePushersOfDevicesExcept('@b:x', ['DB']);
    expect((await store.pushersOf(['@b:x'])).get('@b:x')).toHaveLength(1);
    await store.deletePushersOfDevicesExcept('@b:x', []);
    expect(await store.pushers('@b:x')).toEqual([]);
    await store.setPusher({ ...p, userId: '@a:x', deviceId: 'DA' }, false);
    expect(await store.deletePusher('@a:x', 'app', 'k')).toBe(true);
    expect(await store.deletePusher('@a:x', 'app', 'k')).toBe(false);
  });
});
