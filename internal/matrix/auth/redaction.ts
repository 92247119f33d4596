/**
 * Redactions, in two places depending on the room version:
 *
 * - Room versions 1 and 2 (event format v1, event IDs `$opaque:server`): auth rule 11. The
 *   redaction is allowed when the sender has the redact level, or when the redacted event's ID
 *   has the same server as the redaction's own ID.
 * - Room versions 3 and later: no auth rule at all; a redaction passes like any other event
 *   (the *required power level* of m.room.redaction still applies, from `events` or
 *   `events_default`, never `redact`). Whether it takes effect is decided when both events are
 *   known ("Handling redactions"): `redactionTakesEffect` below. Room version 11 only moved
 *   `redacts` into `content` (EventLike.redacts covers both places); the rules did not change.
 */
import { domainOf } from '../identifiers.js';
import type { AuthEventProvider, EventLike } from '../types.js';
import { deny } from './deny.js';
import { powerLevelsOf, userPowerLevel, type PowerLevels } from './powerlevels.js';

/**
 * Whether the room version still has the redaction auth rule: only event format v1 gives
 * event IDs a server to compare (this is what the spec removed in room version 3).
 */
export function hasRedactionAuthRule(event: EventLike): boolean {
  return event.roomVersion.eventFormat === 'v1';
}

/** Auth rule 11 of room versions 1 and 2. */
export function checkRedactionAuthRule(event: EventLike, pl: PowerLevels, senderLevel: number): void {
  if (senderLevel >= pl.redact) return;
  const target = event.redacts;
  const targetServer = target === undefined ? undefined : domainOf(target);
  if (targetServer !== undefined && targetServer === domainOf(event.eventId)) return;
  deny(
    'm.room.redaction',
    `${event.sender} (level ${senderLevel}) is below the redact level ${pl.redact} and ${target ?? '(no redacts)'} is not from the server of ${event.eventId}`,
  );
}

/**
 * "Handling redactions" (room versions 3+): whether an accepted redaction should be applied to
 * the event it redacts, given the auth state of the redaction (its power levels and create
 * events). It applies when the redaction's sender has the redact level, or is on the same
 * server as the redacted event's sender. Both events must be in the same room and the redaction
 * must name the event.
 *
 * In room versions 1 and 2 the auth rules already made this decision when they accepted the
 * redaction, so the only remaining checks are the room and the target.
 */
export function redactionTakesEffect(redaction: EventLike, redacted: EventLike, redactionAuth: AuthEventProvider): boolean {
  if (redaction.type !== 'm.room.redaction' || redaction.redacts !== redacted.eventId) return false;
  if (redaction.roomId !== redacted.roomId) return false;
  if (hasRedactionAuthRule(redaction)) return true;
  const senderServer = domainOf(redaction.sender);
  if (senderServer !== undefined && senderServer === domainOf(redacted.sender)) return true;
  const create = redactionAuth.get('m.room.create', '');
  const pl = powerLevelsOf(redactionAuth.get('m.room.power_levels', ''), create);
  return userPowerLevel(redaction.sender, pl, create) >= pl.redact;
}
