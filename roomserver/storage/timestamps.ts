/**
 * Events of a room by their origin_server_ts (GET /timestamp_to_event in both APIs), over the
 * index on (room_nid, origin_server_ts). Only events in the room's history count: outliers
 * (known without their state), rejected and soft-failed events are never answers.
 */
import type { Kysely } from 'kysely';
import type { RoomserverDatabase } from './tables.js';

export type Direction = 'f' | 'b';

export interface TimestampedEvent {
  eventNid: number;
  eventId: string;
  originServerTs: number;
}

/** A position in a timestamp scan: results continue strictly past it. */
export interface TimestampCursor {
  originServerTs: number;
  eventNid: number;
}

/** The origin_server_ts of an event's JSON; null when it has no usable one. */
export function originServerTsOf(json: string): number | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return null;
  }
  const ts = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)['origin_server_ts'] : undefined;
  return typeof ts === 'number' && Number.isSafeInteger(ts) ? ts : null;
}

export class EventTimestampStore {
  constructor(private readonly db: Kysely<RoomserverDatabase>) {}

  /**
   * Up to `limit` events of the room from `ts` in direction `dir` (f: at or after it, oldest
   * first; b: at or before it, newest first), ties broken by arrival (event NID) in the same
   * direction; past `after` when given, to read on in batches.
   */
  async nearest(roomNid: number, ts: number, dir: Direction, limit: number, after?: TimestampCursor): Promise<TimestampedEvent[]> {
    const forward = dir === 'f';
    let q = this.db
      .selectFrom('roomserver_events')
      .select(['event_nid', 'event_id', 'origin_server_ts'])
      .where('room_nid', '=', roomNid)
      .where('origin_server_ts', forward ? '>=' : '<=', ts)
      .where('state_snapshot_nid', 'is not', null)
      .where('is_rejected', '=', 0)
      .where('is_soft_failed', '=', 0);
    if (after) {
      const cmp = forward ? '>' : '<';
      q = q.where((eb) =>
        eb.or([eb('origin_server_ts', cmp, after.originServerTs), eb.and([eb('origin_server_ts', '=', after.originServerTs), eb('event_nid', cmp, after.eventNid)])]),
      );
    }
    const order = forward ? 'asc' : 'desc';
    const rows = await q.orderBy('origin_server_ts', order).orderBy('event_nid', order).limit(limit).execute();
    return rows.map((r) => ({ eventNid: Number(r.event_nid), eventId: r.event_id, originServerTs: Number(r.origin_server_ts) }));
  }
}
