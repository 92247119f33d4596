/**
 * Events the roomserver lacks, fetched one by one from another server (GET /event/{eventId}),
 * checked on receipt (format, signatures, hashes, room) and stored as outliers in auth order:
 * the state and auth chain that backfilled events (timestamp_to_event, /backfill) need before
 * they can go in.
 */
import { Event, type PDUJson } from '../../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../../roomserver/api/index.js';
import { authOrder } from '../authorder.js';
import { checkPDUs, type PDUKeys } from '../pdus.js';

/** A bigger gap than this is not bridged event by event. */
export const MAX_FETCHED_OUTLIERS = 500;
const FETCH_PARALLEL = 20;

export interface OutlierFetchDeps {
  rsAPI: Pick<RoomserverInternalAPI, 'queryEventsById' | 'inputRoomEvents'>;
  keys: PDUKeys;
  /** The PDU of GET /event/{eventId} on `server` (the first of the transaction's `pdus`). */
  fetchEvent: (server: string, eventId: string) => Promise<unknown>;
}

/**
 * Fetches those of `ids` the roomserver does not hold from `server` and stores the good ones as
 * outliers. No new fetch starts after `deadline` (ms since the epoch). Returns how many went in.
 */
export async function fetchOutliers(d: OutlierFetchDeps, server: string, roomVersion: string, roomId: string, ids: readonly string[], deadline = Infinity): Promise<number> {
  if (ids.length === 0) return 0;
  const have = new Set((await d.rsAPI.queryEventsById({ event_ids: [...new Set(ids)] })).events.map((h) => Event.fromPDU(h.pdu, h.room_version).eventId));
  const wanted = [...new Set(ids)].filter((id) => !have.has(id)).slice(0, MAX_FETCHED_OUTLIERS);
  const raws: unknown[] = [];
  for (let i = 0; i < wanted.length && Date.now() < deadline; i += FETCH_PARALLEL) {
    const got = await Promise.all(wanted.slice(i, i + FETCH_PARALLEL).map((id) => d.fetchEvent(server, id).catch(() => undefined)));
    raws.push(...got.filter((x) => x !== undefined));
  }
  const checked = await checkPDUs(raws, roomVersion, d.keys);
  const asked = new Set(wanted);
  const good = checked.flatMap((c) => (c.ok && c.event.roomId === roomId && asked.has(c.event.eventId) ? [c.event] : []));
  if (good.length === 0) return 0;
  await d.rsAPI.inputRoomEvents({ events: authOrder(good).map((e) => ({ kind: 'outlier', event: { room_version: roomVersion, pdu: e.json as PDUJson }, origin: server })) });
  return good.length;
}
