/**
 * Auth events selection (Server-Server API, "Auth events selection"): which state events an
 * event cites as its `auth_events`; and the checks on an event's own auth_events list (rule 2
 * of v1-v11, 3 of v12) that need the list itself rather than a state lookup.
 */
import { AuthError, stateTuple, type AuthEventProvider, type EventLike } from '../types.js';
import { isJsonObject } from './json.js';

export type Selectable = Pick<EventLike, 'type' | 'stateKey' | 'sender' | 'content' | 'roomVersion'>;

export interface StateKeyPair {
  type: string;
  stateKey: string;
}

/**
 * The (type, state_key) pairs of the state events `event` should cite, in the spec's order,
 * without duplicates:
 *
 * - none for m.room.create;
 * - the create event, except in room version 12 (MSC4291: the room ID names it);
 * - the power levels event and the sender's membership;
 * - for m.room.member: the target's membership; the join rules for join, invite and knock; for
 *   an invite with `third_party_invite`, the m.room.third_party_invite named by
 *   `signed.token`; for a join with `join_authorised_via_users_server` in a version with
 *   restricted rooms (8+), that user's membership.
 *
 * Callers cite the current state event for each pair, when there is one.
 */
export function authEventTypesNeeded(event: Selectable): StateKeyPair[] {
  if (event.type === 'm.room.create') return [];
  const out: StateKeyPair[] = [];
  const add = (type: string, stateKey: string): void => {
    for (const p of out) if (p.type === type && p.stateKey === stateKey) return;
    out.push({ type, stateKey });
  };
  if (!event.roomVersion.roomIdFromCreateEvent) add('m.room.create', '');
  add('m.room.power_levels', '');
  add('m.room.member', event.sender);
  if (event.type !== 'm.room.member') return out;

  const content = event.content;
  const membership = content['membership'];
  if (event.stateKey !== undefined) add('m.room.member', event.stateKey);
  if (membership === 'join' || membership === 'invite' || membership === 'knock') add('m.room.join_rules', '');
  if (membership === 'invite') {
    const tpi = content['third_party_invite'];
    const signed = isJsonObject(tpi) ? tpi['signed'] : undefined;
    const token = isJsonObject(signed) ? signed['token'] : undefined;
    if (typeof token === 'string') add('m.room.third_party_invite', token);
  }
  if (membership === 'join' && event.roomVersion.restrictedJoinRule) {
    const via = content['join_authorised_via_users_server'];
    if (typeof via === 'string') add('m.room.member', via);
  }
  return out;
}

/**
 * An AuthEventProvider over a list of events: the last state event for each (type, state_key)
 * wins; events without a state_key are ignored. In room version 12 include the room's create
 * event in the list: it is not an auth event there, but the rules still read it.
 */
export function authEventsFromList(events: Iterable<EventLike>): AuthEventProvider {
  const byKey = new Map<string, EventLike>();
  for (const e of events) if (e.stateKey !== undefined) byKey.set(stateTuple(e.type, e.stateKey), e);
  return { get: (type, stateKey) => byKey.get(stateTuple(type, stateKey)) };
}

export interface AuthEventsListOptions {
  /** Whether an auth event was itself rejected (rule 2.3 / 3.3). Default: none was. */
  readonly isRejected?: (eventId: string) => boolean;
}

/**
 * The checks on an event's own auth_events (as loaded events, in the order cited): each must
 * be a state event of the same room, not rejected, not a second one for its (type,
 * state_key), and one the selection above would pick; before room version 12 the create event
 * must be among them (in v12 it must not be, which the selection check enforces).
 *
 * Run this on receipt of an event, then `checkEventAuth` with a provider over the same list
 * (plus, in v12, the room's create event). Throws AuthError.
 */
export function checkAuthEventsList(event: EventLike, authEvents: readonly EventLike[], options: AuthEventsListOptions = {}): void {
  // Rule 1 decides create events alone ("otherwise, allow"), whatever they cite.
  if (event.type === 'm.room.create') return;
  const expected = authEventTypesNeeded(event);
  const seen = new Set<string>();
  for (const a of authEvents) {
    if (a.stateKey === undefined) throw new AuthError(`auth events: ${a.eventId} (${a.type}) is not a state event`);
    const key = stateTuple(a.type, a.stateKey);
    if (seen.has(key)) throw new AuthError(`auth events: two events for (${a.type}, ${JSON.stringify(a.stateKey)}); the second is ${a.eventId}`);
    seen.add(key);
    if (!expected.some((p) => p.type === a.type && p.stateKey === a.stateKey)) {
      throw new AuthError(`auth events: ${a.eventId} (${a.type}, ${JSON.stringify(a.stateKey)}) is not one the selection algorithm picks for ${event.type}`);
    }
    if (options.isRejected?.(a.eventId)) throw new AuthError(`auth events: ${a.eventId} was rejected`);
    if (a.roomId !== event.roomId) throw new AuthError(`auth events: ${a.eventId} belongs to room ${a.roomId}, not ${event.roomId}`);
  }
  if (!event.roomVersion.roomIdFromCreateEvent && !seen.has(stateTuple('m.room.create', ''))) {
    throw new AuthError('auth events: no m.room.create event among them');
  }
}
