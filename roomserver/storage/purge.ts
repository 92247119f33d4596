/**
 * Purging a room (Dendrite's admin purgeRoom): every row the roomserver holds about it goes,
 * in one transaction, so that a failure leaves the room whole rather than half deleted.
 * Event type and state key NIDs are shared by all rooms and stay.
 */
import type { Kysely } from 'kysely';
import { inChunks } from '../../internal/sqlutil/index.js';
import type { RoomserverDatabase } from './tables.js';

export interface PurgedCounts {
  events: number;
  stateNodes: number;
}

/** Deletes the room's events, state, memberships, aliases and directory entry. Undefined when the room is unknown. */
export async function purgeRoomRows(db: Kysely<RoomserverDatabase>, roomId: string): Promise<PurgedCounts | undefined> {
  return db.transaction().execute(async (tx) => {
    const room = await tx.selectFrom('roomserver_rooms').select('room_nid').where('room_id', '=', roomId).executeTakeFirst();
    if (!room) return undefined;
    const roomNid = room.room_nid;
    const events = await tx.selectFrom('roomserver_events').select(['event_nid', 'event_id']).where('room_nid', '=', roomNid).execute();
    const nids = events.map((e) => e.event_nid);
    const ids = events.map((e) => e.event_id);
    await inChunks(nids, async (chunk) => {
      await tx.deleteFrom('roomserver_event_json').where('event_nid', 'in', chunk).execute();
      return [];
    });
    // A redaction row belongs to the room of the redaction event (it names an event ID that may be unknown).
    await inChunks(ids, async (chunk) => {
      await tx.deleteFrom('roomserver_redactions').where('redaction_event_id', 'in', chunk).execute();
      return [];
    });
    await tx.deleteFrom('roomserver_events').where('room_nid', '=', roomNid).execute();
    await tx.deleteFrom('roomserver_forward_extremities').where('room_nid', '=', roomNid).execute();
    await tx.deleteFrom('roomserver_membership').where('room_nid', '=', roomNid).execute();
    await tx.deleteFrom('roomserver_outbox').where('room_nid', '=', roomNid).execute();
    const nodes = await tx.deleteFrom('roomserver_state_nodes').where('room_nid', '=', roomNid).executeTakeFirst();
    await tx.deleteFrom('roomserver_room_aliases').where('room_id', '=', roomId).execute();
    await tx.deleteFrom('roomserver_published').where('room_id', '=', roomId).execute();
    await tx.deleteFrom('roomserver_rooms').where('room_nid', '=', roomNid).execute();
    return { events: nids.length, stateNodes: Number(nodes.numDeletedRows) };
  });
}
