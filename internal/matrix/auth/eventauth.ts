/**
 * The authorization rules for room versions 1-12 (spec: "Rooms" → each version's
 * "Authorization rules"). One function per rule group; version differences come from the
 * RoomVersion feature table. `authEvents` is the state the event is checked against: its
 * own auth events, or the state before it. In room version 12 the create event is not an
 * auth event, so the caller must still make ('m.room.create', '') resolvable.
 *
 * m.room.server_acl plays no part here: it decides which servers we accept events from, which
 * is federation's job, not whether an event is allowed in the room.
 */
import { domainOf, isValidUserId } from '../identifiers.js';
import type { AuthEventProvider, EventLike } from '../types.js';
import { deny } from './deny.js';
import { checkMembership } from './membership.js';
import { checkPowerLevelsChange } from './powerlevelschange.js';
import { powerLevelsOf, requiredEventLevel, userPowerLevel } from './powerlevels.js';
import { isSupportedRoomVersion } from '../roomversion.js';


/** Throws AuthError naming the failed rule when `event` is not allowed. */
export function checkEventAuth(event: EventLike, authEvents: AuthEventProvider): void {
  const v = event.roomVersion;
  if (event.type === 'm.room.create' && event.stateKey === '') {
    checkCreate(event);
    return;
  }

  const create = authEvents.get('m.room.create', '');
  if (!create) deny('create', 'no m.room.create event in the auth events');
  if (v.roomIdFromCreateEvent) {
    // MSC4291: the room ID is the create event's ID with `!` for `$`.
    if (event.roomId !== `!${create.eventId.slice(1)}`) deny('create', `room ${event.roomId} is not the room of create event ${create.eventId}`);
  } else if (create.roomId !== event.roomId) {
    deny('create', `create event belongs to ${create.roomId}, not ${event.roomId}`);
  }

  if (create.content['m.federate'] === false && domainOf(event.sender) !== domainOf(create.sender)) {
    deny('m.federate', `room does not federate and ${event.sender} is not on ${domainOf(create.sender)}`);
  }

  if (v.specialCasedAliasesAuth && event.type === 'm.room.aliases') {
    if (event.stateKey === undefined) deny('m.room.aliases', 'no state_key');
    if (event.stateKey !== domainOf(event.sender)) deny('m.room.aliases', `state_key ${event.stateKey} is not the sender's server`);
    return;
  }

  const powerLevelsEvent = authEvents.get('m.room.power_levels', '');
  const pl = powerLevelsOf(powerLevelsEvent, create);
  const senderLevel = userPowerLevel(event.sender, pl, create);

  if (event.type === 'm.room.member') {
    checkMembership(event, authEvents, create, pl);
    return;
  }

  const senderMembership = authEvents.get('m.room.member', event.sender)?.content['membership'];
  if (senderMembership !== 'join') deny('sender', `${event.sender} is not joined to the room`);

  if (event.type === 'm.room.third_party_invite') {
    if (senderLevel < pl.invite) deny('m.room.third_party_invite', `${event.sender} lacks the invite power level`);
    return;
  }

  const needed = requiredEventLevel(event.type, event.stateKey !== undefined, pl);
  if (needed > senderLevel) deny('power', `${event.type} needs power level ${needed}; ${event.sender} has ${senderLevel}`);

  if (event.stateKey !== undefined && event.stateKey.startsWith('@') && event.stateKey !== event.sender) {
    deny('state_key', `state_key ${event.stateKey} names another user than the sender`);
  }

  if (event.type === 'm.room.power_levels' && event.stateKey === '') {
    checkPowerLevelsChange(event, powerLevelsEvent, create, senderLevel);
    return;
  }

  // Versions 1 and 2 only: event IDs still carry a server name there. From version 3 on, a
  // redaction is checked when it is applied, not here.
  if (event.type === 'm.room.redaction' && v.eventFormat === 'v1') {
    if (senderLevel >= pl.redact) return;
    const target = event.redacts;
    if (target !== undefined && domainOf(target) === domainOf(event.eventId)) return;
    deny('m.room.redaction', `${event.sender} may not redact ${target ?? '(nothing)'}`);
  }
}

function checkCreate(event: EventLike): void {
  const v = event.roomVersion;
  if (event.prevEventIds.length > 0) deny('create', 'the create event has prev_events');
  if (v.roomIdFromCreateEvent) {
    // Its room ID is derived from it; a room_id in the event itself is refused at parse time.
  } else if (domainOf(event.roomId) !== domainOf(event.sender)) {
    deny('create', `room ID ${event.roomId} is not on the sender's server`);
  }
  const rv = event.content['room_version'];
  if (rv !== undefined && !isSupportedRoomVersion(rv)) deny('create', `unknown room_version ${JSON.stringify(rv)}`);
  if (!v.v11EventShape && typeof event.content['creator'] !== 'string') deny('create', 'content has no creator');
  if (v.privilegedCreators) {
    const extra = event.content['additional_creators'];
    if (extra !== undefined) {
      if (!Array.isArray(extra) || !extra.every((u) => typeof u === 'string' && isValidUserId(u))) {
        deny('create', 'additional_creators must be a list of user IDs');
      }
    }
  }
}
