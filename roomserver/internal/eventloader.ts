/**
 * Stored events as `Event` objects, by NID, with a bounded cache: auth checks and state
 * resolution read the same few events (create, power levels, members) over and over.
 */
import { Event } from '../../internal/matrix/index.js';
import type { PDUJson } from '../../internal/matrix/index.js';
import type { EventStore, StoredEvent } from '../storage/eventstore.js';

const CACHE_LIMIT = 50_000;

export interface LoadedEvent {
  stored: StoredEvent;
  event: Event;
}

export class EventLoader {
  private readonly cache: Map<number, LoadedEvent>;

  constructor(
    private readonly store: EventStore,
    cache?: Map<number, LoadedEvent>,
  ) {
    this.cache = cache ?? new Map();
  }

  /** A loader reading through `store` (a transaction's), sharing this loader's cache. */
  over(store: EventStore): EventLoader {
    return new EventLoader(store, this.cache);
  }

  /**
   * Keeps an event just stored, as loading it would give it (its JSON as stored), so that the
   * events that cite it next need not read it. Only once its transaction has committed.
   */
  prime(e: LoadedEvent): void {
    this.remember(e.stored.eventNid, e);
  }

  /** Forgets an event whose JSON changed (redaction). */
  forget(eventNid: number): void {
    this.cache.delete(eventNid);
  }

  async byNids(eventNids: readonly number[], roomVersion: string): Promise<Map<number, LoadedEvent>> {
    const out = new Map<number, LoadedEvent>();
    const missing: number[] = [];
    for (const nid of new Set(eventNids)) {
      const hit = this.cache.get(nid);
      if (hit) out.set(nid, hit);
      else missing.push(nid);
    }
    if (missing.length > 0) {
      for (const { stored, json } of await this.store.eventsWithJson(missing)) {
        const loaded = { stored, event: Event.fromStored(JSON.parse(json) as PDUJson, roomVersion, stored.eventId) };
        this.remember(stored.eventNid, loaded);
        out.set(stored.eventNid, loaded);
      }
    }
    return out;
  }

  async byIds(eventIds: readonly string[], roomVersion: string): Promise<Map<string, LoadedEvent>> {
    const stored = await this.store.eventsByIds(eventIds);
    const loaded = await this.byNids(
      stored.map((s) => s.eventNid),
      roomVersion,
    );
    const out = new Map<string, LoadedEvent>();
    for (const l of loaded.values()) out.set(l.stored.eventId, l);
    return out;
  }

  /** Events and their whole auth chains (for state resolution), by NID. */
  async withAuthChains(eventNids: readonly number[], roomVersion: string): Promise<Map<number, LoadedEvent>> {
    const all = new Map<number, LoadedEvent>();
    let frontier = [...new Set(eventNids)];
    while (frontier.length > 0) {
      const loaded = await this.byNids(frontier, roomVersion);
      const next: number[] = [];
      for (const [nid, l] of loaded) {
        all.set(nid, l);
        for (const a of l.stored.authEventNids) if (!all.has(a) && !loaded.has(a)) next.push(a);
      }
      frontier = [...new Set(next)];
    }
    return all;
  }

  private remember(nid: number, e: LoadedEvent): void {
    // Stored state (snapshot, rejection) can change for an outlier; only cache events with state.
    if (e.stored.stateSnapshotNid === null) return;
    if (this.cache.size >= CACHE_LIMIT) {
      let drop = CACHE_LIMIT / 4;
      for (const k of this.cache.keys()) {
        this.cache.delete(k);
        if (--drop <= 0) break;
      }
    }
    this.cache.set(nid, e);
  }
}
