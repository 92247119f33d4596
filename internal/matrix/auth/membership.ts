/**
 * The m.room.member rule (rule 5 in v1-v5 and v12, 4 in v6-v11): join, invite (with or
 * without a third-party invite), leave and kick, ban, knock (v7+), restricted joins (v8+,
 * knock_restricted v10+).
 *
 * Not checked here, by design:
 * - "If content has join_authorised_via_users_server, the event must be signed by that user's
 *   server" (v8+): a signature check, done with the other signature checks on receipt
 *   (eventsigning.ts `requiredSigningServers`). EventLike carries no signatures.
 * - The allow conditions of a restricted room (membership of other rooms): the resident server
 *   checks them before it signs the join; the auth rules only check that the authorising user
 *   may invite and is joined.
 *
 * A room with no m.room.join_rules event (or one without a string `join_rule`) is treated as
 * `invite`, as Synapse and gomatrixserverlib do. The spec's text would refuse every join but
 * the creator's there; the implementations let invited users in, and agreeing with them is
 * what keeps servers from disagreeing about a room.
 */
import type { AuthEventProvider, EventLike } from '../types.js';
import type { CreateInfo } from './create.js';
import { deny } from './deny.js';
import { userPowerLevel, type PowerLevels } from './powerlevels.js';
import { checkThirdPartyInviteRedemption } from './thirdpartyinvite.js';
import { stateEventOf } from './stateevent.js';

/** The `membership` of `userId`'s current m.room.member event, or undefined (no event, or no string membership). */
export function membershipOf(authEvents: AuthEventProvider, userId: string): string | undefined {
  const m = authEvents.get('m.room.member', userId)?.content['membership'];
  return typeof m === 'string' ? m : undefined;
}

/** The room's join rule: `join_rule` of m.room.join_rules, `invite` when there is none. */
export function joinRuleOf(authEvents: AuthEventProvider): string {
  const rule = authEvents.get('m.room.join_rules', '')?.content['join_rule'];
  return typeof rule === 'string' ? rule : 'invite';
}

export function checkMemberEvent(
  event: EventLike,
  authEvents: AuthEventProvider,
  create: EventLike,
  createInfo: CreateInfo,
  pl: PowerLevels,
): void {
  const v = event.roomVersion;
  const target = event.stateKey;
  const membership = event.content['membership'];
  if (target === undefined) deny('m.room.member', 'no state_key');
  if (membership === undefined) deny('m.room.member', 'content has no membership');

  switch (membership) {
    case 'join':
      return checkJoin(event, target, authEvents, create, createInfo, pl);
    case 'invite':
      return checkInvite(event, target, authEvents, create, pl);
    case 'leave':
      return checkLeave(event, target, authEvents, create, pl);
    case 'ban':
      return checkBan(event, target, authEvents, create, pl);
    case 'knock':
      if (v.knockJoinRule) return checkKnock(event, target, authEvents);
      break;
  }
  deny('m.room.member', `unknown membership ${JSON.stringify(membership)} in room version ${v.id}`);
}

/** `userId`'s current membership in the auth events (which must be of the event's room). */
function membershipIn(event: EventLike, userId: string, authEvents: AuthEventProvider): string | undefined {
  const m = stateEventOf(authEvents, event, 'm.room.member', userId)?.content['membership'];
  return typeof m === 'string' ? m : undefined;
}

function joinRule(event: EventLike, authEvents: AuthEventProvider): string {
  const rule = stateEventOf(authEvents, event, 'm.room.join_rules', '')?.content['join_rule'];
  return typeof rule === 'string' ? rule : 'invite';
}

function checkJoin(event: EventLike, target: string, authEvents: AuthEventProvider, create: EventLike, createInfo: CreateInfo, pl: PowerLevels): void {
  const v = event.roomVersion;
  const RULE = 'm.room.member join';
  // The creator's own join, straight after the create event (the sender is not compared: the spec does not).
  if (event.prevEventIds.length === 1 && event.prevEventIds[0] === create.eventId && target === createInfo.creator) return;
  if (event.sender !== target) deny(RULE, `${event.sender} cannot join on behalf of ${target}`);
  const current = membershipIn(event, event.sender, authEvents);
  if (current === 'ban') deny(RULE, `${target} is banned`);
  const rule = joinRule(event, authEvents);
  if (rule === 'invite' || (rule === 'knock' && v.knockJoinRule)) {
    if (current === 'invite' || current === 'join') return;
    deny(RULE, `the join rule is ${rule} and ${target} is neither invited nor joined`);
  }
  if ((rule === 'restricted' && v.restrictedJoinRule) || (rule === 'knock_restricted' && v.knockRestrictedJoinRule)) {
    if (current === 'invite' || current === 'join') return;
    const via = event.content['join_authorised_via_users_server'];
    if (typeof via !== 'string') deny(RULE, `the join rule is ${rule} and join_authorised_via_users_server names no user`);
    if (membershipIn(event, via, authEvents) !== 'join') deny(RULE, `authorising user ${via} is not joined to the room`);
    if (userPowerLevel(via, pl, create) < pl.invite) deny(RULE, `authorising user ${via} lacks the invite level (${pl.invite})`);
    return;
  }
  if (rule === 'public') return;
  deny(RULE, `the join rule ${JSON.stringify(rule)} does not let ${target} join in room version ${v.id}`);
}

