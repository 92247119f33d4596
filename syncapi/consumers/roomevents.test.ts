/**
 * syncapi's OutputRoomEvent consumer in batches, on a real in-process bus and both databases:
 * a batch is stored in stream order in one transaction and wakes /sync once at its last
 * position; other outputs split the batch and keep their place; a failure part way through a
 * batch leaves nothing of it, and the retry stores each event once.
 */
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { buildEvent, generateSigningKey, type Event, type JsonObject } from '../../internal/matrix/index.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import type { HeaderedEvent, OutputRoomEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import { sleep, subjectFor } from '../../setup/jetstream/index.js';
import { InProcessBus } from '../../setup/jetstream/inprocess/inprocess-bus.js';
import { Notifier } from '../internal/notifier.js';
import { ZERO } from '../internal/token.js';
import { syncapiMigrations } from '../storage/migrations.js';
import { PeekStore } from '../storage/peeks.js';
import { RelationsStore } from '../storage/relations.js';
import { newSearchIndex } from '../storage/search.js';
import { SyncStore, type NewStreamEvent } from '../storage/syncstore.js';
import type { SyncapiDatabase } from '../storage/tables.js';
import { startConsumers } from './consumers.js';

const PREFIX = 'RoomEventsTest';
const key = generateSigningKey();
const enc = new TextEncoder();

