/**
 * The auth DAG seen by one state resolution: events get small integer indices on first sight,
 * and each event's auth edges are resolved to indices once, so that every later walk (auth
 * difference, conflicted subgraph, power ordering, mainline) works on integers and bit sets.
 * One graph lives for one `resolveState` call: it memoises everything it learns.
 */
import type { EventLike, EventProvider } from '../types.js';
import { BitSet } from './bitset.js';

const CREATE = 'm.room.create';
const POWER_LEVELS = 'm.room.power_levels';

/** Marks an index whose event the provider did not have. */
export const MISSING = -1;

export class AuthGraph {
  private readonly indexById = new Map<string, number>();
  private readonly missingIds = new Set<string>();
  private readonly eventsByIndex: EventLike[] = [];
  private readonly authByIndex: (readonly number[] | undefined)[] = [];
  /** Index of the power levels event among an event's auth events: -2 unknown, -1 none. */
  private readonly powerAuthByIndex: number[] = [];

  constructor(private readonly provider: EventProvider) {}

  /** How many events have been indexed so far. */
  get size(): number {
    return this.eventsByIndex.length;
  }

  /** The index of an event, or MISSING when the provider does not have it. */
  indexOf(eventId: string): number {
    const known = this.indexById.get(eventId);
    if (known !== undefined) return known;
    if (this.missingIds.has(eventId)) return MISSING;
    const event = this.provider.get(eventId);
    if (event === undefined) {
      this.missingIds.add(eventId);
      return MISSING;
    }
    const i = this.eventsByIndex.length;
    this.indexById.set(eventId, i);
    this.eventsByIndex.push(event);
    this.authByIndex.push(undefined);
    this.powerAuthByIndex.push(-2);
    return i;
  }

  /** The index of an event that must be known; throws naming the event otherwise. */
  requireIndex(eventId: string, role: string): number {
    const i = this.indexOf(eventId);
    if (i === MISSING) {
      throw new StateResolutionError(`${role} ${eventId} was not provided to state resolution`);
    }
    return i;
  }

  event(i: number): EventLike {
    const event = this.eventsByIndex[i];
    if (event === undefined) throw new RangeError(`no event at index ${i}`);
    return event;
  }

  eventId(i: number): string {
    return this.event(i).eventId;
  }

  /**
   * The indices of an event's auth events that the provider has. In room version 12 the create
   * event is implied by the room ID rather than listed (MSC4291), so it is added here: it is
   * part of every auth chain all the same.
   */
  authOf(i: number): readonly number[] {
    const cached = this.authByIndex[i];
    if (cached !== undefined) return cached;
    const event = this.event(i);
    const ids = authEventIdsOf(event);
    const out: number[] = [];
    for (const id of ids) {
      const a = this.indexOf(id);
      if (a !== MISSING && !out.includes(a)) out.push(a);
    }
    this.authByIndex[i] = out;
    return out;
  }

  /** The event's `m.room.power_levels` auth event (the first listed), or MISSING. */
  powerLevelsAuthOf(i: number): number {
    const cached = this.powerAuthByIndex[i]!;
    if (cached !== -2) return cached;
    let found = MISSING;
    for (const a of this.authOf(i)) {
      const e = this.event(a);
      if (e.type === POWER_LEVELS && e.stateKey === '') {
        found = a;
        break;
      }
    }
    this.powerAuthByIndex[i] = found;
    return found;
  }

  /** The event's `m.room.create` auth event (explicit, or implied in v12), or MISSING. */
  createAuthOf(i: number): number {
    for (const a of this.authOf(i)) {
      const e = this.event(a);
      if (e.type === CREATE && e.stateKey === '') return a;
    }
    return MISSING;
  }

  /**
   * Adds to `into` every event reachable from `starts` along auth edges (the starts included),
   * without descending into events already in `into` or in `stop`. Iterative, so chains of any
   * length are fine. Appends what it adds to `added` when given.
   */
  markAuthClosure(starts: Iterable<number>, into: BitSet, stop?: BitSet, added?: number[]): void {
    const stack: number[] = [];
    for (const s of starts) {
      if (s === MISSING || into.has(s) || stop?.has(s)) continue;
      into.add(s);
      added?.push(s);
      stack.push(s);
    }
    while (stack.length > 0) {
      const i = stack.pop()!;
      for (const a of this.authOf(i)) {
        if (into.has(a) || stop?.has(a)) continue;
        into.add(a);
        added?.push(a);
        stack.push(a);
      }
    }
  }
}

/** An event's auth event IDs, with the implied create event of room version 12 added. */
export function authEventIdsOf(event: EventLike): readonly string[] {
  if (!event.roomVersion.roomIdFromCreateEvent) return event.authEventIds;
  if (event.type === CREATE && event.stateKey === '') return event.authEventIds;
  if (!event.roomId.startsWith('!')) return event.authEventIds;
  const createId = `$${event.roomId.slice(1)}`;
  return event.authEventIds.includes(createId) ? event.authEventIds : [...event.authEventIds, createId];
}

/** State resolution could not run: its input was incomplete or inconsistent. */
export class StateResolutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateResolutionError';
  }
}
