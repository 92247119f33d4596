/** The /sync knock section: from syncapi's store directly, and after a knock over HTTP, on SQLite and PostgreSQL. */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, runMigrations, type OpenedDatabase } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { databaseFor } from '../../setup/config/config.js';
import { getJson, type TestServer, startTestServerOn, TEST_DIALECTS } from '../../test/harness.js';
import { syncapiMigrations } from '../storage/migrations.js';
import { SyncStore } from '../storage/syncstore.js';
import type { SyncapiDatabase } from '../storage/tables.js';
import { knockRooms } from './knocks.js';

describeEachDatabase<SyncapiDatabase>('syncapi knock section', (ctx) => {
  let store: SyncStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    store = new SyncStore(ctx.db());
  });
  const BOB = '@bob:hs';
  let n = 0;
  /** Stores a state event as the roomserver would have it reach syncapi, and applies it to the current state. */
  const state = async (roomId: string, type: string, stateKey: string, content: Record<string, unknown>, sender = '@alice:hs'): Promise<number> => {
    const eventId = `$${++n}`;
    const { pos } = await store.insertEvent({
      roomId,
      eventId,
      type,
      sender,
      stateKey,
      json: JSON.stringify({ event_id: eventId, type, state_key: stateKey, sender, room_id: roomId, content }),
      roomVersion: '10',
      addsState: [eventId],
      removesState: [],
    });
    const membership = type === 'm.room.member' ? String(content['membership']) : null;
    await store.updateCurrentState(roomId, [{ eventId, type, stateKey, membership }], [], pos);
    return pos;
  };
  const setUp = async (roomId: string) => {
    await state(roomId, 'm.room.create', '', { room_version: '10' });
    await state(roomId, 'm.room.member', '@alice:hs', { membership: 'join' });
    await state(roomId, 'm.room.power_levels', '', { users: { '@alice:hs': 100 } });
    await state(roomId, 'm.room.join_rules', '', { join_rule: 'knock' });
    await state(roomId, 'm.room.name', '', { name: 'Knock here' });
    await state(roomId, 'm.room.topic', '', { topic: 'not stripped' });
  };

  it('lists current knocks on an initial sync and new ones on an incremental sync, with stripped state', async () => {
    await setUp('!a:hs');
    await setUp('!b:hs');
    const before = await store.maxEventPos();
    await state('!a:hs', 'm.room.member', BOB, { membership: 'knock', reason: 'hi' }, BOB);
    const afterA = await store.maxEventPos();

    const initial = await knockRooms(store, BOB, 0, afterA);
    expect(Object.keys(initial)).toEqual(['!a:hs']);
    expect(initial['!a:hs']).toEqual({
      knock_state: {
        events: [
          { type: 'm.room.create', state_key: '', sender: '@alice:hs', content: { room_version: '10' } },
          { type: 'm.room.join_rules', state_key: '', sender: '@alice:hs', content: { join_rule: 'knock' } },
          { type: 'm.room.name', state_key: '', sender: '@alice:hs', content: { name: 'Knock here' } },
          { type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'knock', reason: 'hi' } },
        ],
      },
    });
    expect(Object.keys(await knockRooms(store, BOB, before, afterA))).toEqual(['!a:hs']);
    // Nothing new since.
    expect(await knockRooms(store, BOB, afterA, afterA)).toEqual({});
    expect(await knockRooms(store, '@alice:hs', 0, afterA)).toEqual({});

    // A knock on !b answered (invite) within the range is not a knock any more; !a's kick neither.
    await state('!b:hs', 'm.room.member', BOB, { membership: 'knock' }, BOB);
    await state('!b:hs', 'm.room.member', BOB, { membership: 'invite' });
    await state('!a:hs', 'm.room.member', BOB, { membership: 'leave' });
    const end = await store.maxEventPos();
    expect(await knockRooms(store, BOB, afterA, end)).toEqual({});
    expect(await knockRooms(store, BOB, 0, end)).toEqual({});
    // A knock again after being turned away shows again.
    await state('!a:hs', 'm.room.member', BOB, { membership: 'knock' }, BOB);
    expect(Object.keys(await knockRooms(store, BOB, end, await store.maxEventPos()))).toEqual(['!a:hs']);
  });
});

for (const dialect of TEST_DIALECTS) {
  describe(`knock section after a knock over HTTP [${dialect}]`, () => {
    let t: TestServer;
    let syncDb: OpenedDatabase<SyncapiDatabase>;
    const req = (method: string, path: string, token: string, body?: unknown) =>
      getJson(`${t.baseUrl}/_matrix/client/v3${path}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    const reg = async (u: string) => (await req('POST', '/register', '', { auth: { type: 'm.login.dummy' }, username: u, password: 'pw' })).body.access_token as string;
    beforeAll(async () => {
      t = await startTestServerOn(dialect);
      // A second connection to syncapi's database (SQLite in WAL mode, or PostgreSQL: reading alongside the server is fine).
      syncDb = openDatabase<SyncapiDatabase>(databaseFor(t.cfg, 'syncapi').connectionString, { baseDir: t.cfg.baseDir });
    }, 60_000);
    afterAll(async () => {
      await syncDb?.close();
      await t?.stop();
    });

    it('shows the knocker the room once syncapi has the knock, and not after it is accepted', async () => {
      const alice = await reg('alice');
      const bob = await reg('bob');
      const BOB = '@bob:localhost:8008';
      const roomId = (
        await req('POST', '/createRoom', alice, {
          room_version: '11',
          name: 'Door',
          initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }],
        })
      ).body.room_id as string;
      const store = new SyncStore(syncDb.db);
      const from = await store.maxEventPos();
      expect((await req('POST', `/knock/${encodeURIComponent(roomId)}`, bob, { reason: 'please' })).status).toBe(200);

      const until = async <T>(f: () => Promise<T>, ok: (v: T) => boolean): Promise<T> => {
        for (let i = 0; i < 100; i++) {
          const v = await f();
          if (ok(v)) return v;
          await new Promise((r) => setTimeout(r, 20));
        }
        return f();
      };
      const knocks = await until(
        async () => knockRooms(store, BOB, 0, await store.maxEventPos()),
        (k) => roomId in k,
      );
      const events = (knocks[roomId]?.['knock_state'] as { events: Array<{ type: string; state_key: string; content: Record<string, unknown> }> }).events;
      expect(events.map((e) => e.type)).toEqual(['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.member']);
      expect(events[3]).toMatchObject({ state_key: BOB, content: { membership: 'knock', reason: 'please' } });
      expect(Object.keys(await knockRooms(store, BOB, from, await store.maxEventPos()))).toEqual([roomId]);

      expect((await req('POST', `/rooms/${encodeURIComponent(roomId)}/invite`, alice, { user_id: BOB })).status).toBe(200);
      expect(await until(async () => knockRooms(store, BOB, 0, await store.maxEventPos()), (k) => !(roomId in k))).toEqual({});
    });
  });
}
