/**
 * State questions the input pipeline asks: the state after an event, the resolution of
 * several states (where prev events or forward extremities disagree), and the auth events an
 * event would have in a given state.
 */
import { authEventTypesNeeded } from '../../../internal/matrix/auth/index.js';
import { roomVersion as lookupRoomVersion, splitStateTuple, stateTuple, type Event, type EventLike } from '../../../internal/matrix/index.js';
import { resolveState } from '../../../internal/matrix/stateres/index.js';
import type { EventStore, RoomInfo, StoredEvent } from '../../storage/eventstore.js';
import type { StateEntry, StateSnapshotStore } from '../../storage/statesnapshots.js';
import type { EventLoader, LoadedEvent } from '../eventloader.js';

export class RoomState {
  constructor(
    private readonly events: EventStore,
    private readonly snapshots: StateSnapshotStore,
    private readonly loader: EventLoader,
  ) {}

  /** The state after a stored event with state: its state before, plus itself if it is an accepted state event. */
  async stateAfter(room: RoomInfo, e: StoredEvent): Promise<number> {
    if (e.stateSnapshotNid === null) throw new Error(`event ${e.eventId} has no state (an outlier)`);
    if (e.stateKeyNid === null || e.isRejected) return e.stateSnapshotNid;
    return this.snapshots.apply(room.roomNid, e.stateSnapshotNid, [{ typeNid: e.typeNid, stateKeyNid: e.stateKeyNid, eventNid: e.eventNid }]);
  }

  /** One state from several, by the room version's state resolution; the same snapshot when they agree. */
  async resolve(room: RoomInfo, snapshotNids: readonly number[]): Promise<number> {
    const distinct = [...new Set(snapshotNids)];
    if (distinct.length === 0) return 0;
    if (distinct.length === 1) return distinct[0]!;
    const rv = lookupRoomVersion(room.roomVersion);
    if (!rv) throw new Error(`room ${room.roomId} has unsupported version ${room.roomVersion}`);
    const sets = await Promise.all(distinct.map((n) => this.snapshots.load(n)));
    const eventNids = sets.flatMap((s) => s.map((e) => e.eventNid));
    const names = await this.events.names(
      sets.flatMap((s) => s.map((e) => e.typeNid)),
      sets.flatMap((s) => s.map((e) => e.stateKeyNid)),
    );
    const loaded = await this.loader.withAuthChains(eventNids, room.roomVersion);
    const byId = new Map<string, LoadedEvent>();
    for (const l of loaded.values()) byId.set(l.stored.eventId, l);
    const tupleOf = (e: StateEntry): string => stateTuple(names.types.get(e.typeNid)!, names.stateKeys.get(e.stateKeyNid)!);
    const stateSets = sets.map((s) => new Map(s.map((e) => [tupleOf(e), loaded.get(e.eventNid)!.stored.eventId])));
    const resolved = resolveState(rv, stateSets, { get: (id: string): EventLike | undefined => byId.get(id)?.event }, { isRejected: (id) => byId.get(id)?.stored.isRejected ?? false });
    const entries: StateEntry[] = [];
    const typeNids = await this.events.typeNids([...resolved.keys()].map((t) => splitStateTuple(t)[0]));
    const keyNids = await this.events.stateKeyNids([...resolved.keys()].map((t) => splitStateTuple(t)[1]));
    for (const [tuple, eventId] of resolved) {
      const [type, key] = splitStateTuple(tuple);
      entries.push({ typeNid: typeNids.get(type)!, stateKeyNid: keyNids.get(key)!, eventNid: byId.get(eventId)!.stored.eventNid });
    }
    return this.snapshots.store(room.roomNid, entries);
  }

  /** The events of a state that the auth rules would read for `event` (plus, in v12, the create event). */
  async authEventsIn(room: RoomInfo, snapshotNid: number, event: Event): Promise<LoadedEvent[]> {
    const wanted = authEventTypesNeeded(event);
    if (event.roomVersion.roomIdFromCreateEvent) wanted.push({ type: 'm.room.create', stateKey: '' });
    const typeNids = await this.events.typeNids(wanted.map((w) => w.type));
    const keyNids = await this.events.stateKeyNids(wanted.map((w) => w.stateKey));
    const found = await this.snapshots.lookup(
      snapshotNid,
      wanted.map((w) => ({ typeNid: typeNids.get(w.type)!, stateKeyNid: keyNids.get(w.stateKey)! })),
    );
    const loaded = await this.loader.byNids([...found.values()], room.roomVersion);
    return [...loaded.values()];
  }

  /** Event IDs for state entries. */
  async eventIds(entries: readonly StateEntry[]): Promise<string[]> {
    const stored = await this.events.eventsByNids(entries.map((e) => e.eventNid));
    const byNid = new Map(stored.map((s) => [s.eventNid, s.eventId]));
    return entries.map((e) => byNid.get(e.eventNid)!).filter((id) => id !== undefined);
  }
}
