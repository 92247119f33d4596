/**
 * Plain EventLike objects for state resolution tests and benchmarks: no hashing or signing,
 * just the fields the algorithms read. Not used by the resolution code itself.
 */
import type { RoomVersion } from '../roomversion.js';
import type { EventLike, EventProvider, JsonObject } from '../types.js';

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

/**
 * The (type, state_key) pairs an event's auth_events hold, per the spec's auth events selection
 * (create, power levels, the sender's membership; for memberships the target's, the join rules
 * for join/invite/knock, and a third-party invite's token). Enough for the test scenarios.
 */
export function authPairsFor(event: Pick<EventLike, 'type' | 'stateKey' | 'sender' | 'content' | 'roomVersion'>): Array<[string, string]> {
  if (event.type === 'm.room.create' && event.stateKey === '') return [];
  const pairs: Array<[string, string]> = [];
  if (!event.roomVersion.roomIdFromCreateEvent) pairs.push(['m.room.create', '']);
  pairs.push(['m.room.power_levels', ''], ['m.room.member', event.sender]);
  if (event.type === 'm.room.member' && event.stateKey !== undefined) {
    if (event.stateKey !== event.sender) pairs.push(['m.room.member', event.stateKey]);
    const membership = event.content['membership'];
    if (membership === 'join' || membership === 'invite' || membership === 'knock') {
      pairs.push(['m.room.join_rules', '']);
    }
    const via = event.content['join_authorised_via_users_server'];
    if (membership === 'join' && typeof via === 'string') pairs.push(['m.room.member', via]);
  }
  return pairs;
}
