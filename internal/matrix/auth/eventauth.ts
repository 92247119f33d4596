/**
 * The authorisation rules of room versions 1-12 (spec: Rooms → each version's "Authorisation
 * rules"), as one function: `checkEventAuth(event, authEvents)` throws an AuthError naming the
 * failed rule, or returns when the event is allowed. Version differences come from the
 * RoomVersion feature table, never from comparing version numbers.
 *
 * `authEvents` is the state the event is checked against: its own auth events (on receipt),
 * the state before it, or the current state (soft-failure checks). It is only ever asked for
 * the pairs `authEventTypesNeeded` lists, plus the create event.
 *
 * What the caller provides or checks elsewhere:
 * - The create event must be resolvable as ('m.room.create', '') in every room version. In
 *   room version 12 it is not among an event's auth_events (MSC4291: the room ID names it), so
 *   a provider built from auth_events must add it: look it up by the room ID.
 * - The checks that need the auth_events list itself, not a state lookup (duplicates,
 *   unexpected entries, rejected entries, no create event): `checkAuthEventsList`.
 * - Whether the create event itself was rejected (v12 rule 2: "an accepted m.room.create"):
 *   the caller knows which events it rejected; pass only accepted ones.
 * - Signatures, including that of `join_authorised_via_users_server`'s server (v8+): checked on
 *   receipt with the hashes (eventsigning.ts).
 * - m.room.server_acl plays no part: it decides which servers' events federation accepts, not
 *   whether an event is allowed in the room, so it is applied by federationapi on receipt.
 * - Redactions from room version 3 on: whether one takes effect is `redactionTakesEffect`.
 *
 * Rule order follows the spec, which matters only for which reason is reported.
 */
import { domainOf } from '../identifiers.js';
import type { AuthEventProvider, EventLike } from '../types.js';
import { checkCreateEvent, createInfoOf } from './create.js';
import { deny } from './deny.js';
import { checkMemberEvent } from './membership.js';
import { checkPowerLevelsEvent } from './powerlevelschange.js';
import { powerLevelsOf, requiredEventLevel, userPowerLevel } from './powerlevels.js';
import { checkRedactionAuthRule, hasRedactionAuthRule } from './redaction.js';
import { stateEventOf } from './stateevent.js';

export function checkEventAuth(event: EventLike, authEvents: AuthEventProvider): void {
  const v = event.roomVersion;

  // Rule 1: the create event is judged on its own.
  if (event.type === 'm.room.create') {
    checkCreateEvent(event);
    return;
  }

  // v12 rule 2 / rules 2.4-2.5: the room's create event, and that it is this room's.
  const create = authEvents.get('m.room.create', '');
  if (!create) deny('create event', `no m.room.create event to check ${event.eventId} against`);
  const createInfo = createInfoOf(create);
  if (event.roomId !== createInfo.roomId) {
    deny('create event', `${event.eventId} is in room ${event.roomId}, but create event ${create.eventId} is of room ${createInfo.roomId}`);
  }

  // m.federate.
  if (!createInfo.federates && domainOf(event.sender) !== createInfo.senderDomain) {
    deny('m.federate', `the room does not federate and ${event.sender} is not on ${createInfo.senderDomain ?? '(no server)'}`);
  }

  // v1-v5: m.room.aliases needs nothing but a state_key naming the sender's server.
  if (v.specialCasedAliasesAuth && event.type === 'm.room.aliases') {
    if (event.stateKey === undefined) deny('m.room.aliases', 'no state_key');
    if (event.stateKey !== domainOf(event.sender)) deny('m.room.aliases', `state_key ${JSON.stringify(event.stateKey)} is not the server of ${event.sender}`);
    return;
  }

  const powerLevelsEvent = stateEventOf(authEvents, event, 'm.room.power_levels', '');
  const pl = powerLevelsOf(powerLevelsEvent, create);

  if (event.type === 'm.room.member') {
    checkMemberEvent(event, authEvents, create, createInfo, pl);
    return;
  }

  // Every other event: the sender must be joined.
  const senderMember = stateEventOf(authEvents, event, 'm.room.member', event.sender);
  if (senderMember?.content['membership'] !== 'join') deny('sender', `${event.sender} is not joined to the room`);

  const senderLevel = userPowerLevel(event.sender, pl, create);

  if (event.type === 'm.room.third_party_invite') {
    if (senderLevel >= pl.invite) return;
    deny('m.room.third_party_invite', `${event.sender} has level ${senderLevel}, below the invite level ${pl.invite}`);
  }

  const isState = event.stateKey !== undefined;
  const required = requiredEventLevel(event.type, isState, pl);
  if (required > senderLevel) deny('power level', `${event.type} needs level ${required}; ${event.sender} has ${senderLevel}`);

  if (isState && event.stateKey.startsWith('@') && event.stateKey !== event.sender) {
    deny('state_key', `state_key ${event.stateKey} is a user ID other than the sender ${event.sender}`);
  }

  if (event.type === 'm.room.power_levels') {
    // Compared with the room's power levels (state_key ""), whatever this event's state_key,
    // as the spec words it and gomatrixserverlib does.
    checkPowerLevelsEvent(event, powerLevelsEvent, createInfo, senderLevel);
    return;
  }

  if (event.type === 'm.room.redaction' && hasRedactionAuthRule(event)) checkRedactionAuthRule(event, pl, senderLevel);
}
