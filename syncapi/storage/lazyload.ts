/**
 * Lazy-loading members: which member event of each room member a device was last sent in a
 * /sync response (in the state section or the timeline), so that later syncs can leave out
 * the redundant ones (Client-Server API "Lazy-loading room members"). A device's rows go
 * when it starts a new sync sequence (initial sync or full_state), as its client then has
 * forgotten everything.
 */
import type { Kysely } from 'kysely';
import { chunks, inChunks } from '../../internal/sqlutil/index.js';
import type { SyncapiDatabase } from './tables.js';

/** A member event sent: the member (state key) and the event's ID. */
export interface SentMember {
  targetUserId: string;
  eventId: string;
}

export class LazyLoadStore {
  constructor(readonly db: Kysely<SyncapiDatabase>) {}

  /** The member events last sent to the device in a room, by member, for these members. */
  async sentMembers(userId: string, deviceId: string, roomId: string, targets: readonly string[]): Promise<Map<string, string>> {
    if (targets.length === 0) return new Map();
    const rows = await inChunks([...new Set(targets)], (chunk) =>
      this.db
        .selectFrom('syncapi_lazy_loaded_members')
        .select(['target_user_id', 'event_id'])
        .where('user_id', '=', userId)
        .where('device_id', '=', deviceId)
        .where('room_id', '=', roomId)
        .where('target_user_id', 'in', chunk)
        .execute(),
    );
    return new Map(rows.map((r) => [r.target_user_id, r.event_id]));
  }

  /** Records member events as sent to the device in a room; a later one for a member replaces the earlier. */
  async recordSent(userId: string, deviceId: string, roomId: string, sent: readonly SentMember[]): Promise<void> {
    // The last of a member's events wins, and one row per member in a statement (Postgres refuses two).
    const latest = new Map<string, string>();
    for (const s of sent) latest.set(s.targetUserId, s.eventId);
    if (latest.size === 0) return;
    const rows = [...latest].map(([target, eventId]) => ({ user_id: userId, device_id: deviceId, room_id: roomId, target_user_id: target, event_id: eventId }));
    for (const chunk of chunks(rows, 500)) {
      await this.db
        .insertInto('syncapi_lazy_loaded_members')
        .values(chunk)
        .onConflict((oc) => oc.columns(['user_id', 'device_id', 'room_id', 'target_user_id']).doUpdateSet((eb) => ({ event_id: eb.ref('excluded.event_id') })))
        .execute();
    }
  }

  /** Forgets everything sent to the device (its client starts again from nothing). */
  async clearDevice(userId: string, deviceId: string): Promise<void> {
    await this.db.deleteFrom('syncapi_lazy_loaded_members').where('user_id', '=', userId).where('device_id', '=', deviceId).execute();
  }
}
