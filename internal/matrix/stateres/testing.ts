/**
 * Plain EventLike objects for state resolution tests and benchmarks: no hashing or signing,
 * just the fields the algorithms read. Not used by the resolution code itself.
 */
import type { RoomVersion } from '../roomversion.js';
import type { EventLike, EventProvider, JsonObject } from '../types.js';
import { stateTuple } from '../types.js';
import { authEventTypesNeeded } from '../auth/index.js';

export interface EventSpec {
  readonly id: string;
  readonly type: string;
  /** Omit for a message event. */
  readonly stateKey?: string;
  readonly sender: string;
  readonly content?: JsonObject;
  readonly auth?: readonly string[];
  readonly prev?: readonly string[];
  readonly ts?: number;
  readonly depth?: number;
}

/** An event map that is also the EventProvider state resolution reads. */
export class EventStore implements EventProvider {
  private readonly events = new Map<string, EventLike>();
  private nextTs = 1;

  constructor(
    readonly roomVersion: RoomVersion,
    readonly roomId: string,
  ) {}

  get(eventId: string): EventLike | undefined {
    return this.events.get(eventId);
  }

  /** Adds an event; origin_server_ts defaults to a counter, so later events are newer. */
  add(spec: EventSpec): EventLike {
    if (this.events.has(spec.id)) throw new Error(`event ${spec.id} added twice`);
    const ts = spec.ts ?? this.nextTs;
    this.nextTs = Math.max(this.nextTs, ts) + 1;
    const prev = spec.prev ?? [];
    const depth = spec.depth ?? 1 + Math.max(0, ...prev.map((p) => this.events.get(p)?.depth ?? 0));
    const event: EventLike = {
      eventId: spec.id,
      roomId: this.roomId,
      type: spec.type,
      stateKey: spec.stateKey,
      sender: spec.sender,
      content: spec.content ?? {},
      prevEventIds: prev,
      authEventIds: spec.auth ?? [],
      depth,
      originServerTs: ts,
      redacts: undefined,
      roomVersion: this.roomVersion,
    };
    this.events.set(spec.id, event);
    return event;
  }

  all(): IterableIterator<EventLike> {
    return this.events.values();
  }
}

/** The (type, state_key) pairs an event's auth_events hold: the auth rules' own selection. */
export function authPairsFor(event: Pick<EventLike, 'type' | 'stateKey' | 'sender' | 'content' | 'roomVersion'>): Array<[string, string]> {
  return authEventTypesNeeded(event).map((k) => [k.type, k.stateKey]);
}

/**
 * Builds a room DAG by state: each `send` picks its auth events from the given state (the
 * state of the fork it is sent on) and applies itself to that state.
 */
export class RoomBuilder {
  readonly store: EventStore;
  private seq = 0;

  constructor(readonly version: RoomVersion) {
    // Room version 12 names the room after its create event.
    this.store = new EventStore(version, version.roomIdFromCreateEvent ? '!create' : '!room:test');
  }

  send(state: Map<string, string>, type: string, stateKey: string, sender: string, content: JsonObject): string {
    const isCreate = type === 'm.room.create' && stateKey === '';
    const id = isCreate && this.version.roomIdFromCreateEvent ? '$create' : `$e${this.seq++}`;
    const auth: string[] = [];
    for (const [t, k] of authPairsFor({ type, stateKey, sender, content, roomVersion: this.version })) {
      const a = state.get(stateTuple(t, k));
      if (a !== undefined) auth.push(a);
    }
    this.store.add({ id, type, stateKey, sender, content, auth });
    state.set(stateTuple(type, stateKey), id);
    return id;
  }

  /**
   * Power levels content giving the creator 100 and `users` their levels, with state, kick and
   * ban at 50. Room version 12 creators outrank every level and may not be listed (MSC4289).
   */
  powerLevels(creator: string, users: JsonObject): JsonObject {
    const creatorLevel: JsonObject = this.version.privilegedCreators ? {} : { [creator]: 100 };
    return { users: { ...creatorLevel, ...users }, state_default: 50, kick: 50, ban: 50 };
  }

  /** Create, the creator's join, power levels and public join rules; returns the state. */
  genesis(creator: string, powerUsers: JsonObject = {}): Map<string, string> {
    const state = new Map<string, string>();
    this.send(state, 'm.room.create', '', creator, { creator, room_version: this.version.id });
    this.send(state, 'm.room.member', creator, creator, { membership: 'join' });
    this.send(state, 'm.room.power_levels', '', creator, this.powerLevels(creator, powerUsers));
    this.send(state, 'm.room.join_rules', '', creator, { join_rule: 'public' });
    return state;
  }
}
