/**
 * Asking other servers of a room for the event nearest a timestamp (Server-Server
 * `GET /timestamp_to_event/{roomId}`), as the spec suggests when this server's nearest event
 * borders history it lacks, and as Synapse does:
 *
 * 1. Servers are asked in the given order (the caller puts those in the room longest first).
 * 2. An answer is only a claim: the event is fetched (GET /event), its signatures and hashes
 *    checked, and it must be of the room and on the asked side of ts. Its own origin_server_ts
 *    counts, not the one the server claimed.
 * 3. When it is closer to ts than the nearest event held here, it is backfilled: the state
 *    before it (GET /state_ids, missing events fetched and checked) goes to the roomserver as
 *    outliers, then the event as an `old` event with that state, so that /context and
 *    /messages can start from it. An event the roomserver rejects is not an answer.
 * 4. Otherwise (not closer, bad answer, failure) the next server is asked.
 */
import type { Logger } from 'pino';
import type { Event, PDUJson } from '../../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../../roomserver/api/index.js';
import type { PerformRemoteTimestampToEventRequest, PerformRemoteTimestampToEventResponse } from '../../api/index.js';
import { encodePathSegment, type FederationClient } from '../../client/index.js';
import { checkPDUs, type PDUKeys } from '../pdus.js';
import { fetchOutliers } from './outliers.js';

const TIMEOUT_MS = 10_000;
const MAX_SERVERS = 5;

export type TimestampClient = Pick<FederationClient, 'request' | 'getEvent' | 'stateIds'>;
export type TimestampRoomserverAPI = Pick<RoomserverInternalAPI, 'queryLatestEventsAndState' | 'queryEventsById' | 'inputRoomEvents'>;

export class TimestampFetcher {
  constructor(
    private readonly deps: {
      serverName: string;
      client: TimestampClient;
      keys: PDUKeys;
      rsAPI: TimestampRoomserverAPI;
      log: Logger;
    },
  ) {}

  async lookup(req: PerformRemoteTimestampToEventRequest): Promise<PerformRemoteTimestampToEventResponse> {
    const { room_version: roomVersion } = await this.deps.rsAPI.queryLatestEventsAndState({ room_id: req.room_id, state_to_fetch: [] });
    if (roomVersion === undefined) return { error: 'not_found', message: `Room ${req.room_id} is not known here` };
    const servers = [...new Set(req.server_names)].filter((s) => s !== this.deps.serverName).slice(0, MAX_SERVERS);
    let last: PerformRemoteTimestampToEventResponse = { error: 'not_found', message: 'No other server of the room has a closer event' };
    for (const server of servers) {
      try {
        const found = await this.askOne(server, roomVersion, req);
        if (found) return found;
      } catch (err) {
        last = { error: 'unreachable', message: err instanceof Error ? err.message : String(err) };
        this.deps.log.debug({ server, roomId: req.room_id, err }, 'federation: timestamp_to_event via server failed');
      }
    }
    return last;
  }

  /** The server's answer, checked, closer and backfilled; undefined when it has none. */
  private async askOne(server: string, roomVersion: string, req: PerformRemoteTimestampToEventRequest): Promise<{ event_id: string; origin_server_ts: number } | undefined> {
    const res = await this.deps.client.request(server, 'GET', `/_matrix/federation/v1/timestamp_to_event/${encodePathSegment(req.room_id)}`, {
      query: { ts: req.ts, dir: req.dir },
      timeoutMs: TIMEOUT_MS,
    });
    const claimed = res.status === 200 && typeof res.body === 'object' && res.body !== null ? (res.body as Record<string, unknown>)['event_id'] : undefined;
    if (typeof claimed !== 'string') return undefined;

    const [raw] = (await this.deps.client.getEvent(server, claimed)).pdus;
    const [checked] = await checkPDUs([raw], roomVersion, this.deps.keys);
    if (!checked?.ok || checked.event.eventId !== claimed || checked.event.roomId !== req.room_id) return undefined;
    const event = checked.event;
    const ts = event.originServerTs;
    if (req.dir === 'f' ? ts < req.ts : ts > req.ts) return undefined;
    if (req.nearest_local_ts !== undefined && Math.abs(ts - req.ts) >= Math.abs(req.nearest_local_ts - req.ts)) return undefined;
    return (await this.backfill(server, roomVersion, event)) ? { event_id: event.eventId, origin_server_ts: ts } : undefined;
  }

  /** Puts the event into the room's history here, with the state before it; false when the roomserver will not have it. */
  private async backfill(server: string, roomVersion: string, event: Event): Promise<boolean> {
    const { rsAPI } = this.deps;
    const [held] = (await rsAPI.queryEventsById({ event_ids: [event.eventId] })).events;
    if (held && !held.outlier) return !held.rejected && !held.soft_failed;
    const ids = await this.deps.client.stateIds(server, event.roomId, event.eventId);
    const stateIds = Array.isArray(ids.pdu_ids) ? ids.pdu_ids.filter((id): id is string => typeof id === 'string') : [];
    const chainIds = Array.isArray(ids.auth_chain_ids) ? ids.auth_chain_ids.filter((id): id is string => typeof id === 'string') : [];
    await this.fetchOutliers(server, roomVersion, event.roomId, [...new Set([...chainIds, ...event.authEventIds, ...stateIds])]);
    const [result] = (
      await rsAPI.inputRoomEvents({ events: [{ kind: 'old', event: { room_version: roomVersion, pdu: event.json as PDUJson }, origin: server, state_event_ids: stateIds }] })
    ).results;
    if (result?.status === 'accepted' || result?.status === 'duplicate') return true;
    this.deps.log.info({ server, eventId: event.eventId, status: result?.status, error: result?.error }, 'federation: could not backfill the event found by timestamp');
    return false;
  }

  /** Fetches the events the roomserver lacks from `server`, checks them and stores them as outliers (auth events first). */
  private async fetchOutliers(server: string, roomVersion: string, roomId: string, ids: readonly string[]): Promise<void> {
    const { rsAPI, keys, client } = this.deps;
    await fetchOutliers({ rsAPI, keys, fetchEvent: async (dest, id) => (await client.getEvent(dest, id)).pdus[0] }, server, roomVersion, roomId, ids);
  }
}