describeEachDatabase<SyncapiDatabase>('syncapi room event consumer in batches', (ctx) => {
  let bus: InProcessBus;
  let store: SyncStore;
  let notifier: Notifier;
  const advances: Array<{ stream: string; pos: number; users: string[] }> = [];
  const busLogs: Array<{ msg: string }> = [];
  let roomCount = 0;

  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    const db = ctx.db();
    // A switch to make storing one chosen event fail, as a database error would.
    await sql`CREATE TABLE test_fail_event (event_id TEXT NOT NULL)`.execute(db);
    if (ctx.dialect === 'sqlite') {
      await sql`CREATE TRIGGER test_fail_trigger BEFORE INSERT ON syncapi_output_room_events
        WHEN NEW.event_id IN (SELECT event_id FROM test_fail_event) BEGIN SELECT RAISE(ABORT, 'injected failure'); END`.execute(db);
    } else {
      await sql`CREATE FUNCTION test_fail_fn() RETURNS trigger AS $$ BEGIN
        IF NEW.event_id IN (SELECT event_id FROM test_fail_event) THEN RAISE EXCEPTION 'injected failure'; END IF;
        RETURN NEW; END $$ LANGUAGE plpgsql`.execute(db);
      await sql`CREATE TRIGGER test_fail_trigger BEFORE INSERT ON syncapi_output_room_events FOR EACH ROW EXECUTE FUNCTION test_fail_fn()`.execute(db);
    }
    store = new SyncStore(db);
    notifier = new Notifier({ ...ZERO });
    const advance = notifier.advance.bind(notifier);
    notifier.advance = (stream, pos, users) => {
      advances.push({ stream, pos, users: [...users].sort() });
      advance(stream, pos, users);
    };
    const busLog = pino({ level: 'warn' }, { write: (line: string) => void busLogs.push(JSON.parse(line) as { msg: string }) });
    bus = new InProcessBus({ topicPrefix: PREFIX, inMemory: true, storagePath: '', logger: busLog });
    const rsAPI = { queryEventsById: async () => ({ events: [] }) } as unknown as RoomserverInternalAPI;
    await startConsumers({
      bus,
      prefix: PREFIX,
      store,
      notifier,
      rsAPI,
      log: pino({ level: 'silent' }),
      peeks: new PeekStore(db),
      relations: new RelationsStore(db),
      search: newSearchIndex(db, ctx.dialect, 'en'),
    });
  });
  afterAll(async () => {
    await bus?.close();
  });
  beforeEach(() => {
    advances.length = 0;
    busLogs.length = 0;
  });

  /** A room of its own per test, with a chain of events. */
  function room(): { roomId: string; next(type: string, content: JsonObject, stateKey?: string, depth?: number): Event } {
    const roomId = `!batch${roomCount++}:hs.test`;
    let prev: Event | undefined;
    return {
      roomId,
      next(type, content, stateKey, depth) {
        const e = buildEvent(
          { type, sender: '@alice:hs.test', room_id: roomId, content, prev_events: prev ? [prev.eventId] : [], auth_events: [], depth: depth ?? (prev?.depth ?? 0) + 1, ...(stateKey !== undefined ? { state_key: stateKey } : {}) },
          '10',
          'hs.test',
          key.keyId,
          key,
        );
        if (depth === undefined) prev = e;
        return e;
      },
    };
  }
  const headered = (e: Event): HeaderedEvent => ({ room_version: '10', pdu: e.json });
  const fresh = (e: Event, adds: string[] = []): OutputRoomEvent => ({ type: 'new_room_event', new_room_event: { event: headered(e), adds_state_event_ids: adds, removes_state_event_ids: [], latest_event_ids: [e.eventId] } });
  /** Publishes outputs in one tick, so that the consumer finds them waiting together. */
  const publishTogether = (outs: OutputRoomEvent[]) => Promise.all(outs.map((o) => bus.publish(subjectFor(PREFIX, 'OutputRoomEvent'), enc.encode(JSON.stringify(o)))));
  async function until(cond: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(10);
    }
  }
  const timeline = async (roomId: string) => (await store.roomEvents(roomId, 0, Number.MAX_SAFE_INTEGER, 100)).events;
  const copies = async (eventId: string) => Number((await sql<{ n: number | string }>`SELECT count(*) AS n FROM syncapi_output_room_events WHERE event_id = ${eventId}`.execute(ctx.db())).rows[0]!.n);

  it('stores a batch in stream order in one go and wakes its audience once, at its last position', async () => {
    const r = room();
    const joinA = r.next('m.room.member', { membership: 'join' }, '@alice:hs.test');
    const joinB = r.next('m.room.member', { membership: 'join' }, '@bob:hs.test');
    const msgs = [1, 2, 3].map((i) => r.next('m.room.message', { msgtype: 'm.text', body: `hello number${i}` }));
    const history = r.next('m.room.message', { msgtype: 'm.text', body: 'from long ago' }, undefined, 0);
    await publishTogether([fresh(joinA, [joinA.eventId]), fresh(joinB, [joinB.eventId]), ...msgs.map((m) => fresh(m)), { type: 'old_room_event', old_room_event: { event: headered(history) } }]);
    await until(async () => (await timeline(r.roomId)).length === 5, 'the batch stored');

    const events = await timeline(r.roomId);
    expect(events.map((e) => e.eventId)).toEqual([joinA, joinB, ...msgs].map((e) => e.eventId));
    for (let i = 1; i < events.length; i++) expect(events[i]!.pos).toBeGreaterThan(events[i - 1]!.pos);
    // History sits below the stream, where /sync never looks.
    expect((await store.eventKey(history.eventId))!.pos).toBeLessThan(0);
    expect(await store.memberships(r.roomId)).toEqual(expect.arrayContaining([{ userId: '@alice:hs.test', membership: 'join' }, { userId: '@bob:hs.test', membership: 'join' }]));
    // One wake-up for the whole batch, at the last event's position, for everyone it concerns.
    const pdu = advances.filter((a) => a.stream === 'pdu');
    expect(pdu).toEqual([{ stream: 'pdu', pos: events.at(-1)!.pos, users: ['@alice:hs.test', '@bob:hs.test'] }]);
    expect(notifier.current.pdu).toBe(events.at(-1)!.pos);
    // An event chained on the batch's previous one opened no gap; the first one's missing prev did.
    expect(await store.isBackwardExtremity(joinA.eventId)).toBe(false);
    expect(await store.isBackwardExtremity(msgs[2]!.eventId)).toBe(false);
  });

  it('handles other outputs in their place, splitting the batch around them', async () => {
    const r = room();
    const m1 = r.next('m.room.message', { body: 'before the invite' });
    const invite = r.next('m.room.member', { membership: 'invite' }, '@carol:hs.test');
    const m2 = r.next('m.room.message', { body: 'after the invite' });
    await publishTogether([fresh(m1), { type: 'new_invite_event', new_invite_event: { event: headered(invite) } }, fresh(m2)]);
    await until(async () => (await timeline(r.roomId)).length === 2, 'both messages stored');
    const [s1, s2] = await timeline(r.roomId);
    expect([s1!.eventId, s2!.eventId]).toEqual([m1.eventId, m2.eventId]);
    expect(await store.invites('@carol:hs.test', 0, Number.MAX_SAFE_INTEGER)).toHaveLength(1);
    // The message before the invite was stored and announced before it, the one after, after it.
    expect(advances.map((a) => `${a.stream}@${a.pos}`)).toEqual([`pdu@${s1!.pos}`, `invite@${notifier.current.invite}`, `pdu@${s2!.pos}`]);
  });

  it('a failure part way through a batch leaves nothing of it; the retry stores each event once, in order', async () => {
    const r = room();
    const [m1, m2, m3] = [1, 2, 3].map((i) => r.next('m.room.message', { body: `message ${i}` }));
    await sql`INSERT INTO test_fail_event (event_id) VALUES (${m2!.eventId})`.execute(ctx.db());
    const before = notifier.current.pdu;
    await publishTogether([m1!, m2!, m3!].map((m) => fresh(m)));
    await until(() => busLogs.some((l) => l.msg.includes('batch handler failed')), 'the batch failed');
    // Retried one by one: the first goes in, once; the failing one holds back the one after it.
    await until(async () => (await timeline(r.roomId)).length === 1, 'the first event stored alone');
    await sleep(300);
    expect((await timeline(r.roomId)).map((e) => e.eventId)).toEqual([m1!.eventId]);
    expect(await copies(m1!.eventId)).toBe(1);
    expect(notifier.current.pdu).toBe((await timeline(r.roomId))[0]!.pos);
    expect(notifier.current.pdu).toBeGreaterThan(before);

    await sql`DELETE FROM test_fail_event`.execute(ctx.db());
    await until(async () => (await timeline(r.roomId)).length === 3, 'the rest stored');
    await sleep(100);
    const events = await timeline(r.roomId);
    expect(events.map((e) => e.eventId)).toEqual([m1!.eventId, m2!.eventId, m3!.eventId]);
    for (const m of [m1!, m2!, m3!]) expect(await copies(m.eventId)).toBe(1);
    expect(notifier.current.pdu).toBe(events.at(-1)!.pos);
  });

  it('a batch transaction keeps the gaps that storing its events one by one keeps, and keeps nothing when it fails', async () => {
    const ev = (roomId: string, id: string, prevs: string[], depth: number): NewStreamEvent => ({
      roomId,
      eventId: `$${id}_${roomId.slice(1, 8)}`,
      type: 'm.room.message',
      sender: '@alice:hs.test',
      stateKey: null,
      json: '{}',
      roomVersion: '10',
      addsState: [],
      removesState: [],
      depth,
      prevEventIds: prevs.map((p) => `$${p}_${roomId.slice(1, 8)}`),
    });
    // e4 comes before its prev e3; e1 and e5 miss events never stored; z1, stored before, misses q.
    const shape = (roomId: string) => [ev(roomId, 'e1', ['missing0'], 1), ev(roomId, 'e2', ['e1'], 2), ev(roomId, 'e4', ['e3'], 4), ev(roomId, 'e3', ['e2'], 3), ev(roomId, 'q', ['e3'], 4), ev(roomId, 'e5', ['e4', 'missing1'], 5)];
    const gaps = async (roomId: string) => (await store.backwardExtremities(roomId, 100)).map((g) => g.eventId.split('_')[0]).sort();
    const one = '!gapsOne:hs.test';
    const batch = '!gapsAll:hs.test';
    for (const roomId of [one, batch]) await store.insertEvent(ev(roomId, 'z1', ['q'], 5));
    for (const e of shape(one)) await store.insertEvent(e);
    await store.inTransaction(async (s) => {
      for (const e of shape(batch)) await s.insertEvent(e);
    });
    expect(await gaps(one)).toEqual(['$e1', '$e5']);
    expect(await gaps(batch)).toEqual(await gaps(one));

    const failed = '!gapsFail:hs.test';
    await expect(
      store.inTransaction(async (s) => {
        for (const e of shape(failed)) await s.insertEvent(e);
        throw new Error('later in the batch');
      }),
    ).rejects.toThrow('later in the batch');
    expect(await store.roomEvents(failed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 100)).toEqual({ events: [], limited: false });
    expect(await gaps(failed)).toEqual([]);
  });
});
