/**
 * A purged room (the roomserver's `purge_room`) leaves syncapi in one transaction: its events,
 * current state, invites, receipts, lazy-loading records, peeks and relations. The room then appears in no
 * one's /sync; clients that held it keep what they had, as after any server-side deletion.
 * The full-text index is purged separately (it may live elsewhere, and is best effort).
 */
import type { Kysely } from 'kysely';
import type { SyncapiDatabase } from './tables.js';

/** Tables whose rows belong to one room through a `room_id` column. */
const ROOM_TABLES = [
  'syncapi_output_room_events',
  'syncapi_current_room_state',
  'syncapi_invites',
  'syncapi_receipts',
  'syncapi_lazy_loaded_members',
  'syncapi_peeks',
  'syncapi_relations',
  'syncapi_redacted_events',
  'syncapi_backward_extremities',
] as const satisfies ReadonlyArray<keyof SyncapiDatabase>;

/** Deletes the room's rows; returns how many events went. */
export async function purgeRoomRows(db: Kysely<SyncapiDatabase>, roomId: string): Promise<number> {
  return db.transaction().execute(async (tx) => {
    let events = 0;
    for (const table of ROOM_TABLES) {
      const res = await tx.deleteFrom(table).where('room_id', '=', roomId).executeTakeFirst();
      if (table === 'syncapi_output_room_events') events = Number(res.numDeletedRows);
    }
    return events;
  });
}
