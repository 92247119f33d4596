/**
 * The event of a device's transaction (SyncStore.eventIdForTransaction and the internal API's
 * queryEventIdForTransaction over it), on SQLite and PostgreSQL: what clientapi asks when a
 * retried PUT /send or /redact is not in its memory (after a restart).
 */
import { sql, type Kysely } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import { SyncInternalAPIImpl } from '../internal/api.js';
import { syncapiMigrations } from './migrations.js';
import { RelationsStore } from './relations.js';
import { SyncStore, type NewStreamEvent } from './syncstore.js';
import type { SyncapiDatabase } from './tables.js';

const NOW = Date.now();
const HOUR = 3_600_000;

describeEachDatabase<SyncapiDatabase>('syncapi transaction lookup', (ctx) => {
  let store: SyncStore;
  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'syncapi', syncapiMigrations);
    store = new SyncStore(ctx.db());
  });
  const ev = (eventId: string, extra: Partial<NewStreamEvent> & { ts?: number } = {}): NewStreamEvent => {
    const { ts = NOW, ...rest } = extra;
    return {
      roomId: '!r:hs',
      eventId,
      type: 'm.room.message',
      sender: '@a:hs',
      stateKey: null,
      json: JSON.stringify({ event_id: eventId, origin_server_ts: ts, content: { body: eventId } }),
      roomVersion: '10',
      addsState: [],
      removesState: [],
      ...rest,
    };
  };
  const lookup = (q: Partial<Parameters<SyncStore['eventIdForTransaction']>[0]> = {}) =>
    store.eventIdForTransaction({ roomId: '!r:hs', sender: '@a:hs', deviceId: 'D', txnId: 't1', ...q });

  it('finds the event of exactly this room, sender, device and transaction ID', async () => {
    await store.insertEvent(ev('$plain'));
    await store.insertEvent(ev('$t1', { txn: { deviceId: 'D', txnId: 't1' } }));
    await store.insertEvent(ev('$t2', { txn: { deviceId: 'D', txnId: 't2' } }));
    await store.insertEvent(ev('$other-device', { txn: { deviceId: 'E', txnId: 't3' } }));
    await store.insertEvent(ev('$other-room', { roomId: '!s:hs', txn: { deviceId: 'D', txnId: 't4' } }));
    await store.insertEvent(ev('$other-sender', { sender: '@b:hs', txn: { deviceId: 'D', txnId: 't5' } }));

    expect(await lookup()).toBe('$t1');
    expect(await lookup({ txnId: 't2' })).toBe('$t2');
    expect(await lookup({ txnId: 'never' })).toBeUndefined();
    // Each part of the key counts: the same transaction ID elsewhere is another transaction.
    expect(await lookup({ deviceId: 'E' })).toBeUndefined();
    expect(await lookup({ deviceId: 'E', txnId: 't3' })).toBe('$other-device');
    expect(await lookup({ txnId: 't4' })).toBeUndefined();
    expect(await lookup({ roomId: '!s:hs', txnId: 't4' })).toBe('$other-room');
    expect(await lookup({ txnId: 't5' })).toBeUndefined();
    expect(await lookup({ sender: '@b:hs', txnId: 't5' })).toBe('$other-sender');
    // A redaction rewrites the JSON, not the transaction.
    await store.redact('$t1', JSON.stringify({ event_id: '$t1', origin_server_ts: NOW, content: {} }));
    expect(await lookup({ sinceTs: NOW - HOUR })).toBe('$t1');
  });

  it('narrows by event type, and answers the first event of a transaction used twice', async () => {
    await store.insertEvent(ev('$msg', { txn: { deviceId: 'D', txnId: 'both' } }));
    await store.insertEvent(ev('$redaction', { type: 'm.room.redaction', txn: { deviceId: 'D', txnId: 'both' } }));
    expect(await lookup({ txnId: 'both', type: 'm.room.message' })).toBe('$msg');
    expect(await lookup({ txnId: 'both', type: 'm.room.redaction' })).toBe('$redaction');
    expect(await lookup({ txnId: 'both', type: 'm.reaction' })).toBeUndefined();
    expect(await lookup({ txnId: 'both' })).toBe('$msg');

    await store.insertEvent(ev('$again-1', { txn: { deviceId: 'D', txnId: 'again' } }));
    await store.insertEvent(ev('$again-2', { txn: { deviceId: 'D', txnId: 'again' } }));
    expect(await lookup({ txnId: 'again' })).toBe('$again-1');
  });

  it('leaves out events older than sinceTs', async () => {
    await store.insertEvent(ev('$old', { ts: NOW - 48 * HOUR, txn: { deviceId: 'D', txnId: 'old' } }));
    expect(await lookup({ txnId: 'old' })).toBe('$old');
    expect(await lookup({ txnId: 'old', sinceTs: NOW - 49 * HOUR })).toBe('$old');
    expect(await lookup({ txnId: 'old', sinceTs: NOW - 24 * HOUR })).toBeUndefined();
    // The old event no longer holds the ID: a newer one with it is the answer.
    await store.insertEvent(ev('$new', { txn: { deviceId: 'D', txnId: 'old' } }));
    expect(await lookup({ txnId: 'old', sinceTs: NOW - 24 * HOUR })).toBe('$new');
  });

  it('answers through the internal API, and nothing without storage', async () => {
    const api = new SyncInternalAPIImpl('hs', { relations: new RelationsStore(ctx.db()), events: store });
    const q = { room_id: '!r:hs', user_id: '@a:hs', device_id: 'D', transaction_id: 'both' };
    expect(await api.queryEventIdForTransaction({ ...q, type: 'm.room.redaction' })).toEqual({ event_id: '$redaction' });
    expect(await api.queryEventIdForTransaction({ ...q, type: 'm.room.message', since_ts: NOW - HOUR })).toEqual({ event_id: '$msg' });
    expect(await api.queryEventIdForTransaction({ ...q, transaction_id: 'old', since_ts: NOW - 24 * HOUR })).toEqual({ event_id: '$new' });
    expect(await api.queryEventIdForTransaction({ ...q, device_id: 'X' })).toEqual({});
    expect(await new SyncInternalAPIImpl('hs').queryEventIdForTransaction(q)).toEqual({});
  });

  it('looks the transaction up through its index, not by walking the room', async () => {
    // A busy room of one sender, none of whose events has a transaction: only the partial index narrows to one row.
    const db = ctx.db();
    await sql`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
      INSERT INTO syncapi_output_room_events (room_id, event_id, type, sender, state_key, event_json, room_version, adds_state, removes_state, device_id, txn_id)
      SELECT '!busy:hs', '$bulk' || i, 'm.room.message', '@a:hs', NULL, '{}', '10', '[]', '[]', NULL, NULL FROM n`.execute(db);
    await store.insertEvent(ev('$busy', { roomId: '!busy:hs', txn: { deviceId: 'D', txnId: 'busy' } }));
    await sql`ANALYZE`.execute(db);
    expect(await lookup({ roomId: '!busy:hs', txnId: 'busy', type: 'm.room.message' })).toBe('$busy');

    const where = sql`sender = ${'@a:hs'} AND device_id = ${'D'} AND txn_id = ${'busy'} AND room_id = ${'!busy:hs'} AND type = ${'m.room.message'}`;
    let plan: string;
    if (ctx.dialect === 'sqlite') {
      const { rows } = await sql<{ detail: string }>`EXPLAIN QUERY PLAN SELECT id, event_id, event_json FROM syncapi_output_room_events WHERE ${where}`.execute(db);
      plan = rows.map((r) => r.detail).join('\n');
    } else {
      const { rows } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN SELECT id, event_id, event_json FROM syncapi_output_room_events WHERE ${where}`.execute(db);
      plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    }
    expect(plan).toContain('syncapi_output_room_events_txn');
  });
});
