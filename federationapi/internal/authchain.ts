/**
 * Walking the room DAG through the roomserver's API: the auth chain of events (every auth
 * event, transitively) and the events behind some others (prev events, for backfill and
 * get_missing_events). Each step is one batched query.
 */
import { Event } from '../../internal/matrix/index.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';

export type DagAPI = Pick<RoomserverInternalAPI, 'queryEventsById'>;

/**
 * The auth chain of `seeds`: every event reached through auth_events, accepted ones only. A
 * seed is in it only when another seed (or chain event) cites it: the create event of a
 * room's state is in the state's auth chain too.
 */
export async function authChain(rsAPI: DagAPI, seeds: readonly Event[]): Promise<HeaderedEvent[]> {
  const seen = new Set<string>();
  const out: HeaderedEvent[] = [];
  let frontier = [...new Set(seeds.flatMap((e) => e.authEventIds))];
  while (frontier.length > 0) {
    for (const id of frontier) seen.add(id);
    const { events } = await rsAPI.queryEventsById({ event_ids: frontier });
    const next: string[] = [];
    for (const h of events) {
      if (h.rejected) continue;
      out.push({ room_version: h.room_version, pdu: h.pdu });
      for (const a of Event.fromPDU(h.pdu, h.room_version).authEventIds) if (!seen.has(a)) next.push(a);
    }
    frontier = [...new Set(next)];
  }
  // Oldest first (by depth): a receiver taking the list in order meets each event's auth events
  // before it, and one keeping the last of each (type, state key) keeps the newest (Sytest's
  // federation client builds its room state so from send_join's auth chain).
  return out.sort((a, b) => Number(a.pdu.depth ?? 0) - Number(b.pdu.depth ?? 0));
}

/**
 * Events reached by walking prev_events back from `from` (not included), breadth first, up to
 * `limit`, stopping at `stopAt` and below `minDepth`. In the order found: newest first, roughly.
 */
export async function walkBack(
  rsAPI: DagAPI,
  from: readonly string[],
  opts: { limit: number; stopAt?: ReadonlySet<string>; minDepth?: number; includeFrom?: boolean },
): Promise<Event[]> {
  const seen = new Set<string>(opts.stopAt ?? []);
  const out: Event[] = [];
  let frontier = [...new Set(from)].filter((id) => !seen.has(id));
  let first = true;
  while (frontier.length > 0 && out.length < opts.limit) {
    for (const id of frontier) seen.add(id);
    const { events } = await rsAPI.queryEventsById({ event_ids: frontier });
    const next: string[] = [];
    for (const h of events) {
      if (h.rejected) continue;
      const e = Event.fromPDU(h.pdu, h.room_version);
      if (!first || opts.includeFrom) {
        if (opts.minDepth !== undefined && e.depth < opts.minDepth) continue;
        if (out.length >= opts.limit) break;
        out.push(e);
      }
      for (const p of e.prevEventIds) if (!seen.has(p)) next.push(p);
    }
    first = false;
    frontier = [...new Set(next)];
  }
  return out;
}
