/**
 * The event nearest a timestamp in one direction (GET /timestamp_to_event, Client-Server and
 * Server-Server APIs): the first event at or after `ts` (dir=f) or the last at or before it
 * (dir=b) by origin_server_ts, among the room's history events the asker may see.
 *
 * Candidates are read nearest first in batches and checked against history visibility; the
 * scan gives up after MAX_SCANNED of them (a user who may see none of a long stretch of history
 * gets "not found" rather than a scan of the whole room).
 *
 * It also tells whether history this server lacks may lie between `ts` and the answer, so that
 * the caller can ask other servers (as the spec suggests and Synapse does): for dir=f, when the
 * event found has prev events we do not have in the room's history (a backward gap: e.g. the
 * history before we joined); for dir=b, when the next event we have after it has (a gap right
 * after the answer). We keep no child edges, so the dir=b check looks at the next event by
 * timestamp rather than at the event's real children: a heuristic, like Synapse's.
 */
import type { QueryEventByTimestampRequest, QueryEventByTimestampResponse } from '../../api/index.js';
import type { EventStore, RoomInfo } from '../../storage/eventstore.js';
import type { EventTimestampStore, TimestampedEvent } from '../../storage/timestamps.js';
import type { EventLoader } from '../eventloader.js';
import type { Visibility } from '../visibility.js';

const BATCH = 50;
const MAX_SCANNED = 1000;

export class EventByTimestamp {
  constructor(
    private readonly events: EventStore,
    private readonly store: EventTimestampStore,
    private readonly loader: EventLoader,
    private readonly visibility: Visibility,
  ) {}

  async query(req: QueryEventByTimestampRequest): Promise<QueryEventByTimestampResponse> {
    const room = await this.events.room(req.room_id);
    if (!room || room.stateSnapshotNid === 0) return { room_exists: false };
    const asker = { ...(req.user_id !== undefined ? { userId: req.user_id } : {}), ...(req.server_name !== undefined ? { serverName: req.server_name } : {}) };
    let after: TimestampedEvent | undefined;
    for (let scanned = 0; scanned < MAX_SCANNED; scanned += BATCH) {
      const batch = await this.store.nearest(room.roomNid, req.ts, req.dir, BATCH, after && { originServerTs: after.originServerTs, eventNid: after.eventNid });
      if (batch.length === 0) break;
      const found = await this.firstVisible(batch, asker);
      if (found) {
        return { room_exists: true, event_id: found.eventId, origin_server_ts: found.originServerTs, next_to_gap: await this.nextToGap(room, found, req.dir) };
      }
      if (batch.length < BATCH) break;
      after = batch[batch.length - 1];
    }
    return { room_exists: true };
  }

  /**
   * The first of the candidates the asker may see. Checked in growing slices (1, 4, 16...): the
   * nearest candidate is usually visible, and each check costs a few state lookups.
   */
  private async firstVisible(candidates: readonly TimestampedEvent[], asker: { userId?: string; serverName?: string }): Promise<TimestampedEvent | undefined> {
    for (let start = 0, size = 1; start < candidates.length; start += size, size *= 4) {
      const slice = candidates.slice(start, start + size);
      const visible = new Set(await this.visibility.visibleTo(slice.map((c) => c.eventId), asker));
      const found = slice.find((c) => visible.has(c.eventId));
      if (found) return found;
    }
    return undefined;
  }

  private async nextToGap(room: RoomInfo, found: TimestampedEvent, dir: 'f' | 'b'): Promise<boolean> {
    if (dir === 'f') return this.missesPrevEvents(room, found.eventNid);
    const [next] = await this.store.nearest(room.roomNid, found.originServerTs, 'f', 1, { originServerTs: found.originServerTs, eventNid: found.eventNid });
    return next !== undefined && (await this.missesPrevEvents(room, next.eventNid));
  }

  /** Some prev event of the event is unknown here, or known only as an outlier. */
  private async missesPrevEvents(room: RoomInfo, eventNid: number): Promise<boolean> {
    const event = (await this.loader.byNids([eventNid], room.roomVersion)).get(eventNid)?.event;
    if (!event || event.prevEventIds.length === 0) return false;
    const prevs = await this.events.eventsByIds(event.prevEventIds);
    return prevs.length < new Set(event.prevEventIds).size || prevs.some((p) => p.stateSnapshotNid === null);
  }
}
