/**
 * The auth check on receipt of an event: against its own auth_events, the list checks first
 * (rule 2 of v1-v11, 3 of v12), then the rules over those events.
 */
import type { EventLike } from '../types.js';
import { checkEventAuth } from './eventauth.js';
import { authEventsFromList, checkAuthEventsList, type AuthEventsListOptions } from './selection.js';

export interface AuthEventsCheckOptions extends AuthEventsListOptions {
  /**
   * The room's create event. Required in room version 12, where auth_events do not cite it
   * (MSC4291); before, it is taken from the auth events and this is ignored.
   */
  readonly create?: EventLike;
}

/** Throws AuthError when `event` is not allowed by its own (loaded) auth events. */
export function checkEventAuthAgainstAuthEvents(event: EventLike, authEvents: readonly EventLike[], options: AuthEventsCheckOptions = {}): void {
  checkAuthEventsList(event, authEvents, options);
  const withCreate = event.roomVersion.roomIdFromCreateEvent && options.create ? [options.create, ...authEvents] : authEvents;
  checkEventAuth(event, authEventsFromList(withCreate));
}
