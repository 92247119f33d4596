/**
 * Local peeks (MSC2753): the rooms each device reads without being joined. A peek is sent in
 * full (state and timeline from the room's start) on the device's first sync after it began,
 * then incrementally like a joined room; `sent` records that the full section went out.
 */
import type { Kysely } from 'kysely';
import { dbBool, fromDbBool } from '../../internal/sqlutil/index.js';
import type { SyncapiDatabase } from './tables.js';

export interface Peek {
  roomId: string;
  /** The PDU stream position when the peek began. */
  pos: number;
  /** Whether a /sync has given the device the room's full section since the peek began. */
  sent: boolean;
}

export class PeekStore {
  constructor(readonly db: Kysely<SyncapiDatabase>) {}

  /** Starts (or restarts: the next sync gives the room in full again) a device's peek. */
  async add(userId: string, deviceId: string, roomId: string, pos: number): Promise<void> {
    await this.db
      .insertInto('syncapi_peeks')
      .values({ user_id: userId, device_id: deviceId, room_id: roomId, creation_pos: pos, sent: dbBool(false) })
      .onConflict((oc) => oc.columns(['user_id', 'device_id', 'room_id']).doUpdateSet({ creation_pos: pos, sent: dbBool(false) }))
      .execute();
  }

  /** Ends a device's peek; whether there was one. */
  async remove(userId: string, deviceId: string, roomId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('syncapi_peeks').where('user_id', '=', userId).where('device_id', '=', deviceId).where('room_id', '=', roomId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Ends the peeks of every device of the user in the room (the user joined it); whether there were any. */
  async removeUser(userId: string, roomId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('syncapi_peeks').where('user_id', '=', userId).where('room_id', '=', roomId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Every peek: (room, user, device). */
  async all(): Promise<Array<{ roomId: string; userId: string; deviceId: string }>> {
    const rows = await this.db.selectFrom('syncapi_peeks').select(['room_id', 'user_id', 'device_id']).execute();
    return rows.map((r) => ({ roomId: r.room_id, userId: r.user_id, deviceId: r.device_id }));
  }

  async forDevice(userId: string, deviceId: string): Promise<Peek[]> {
    const rows = await this.db.selectFrom('syncapi_peeks').select(['room_id', 'creation_pos', 'sent']).where('user_id', '=', userId).where('device_id', '=', deviceId).execute();
    return rows.map((r) => ({ roomId: r.room_id, pos: Number(r.creation_pos), sent: fromDbBool(r.sent) }));
  }

  async markSent(userId: string, deviceId: string, roomIds: readonly string[]): Promise<void> {
    if (roomIds.length === 0) return;
    await this.db.updateTable('syncapi_peeks').set({ sent: dbBool(true) }).where('user_id', '=', userId).where('device_id', '=', deviceId).where('room_id', 'in', [...roomIds]).execute();
  }

  /** The users with a device peeking into the room (to wake on its new events). */
  async peekers(roomId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('syncapi_peeks').select('user_id').distinct().where('room_id', '=', roomId).execute();
    return rows.map((r) => r.user_id);
  }
}