function checkInvite(event: EventLike, target: string, authEvents: AuthEventProvider, create: EventLike, pl: PowerLevels): void {
  const RULE = 'm.room.member invite';
  const targetNow = membershipIn(event, target, authEvents);
  if (event.content['third_party_invite'] !== undefined) {
    if (targetNow === 'ban') deny(RULE, `${target} is banned`);
    checkThirdPartyInviteRedemption(event, target, authEvents);
    return;
  }
  if (membershipIn(event, event.sender, authEvents) !== 'join') deny(RULE, `${event.sender} is not joined to the room`);
  if (targetNow === 'join' || targetNow === 'ban') deny(RULE, `${target} is ${targetNow === 'join' ? 'already joined' : 'banned'}`);
  const senderLevel = userPowerLevel(event.sender, pl, create);
  if (senderLevel >= pl.invite) return;
  deny(RULE, `${event.sender} has level ${senderLevel}, below the invite level ${pl.invite}`);
}

function checkLeave(event: EventLike, target: string, authEvents: AuthEventProvider, create: EventLike, pl: PowerLevels): void {
  const current = membershipIn(event, event.sender, authEvents);
  if (event.sender === target) {
    if (current === 'join' || current === 'invite' || (current === 'knock' && event.roomVersion.knockJoinRule)) return;
    deny('m.room.member leave', `${target} can only leave when joined, invited${event.roomVersion.knockJoinRule ? ' or knocking' : ''}, not when ${current ?? 'absent'}`);
  }
  const RULE = 'm.room.member kick';
  if (current !== 'join') deny(RULE, `${event.sender} is not joined to the room`);
  const senderLevel = userPowerLevel(event.sender, pl, create);
  if (membershipIn(event, target, authEvents) === 'ban' && senderLevel < pl.ban) {
    deny('m.room.member unban', `${event.sender} has level ${senderLevel}, below the ban level ${pl.ban}`);
  }
  const targetLevel = userPowerLevel(target, pl, create);
  if (senderLevel >= pl.kick && targetLevel < senderLevel) return;
  deny(RULE, `${event.sender} (level ${senderLevel}) cannot kick ${target} (level ${targetLevel}; kick level ${pl.kick})`);
}

function checkBan(event: EventLike, target: string, authEvents: AuthEventProvider, create: EventLike, pl: PowerLevels): void {
  const RULE = 'm.room.member ban';
  if (membershipIn(event, event.sender, authEvents) !== 'join') deny(RULE, `${event.sender} is not joined to the room`);
  const senderLevel = userPowerLevel(event.sender, pl, create);
  const targetLevel = userPowerLevel(target, pl, create);
  if (senderLevel >= pl.ban && targetLevel < senderLevel) return;
  deny(RULE, `${event.sender} (level ${senderLevel}) cannot ban ${target} (level ${targetLevel}; ban level ${pl.ban})`);
}

function checkKnock(event: EventLike, target: string, authEvents: AuthEventProvider): void {
  const v = event.roomVersion;
  const RULE = 'm.room.member knock';
  const rule = joinRule(event, authEvents);
  if (!(rule === 'knock' || (rule === 'knock_restricted' && v.knockRestrictedJoinRule))) {
    deny(RULE, `the join rule ${JSON.stringify(rule)} does not allow knocking in room version ${v.id}`);
  }
  if (event.sender !== target) deny(RULE, `${event.sender} cannot knock on behalf of ${target}`);
  const current = membershipIn(event, event.sender, authEvents);
  if (current === 'ban' || current === 'invite' || current === 'join') deny(RULE, `${target} is ${current}`);
}
