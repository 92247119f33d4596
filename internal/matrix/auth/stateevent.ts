/**
 * Reads one state event from the auth events, refusing events of another room (v1-v11 rule
 * 2.5, v12 rule 3.5: "If any event in auth_events has a room_id which does not match that of
 * the event being authorised, reject"). When the provider is the room state before the event
 * this never fires; when it is built from an event's own auth_events it stops powers granted
 * in one room from being used in another.
 */
import type { AuthEventProvider, EventLike } from '../types.js';
import { deny } from './deny.js';

export function stateEventOf(authEvents: AuthEventProvider, event: EventLike, type: string, stateKey: string): EventLike | undefined {
  const found = authEvents.get(type, stateKey);
  if (found !== undefined && found.roomId !== event.roomId) {
    deny('auth events', `${type} event ${found.eventId} belongs to room ${found.roomId}, not ${event.roomId}`);
  }
  return found;
}
