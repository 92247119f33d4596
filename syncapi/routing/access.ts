/**
 * Who may read a room's history, for the read routes (/messages, /context, /event,
 * /relations, /threads): the room as a whole (a member now or before, or a world_readable
 * room), then each event by history visibility. Both are the roomserver's decisions.
 */
import { forbidden } from '../../internal/httputil/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { StreamEvent } from '../storage/syncstore.js';

export type ReadAccessRoomserverAPI = Pick<RoomserverInternalAPI, 'queryVisibleEvents' | 'queryMembershipForUser' | 'queryLatestEventsAndState'>;

export interface ReadAccess {
  /** Throws 403 M_FORBIDDEN unless the user may read the room at all. */
  requireReader(userId: string, roomId: string): Promise<void>;
  /** The events the user may see, in the order given. */
  visible(userId: string, events: StreamEvent[]): Promise<StreamEvent[]>;
}

export function readAccess(rsAPI: ReadAccessRoomserverAPI): ReadAccess {
  return {
    async requireReader(userId, roomId) {
      const m = await rsAPI.queryMembershipForUser({ room_id: roomId, user_id: userId });
      if (m.room_exists && m.membership !== undefined) return;
      if (m.room_exists) {
        const hv = await rsAPI.queryLatestEventsAndState({ room_id: roomId, state_to_fetch: [{ type: 'm.room.history_visibility', state_key: '' }] });
        if (hv.state_events[0]?.pdu.content?.['history_visibility'] === 'world_readable') return;
      }
      throw forbidden('You are not allowed to read this room');
    },
    async visible(userId, events) {
      if (events.length === 0) return events;
      const { visible_event_ids } = await rsAPI.queryVisibleEvents({ event_ids: events.map((e) => e.eventId), user_id: userId });
      const ok = new Set(visible_event_ids);
      return events.filter((e) => ok.has(e.eventId));
    },
  };
}
