/**
 * Filling gaps in a room's history here, for /messages: a gap is an event whose prev events
 * syncapi lacks (a room joined over federation starts with one before the join). The
 * roomserver is asked for what lies behind it (PerformBackfill: from what it holds, or from other
 * servers of the room), and the events it answers are stored as history (negative positions:
 * never new to /sync) right away, so the page being served can hold them. The same events come
 * again as `old_room_event`s, which find them stored.
 *
 * One fill per gap at a time (concurrent pages of a room share it). A gap a fill neither closed
 * nor brought anything for (the servers had nothing, or were down) is left alone for a while,
 * longer after each failure, so that paging past it stays quick.
 */
import type { Logger } from 'pino';
import { Event } from '../../internal/matrix/index.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { SyncStore } from '../storage/syncstore.js';
import type { TopoKey } from '../storage/topology.js';

export type BackfillRoomserverAPI = Pick<RoomserverInternalAPI, 'performBackfill' | 'queryEventsById'>;

/** Events asked of other servers per fill: as Dendrite, 100 whatever the page size (fewer round trips, and Sytest's servers answer /backfill once). */
export const BACKFILL_LIMIT = 100;
const BASE_COOLDOWN_MS = 30_000;
const MAX_COOLDOWN_MS = 60 * 60_000;
const MAX_REMEMBERED = 10_000;
/** Events read per queryEventsById: a reply stays under NATS' 1 MiB message limit (polylith) even with events at the 64 KiB PDU limit. */
const READ_CHUNK = 10;

export interface Gap extends TopoKey {
  eventId: string;
}

/** Stores an event of a room's past (backfilled) as syncapi's history. */
export async function storeHistorical(store: SyncStore, h: HeaderedEvent, event = Event.fromPDU(h.pdu, h.room_version)): Promise<{ pos: number; existed: boolean }> {
  return store.insertHistoricalEvent({
    roomId: event.roomId,
    eventId: event.eventId,
    type: event.type,
    sender: event.sender,
    stateKey: event.stateKey ?? null,
    json: JSON.stringify(event.json),
    roomVersion: h.room_version,
    // History changes nothing of the current state.
    addsState: [],
    removesState: [],
    depth: event.depth,
    prevEventIds: event.prevEventIds,
  });
}

export class HistoryFiller {
  private readonly inflight = new Map<string, Promise<void>>();
  /** Gaps left alone until a time, and how often filling them failed in a row. */
  private readonly resting = new Map<string, { until: number; failures: number }>();

  constructor(
    private readonly d: {
      store: SyncStore;
      rsAPI: BackfillRoomserverAPI;
      log: Logger;
      /** Test hook: the first pause after a failed fill (doubling after each further one). */
      cooldownMs?: number;
    },
  ) {}

  /** The room's highest gap (in topological order) worth filling now, other than `skip`. */
  async nextGap(roomId: string, skip: ReadonlySet<string>): Promise<Gap | undefined> {
    const now = Date.now();
    for (const g of await this.d.store.backwardExtremities(roomId, skip.size + 20)) {
      if (skip.has(g.eventId)) continue;
      const r = this.resting.get(g.eventId);
      if (r && r.until > now) continue;
      return g;
    }
    return undefined;
  }

  /** Fills the history behind `gap`; never throws (a failure only leaves the gap resting). */
  fill(roomId: string, gap: Gap): Promise<void> {
    const running = this.inflight.get(gap.eventId);
    if (running) return running;
    const p = this.run(roomId, gap).finally(() => this.inflight.delete(gap.eventId));
    this.inflight.set(gap.eventId, p);
    return p;
  }

  private async run(roomId: string, gap: Gap): Promise<void> {
    const { store, rsAPI, log } = this.d;
    let stored = 0;
    try {
      const res = await rsAPI.performBackfill({ room_id: roomId, event_ids: [gap.eventId], limit: BACKFILL_LIMIT });
      // Oldest first, as answered: each event's prev events are stored before it (no gap opens to close again).
      for (let i = 0; i < res.event_ids.length; i += READ_CHUNK) {
        const ids = res.event_ids.slice(i, i + READ_CHUNK);
        const byId = new Map<string, { h: HeaderedEvent; event: Event }>();
        for (const h of (await rsAPI.queryEventsById({ event_ids: ids })).events) {
          if (h.outlier || h.rejected || h.soft_failed) continue;
          const event = Event.fromPDU(h.pdu, h.room_version);
          if (event.roomId === roomId) byId.set(event.eventId, { h, event });
        }
        for (const id of ids) {
          const got = byId.get(id);
          if (got && !(await storeHistorical(store, got.h, got.event)).existed) stored++;
        }
      }
      if (res.not_shown_event_ids.length > 0) await store.closeGaps(roomId, res.not_shown_event_ids);
      if (res.error !== undefined) log.debug({ roomId, gap: gap.eventId, error: res.error, message: res.message }, 'syncapi: backfill failed');
    } catch (err) {
      log.warn({ err, roomId, gap: gap.eventId }, 'syncapi: backfill failed');
    }
    // A fill that brought history but left the gap open (more lies behind it than one answer
    // brings) is not a failure: the gap stays on offer, so that pages stop at it rather than
    // skip what it still lacks.
    if (stored === 0 && (await store.isBackwardExtremity(gap.eventId).catch(() => true))) {
      const failures = (this.resting.get(gap.eventId)?.failures ?? 0) + 1;
      const pause = Math.min(MAX_COOLDOWN_MS, (this.d.cooldownMs ?? BASE_COOLDOWN_MS) * 2 ** (failures - 1));
      this.rest(gap.eventId, { until: Date.now() + pause, failures });
      log.debug({ roomId, gap: gap.eventId, stored, failures }, 'syncapi: gap not closed; resting');
    } else {
      this.resting.delete(gap.eventId);
    }
  }

  private rest(eventId: string, r: { until: number; failures: number }): void {
    if (this.resting.size >= MAX_REMEMBERED) {
      const now = Date.now();
      for (const [k, v] of this.resting) if (v.until <= now) this.resting.delete(k);
      // Still full: the oldest entries go.
      for (const k of this.resting.keys()) {
        if (this.resting.size < MAX_REMEMBERED) break;
        this.resting.delete(k);
      }
    }
    this.resting.set(eventId, r);
  }
}
