/**
 * Which state events an event cites as its auth events (spec: Server-Server API, "Auth events
 * selection"), and checks on an event's own auth_events list that need the list itself
 * (room version 12's rule 2: no duplicates, nothing unexpected, no create event).
 */
import { AuthError, stateTuple, type AuthEventProvider, type EventLike, type JsonObject } from '../types.js';

type Selectable = Pick<EventLike, 'type' | 'stateKey' | 'sender' | 'content' | 'roomVersion'>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function authEventTypesNeeded(event: Selectable): Array<{ type: string; stateKey: string }> {
  if (event.type === 'm.room.create' && event.stateKey === '') return [];
  const out: Array<{ type: string; stateKey: string }> = [];
  if (!event.roomVersion.roomIdFromCreateEvent) out.push({ type: 'm.room.create', stateKey: '' });
  out.push({ type: 'm.room.power_levels', stateKey: '' });
  out.push({ type: 'm.room.member', stateKey: event.sender });
  if (event.type === 'm.room.member' && event.stateKey !== undefined) {
    if (event.stateKey !== event.sender) out.push({ type: 'm.room.member', stateKey: event.stateKey });
    const membership = event.content['membership'];
    if (membership === 'join' || membership === 'invite' || membership === 'knock') {
      out.push({ type: 'm.room.join_rules', stateKey: '' });
    }
    const tpi = event.content['third_party_invite'];
    if (membership === 'invite' && isObject(tpi) && isObject(tpi['signed']) && typeof tpi['signed']['token'] === 'string') {
      out.push({ type: 'm.room.third_party_invite', stateKey: tpi['signed']['token'] });
    }
    const via = event.content['join_authorised_via_users_server'];
    if (event.roomVersion.restrictedJoinRule && membership === 'join' && typeof via === 'string') {
      out.push({ type: 'm.room.member', stateKey: via });
    }
  }
  return out;
}

/** An AuthEventProvider over a list: the last event for each (type, state_key) wins. */
export function authEventsFromList(events: Iterable<EventLike>): AuthEventProvider {
  const byKey = new Map<string, EventLike>();
  for (const e of events) if (e.stateKey !== undefined) byKey.set(stateTuple(e.type, e.stateKey), e);
  return { get: (type, stateKey) => byKey.get(stateTuple(type, stateKey)) };
}

/**
 * Checks the event's own auth_events (as loaded events): no two for one (type, state_key),
 * none that the selection algorithm would not pick, and the create event present before
 * room version 12 and absent from it.
 */
export function checkAuthEventsList(event: EventLike, authEvents: readonly EventLike[]): void {
  const allowed = new Set(authEventTypesNeeded(event).map((k) => stateTuple(k.type, k.stateKey)));
  const seen = new Set<string>();
  for (const a of authEvents) {
    if (a.stateKey === undefined) throw new AuthError(`auth event ${a.eventId} is not a state event`);
    const key = stateTuple(a.type, a.stateKey);
    if (seen.has(key)) throw new AuthError(`auth events hold two ${a.type} events for state key "${a.stateKey}"`);
    seen.add(key);
    if (!allowed.has(key)) throw new AuthError(`auth event ${a.eventId} (${a.type}, "${a.stateKey}") is not one the event should cite`);
  }
  const hasCreate = seen.has(stateTuple('m.room.create', ''));
  if (event.type !== 'm.room.create' && !event.roomVersion.roomIdFromCreateEvent && !hasCreate) {
    throw new AuthError('auth events hold no m.room.create event');
  }
}
