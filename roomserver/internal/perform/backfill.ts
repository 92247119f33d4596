/**
 * PerformBackfill, as Dendrite has it: syncapi, paging a room back (/messages), reached events
 * whose prev events it lacks. For their prev events:
 *
 * - held here with state and accepted: syncapi just had not got them; they are answered as they are;
 * - held here but rejected or soft-failed, or of another room (a prev event may name anything):
 *   they will never be shown, and syncapi is told so, to stop treating them as a gap;
 * - otherwise (unknown, or an outlier without state) federationapi asks other servers of the
 *   room for them and what lies behind (GET /backfill) and inputs what it gets as `old` events.
 *   The servers asked first are the senders' of the events at the gap (they had the prev
 *   events), then those with members joined in the state before the earliest of them (most
 *   members first), then those joined now, then the room ID's.
 *
 * The IDs of the accepted events, held with their state, go back to syncapi oldest first.
 */
import type { Logger } from 'pino';
import { domainOf, type Event } from '../../../internal/matrix/index.js';
import type { FederationInternalAPI } from '../../../federationapi/api/index.js';
import type { PerformBackfillRequest, PerformBackfillResponse } from '../../api/index.js';
import type { EventStore, RoomInfo, StoredEvent } from '../../storage/eventstore.js';
import type { StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { EventLoader } from '../eventloader.js';

/** What the roomserver asks of federationapi for backfill. */
export type BackfillFederationAPI = Pick<FederationInternalAPI, 'performRemoteBackfill'>;

const MAX_LIMIT = 100;
/** Events at the gap looked at in one request. */
const MAX_EXTREMITIES = 20;

export interface BackfillerDeps {
  serverName: string;
  events: EventStore;
  snapshots: StateSnapshotStore;
  loader: EventLoader;
  /** federationapi, once built (it is built after the roomserver); undefined without federation. */
  federation: () => BackfillFederationAPI | undefined;
  log: Logger;
}

export class RoomBackfiller {
  constructor(private readonly d: BackfillerDeps) {}

  async performBackfill(req: PerformBackfillRequest): Promise<PerformBackfillResponse> {
    const { events, loader } = this.d;
    const room = await events.room(req.room_id);
    if (!room || room.stateSnapshotNid === 0) return { event_ids: [], not_shown_event_ids: [], error: 'unknown_room', message: `Room ${req.room_id} is not held here` };
    const gapStored = (await events.eventsByIds([...new Set(req.event_ids)].slice(0, MAX_EXTREMITIES))).filter((e) => e.roomNid === room.roomNid && e.stateSnapshotNid !== null);
    if (gapStored.length === 0) return { event_ids: [], not_shown_event_ids: [] };
    const gap = [...(await loader.byNids(gapStored.map((e) => e.eventNid), room.roomVersion)).values()].map((l) => l.event);
    const prevIds = [...new Set(gap.flatMap((e) => e.prevEventIds))];

    const here: StoredEvent[] = [];
    const notShown: string[] = [];
    const held = new Map((await events.eventsByIds(prevIds)).map((s) => [s.eventId, s]));
    const wanted: string[] = [];
    for (const id of prevIds) {
      const s = held.get(id);
      if (s && (s.roomNid !== room.roomNid || (s.stateSnapshotNid !== null && (s.isRejected || s.isSoftFailed)))) notShown.push(id);
      else if (s && s.stateSnapshotNid !== null) here.push(s);
      else wanted.push(id);
    }

    let fetched: StoredEvent[] = [];
    let failure: Pick<PerformBackfillResponse, 'error' | 'message'> = {};
    const fed = wanted.length > 0 ? this.d.federation() : undefined;
    if (wanted.length > 0 && !fed) failure = { error: 'unreachable', message: 'federation is not available' };
    if (fed) {
      const servers = await this.serversFor(room, gap, gapStored);
      const res = await fed.performRemoteBackfill({ room_id: req.room_id, event_ids: wanted, limit: Math.max(1, Math.min(MAX_LIMIT, req.limit)), server_names: servers });
      if (res.error !== undefined) {
        failure = { error: 'unreachable', message: res.message };
        this.d.log.info({ room_id: req.room_id, error: res.error, message: res.message }, 'roomserver: backfill found nothing');
      } else {
        fetched = await events.eventsByIds(res.event_ids);
      }
    }
    const shown = new Map([...here, ...fetched].filter((s) => s.roomNid === room.roomNid && s.stateSnapshotNid !== null && !s.isRejected && !s.isSoftFailed).map((s) => [s.eventId, s]));
    const out = [...shown.values()].sort((a, b) => a.depth - b.depth || a.eventNid - b.eventNid).map((s) => s.eventId);
    return { event_ids: out, not_shown_event_ids: notShown, ...failure };
  }

  /** Servers that may have the history before `gap`, most likely first; never ours. */
  private async serversFor(room: RoomInfo, gap: readonly Event[], gapStored: readonly StoredEvent[]): Promise<string[]> {
    const { events, snapshots, loader } = this.d;
    const out: string[] = gap.map((e) => e.senderDomain);
    const earliest = [...gapStored].sort((a, b) => a.depth - b.depth)[0]!;
    const memberType = (await events.typeNids(['m.room.member'])).get('m.room.member');
    if (memberType !== undefined && earliest.stateSnapshotNid !== null && earliest.stateSnapshotNid !== 0) {
      const members = (await snapshots.load(earliest.stateSnapshotNid)).filter((s) => s.typeNid === memberType);
      const loaded = await loader.byNids(
        members.map((m) => m.eventNid),
        room.roomVersion,
      );
      const counts = new Map<string, number>();
      for (const l of loaded.values()) {
        if (l.event.content['membership'] !== 'join' || l.event.stateKey === undefined) continue;
        const server = domainOf(l.event.stateKey);
        if (server !== undefined) counts.set(server, (counts.get(server) ?? 0) + 1);
      }
      out.push(...[...counts].sort((a, b) => b[1] - a[1]).map(([s]) => s));
    }
    for (const m of await events.members(room.roomNid, ['join'])) {
      const server = domainOf(m.userId);
      if (server !== undefined) out.push(server);
    }
    const idServer = domainOf(room.roomId);
    if (idServer !== undefined) out.push(idServer);
    return [...new Set(out)].filter((s) => s !== this.d.serverName);
  }
}
