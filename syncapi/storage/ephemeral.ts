/**
 * syncapi's tables for receipts, to-device messages and presence. Each keeps one row per key
 * whose ID is its stream position: a change deletes the row and inserts it again, so "what
 * changed after position N" is a range scan and old positions leave nothing behind.
 */
import type { Kysely } from 'kysely';
import type { JsonObject } from '../../internal/matrix/index.js';
import { inChunks } from '../../internal/sqlutil/index.js';
import type { SyncapiDatabase } from './tables.js';

export interface Receipt {
  pos: number;
  roomId: string;
  receiptType: string;
  userId: string;
  /** '' for an unthreaded receipt. */
  threadId: string;
  eventId: string;
  ts: number;
}

export interface Presence {
  pos: number;
  userId: string;
  presence: string;
  statusMsg: string | null;
  lastActiveTs: number;
}

export interface ToDeviceMessage {
  pos: number;
  /** The event as /sync delivers it: sender, type, content. */
  event: JsonObject;
}

type Db = Kysely<SyncapiDatabase>;

const maxId = async (db: Db, table: 'syncapi_receipts' | 'syncapi_send_to_device' | 'syncapi_presence'): Promise<number> => {
  const r = await db.selectFrom(table).select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
  return Number(r?.m ?? 0);
};

export class EphemeralStore {
  constructor(readonly db: Db) {}

  // -------------------------------------------------------------------------------------------
  // Receipts

  /** Stores a receipt unless it is the one already stored; returns its new position, or 0 when unchanged. */
  async upsertReceipt(r: Omit<Receipt, 'pos'>): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      const old = await tx
        .selectFrom('syncapi_receipts')
        .select('event_id')
        .where('room_id', '=', r.roomId)
        .where('receipt_type', '=', r.receiptType)
        .where('user_id', '=', r.userId)
        .where('thread_id', '=', r.threadId)
        .executeTakeFirst();
      if (old?.event_id === r.eventId) return 0;
      await tx
        .deleteFrom('syncapi_receipts')
        .where('room_id', '=', r.roomId)
        .where('receipt_type', '=', r.receiptType)
        .where('user_id', '=', r.userId)
        .where('thread_id', '=', r.threadId)
        .execute();
      const row = await tx
        .insertInto('syncapi_receipts')
        .values({ room_id: r.roomId, receipt_type: r.receiptType, user_id: r.userId, thread_id: r.threadId, event_id: r.eventId, ts: r.ts })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(row.id);
    });
  }

  /** Receipts in these rooms that moved in (from, to]. */
  async receipts(roomIds: readonly string[], from: number, to: number): Promise<Receipt[]> {
    if (to <= from) return [];
    const rows = await inChunks([...roomIds], (chunk) =>
      this.db.selectFrom('syncapi_receipts').selectAll().where('room_id', 'in', chunk).where('id', '>', from).where('id', '<=', to).orderBy('id').execute(),
    );
    return rows.map((x) => ({ pos: Number(x.id), roomId: x.room_id, receiptType: x.receipt_type, userId: x.user_id, threadId: x.thread_id, eventId: x.event_id, ts: Number(x.ts) }));
  }

  maxReceiptPos(): Promise<number> {
    return maxId(this.db, 'syncapi_receipts');
  }

  // -------------------------------------------------------------------------------------------
  // To-device messages

  async addToDevice(userId: string, deviceId: string, event: JsonObject): Promise<number> {
    const row = await this.db.insertInto('syncapi_send_to_device').values({ user_id: userId, device_id: deviceId, content: JSON.stringify(event) }).returning('id').executeTakeFirstOrThrow();
    return Number(row.id);
  }

  /** The device's messages after `from` up to `to`, oldest first, at most `limit`. */
  async toDevice(userId: string, deviceId: string, from: number, to: number, limit: number): Promise<ToDeviceMessage[]> {
    const rows = await this.db
      .selectFrom('syncapi_send_to_device')
      .select(['id', 'content'])
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .where('id', '>', from)
      .where('id', '<=', to)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ pos: Number(r.id), event: JSON.parse(r.content) as JsonObject }));
  }

  /** Whether the device has messages after `from` up to `to`. */
  async hasToDevice(userId: string, deviceId: string, from: number, to: number): Promise<boolean> {
    return (await this.toDevice(userId, deviceId, from, to, 1)).length > 0;
  }

  /** Drops the device's messages up to `upTo`: a sync from a later token proves they arrived. */
  async ackToDevice(userId: string, deviceId: string, upTo: number): Promise<void> {
    await this.db.deleteFrom('syncapi_send_to_device').where('user_id', '=', userId).where('device_id', '=', deviceId).where('id', '<=', upTo).execute();
  }

  maxToDevicePos(): Promise<number> {
    return maxId(this.db, 'syncapi_send_to_device');
  }

  // -------------------------------------------------------------------------------------------
  // Presence

  /** Stores a user's presence at a new position; returns it. */
  async setPresence(p: Omit<Presence, 'pos'>): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('syncapi_presence').where('user_id', '=', p.userId).execute();
      const row = await tx
        .insertInto('syncapi_presence')
        .values({ user_id: p.userId, presence: p.presence, status_msg: p.statusMsg, last_active_ts: p.lastActiveTs })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(row.id);
    });
  }

  async presence(userId: string): Promise<Presence | undefined> {
    const r = await this.db.selectFrom('syncapi_presence').selectAll().where('user_id', '=', userId).executeTakeFirst();
    return r ? { pos: Number(r.id), userId: r.user_id, presence: r.presence, statusMsg: r.status_msg, lastActiveTs: Number(r.last_active_ts) } : undefined;
  }

  /** Presence of these users that changed in (from, to]. */
  async presenceChanges(userIds: readonly string[], from: number, to: number): Promise<Presence[]> {
    if (to <= from) return [];
    const rows = await inChunks([...userIds], (chunk) =>
      this.db.selectFrom('syncapi_presence').selectAll().where('user_id', 'in', chunk).where('id', '>', from).where('id', '<=', to).orderBy('id').execute(),
    );
    return rows.map((r) => ({ pos: Number(r.id), userId: r.user_id, presence: r.presence, statusMsg: r.status_msg, lastActiveTs: Number(r.last_active_ts) }));
  }

  maxPresencePos(): Promise<number> {
    return maxId(this.db, 'syncapi_presence');
  }
}
