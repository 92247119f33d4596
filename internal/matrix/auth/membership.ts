/**
 * The m.room.member rules: join, invite (with third-party invites), leave and kick, ban,
 * knock (v7+), restricted joins (v8+, knock_restricted v10+).
 */
import type { AuthEventProvider, EventLike, JsonValue } from '../types.js';
import { deny } from './deny.js';
import { creatorOf, userPowerLevel, type PowerLevels } from './powerlevels.js';
import { checkThirdPartyInvite } from './thirdpartyinvite.js';

function membershipOf(authEvents: AuthEventProvider, userId: string): JsonValue | undefined {
  return authEvents.get('m.room.member', userId)?.content['membership'];
}

export function checkMembership(event: EventLike, authEvents: AuthEventProvider, create: EventLike, pl: PowerLevels): void {
  const v = event.roomVersion;
  const target = event.stateKey;
  const membership = event.content['membership'];
  if (target === undefined) deny('m.room.member', 'no state_key');
  if (typeof membership !== 'string') deny('m.room.member', 'content has no membership');

  const senderMembership = membershipOf(authEvents, event.sender);
  const targetMembership = membershipOf(authEvents, target);
  const joinRule = authEvents.get('m.room.join_rules', '')?.content['join_rule'];
  const senderLevel = userPowerLevel(event.sender, pl, create);
  const targetLevel = userPowerLevel(target, pl, create);

  switch (membership) {
    case 'join': {
      // The creator's own first join, right after the create event.
      if (event.prevEventIds.length === 1 && event.prevEventIds[0] === create.eventId && target === creatorOf(create)) return;
      if (event.sender !== target) deny('join', `${event.sender} cannot join on behalf of ${target}`);
      if (senderMembership === 'ban') deny('join', `${target} is banned`);
      const knockish = joinRule === 'knock' && v.knockJoinRule;
      if (joinRule === 'invite' || knockish) {
        if (senderMembership === 'join' || senderMembership === 'invite') return;
        deny('join', `the room is ${String(joinRule)}-only and ${target} is not invited`);
      }
      const restricted = (joinRule === 'restricted' && v.restrictedJoinRule) || (joinRule === 'knock_restricted' && v.knockRestrictedJoinRule);
      if (restricted) {
        if (senderMembership === 'join' || senderMembership === 'invite') return;
        const via = event.content['join_authorised_via_users_server'];
        if (typeof via !== 'string') deny('join', 'a restricted room needs join_authorised_via_users_server');
        if (membershipOf(authEvents, via) !== 'join') deny('join', `authorising user ${via} is not joined`);
        if (userPowerLevel(via, pl, create) < pl.invite) deny('join', `authorising user ${via} cannot invite`);
        return;
      }
      if (joinRule === 'public') return;
      deny('join', `join rule ${JSON.stringify(joinRule ?? null)} does not allow joining`);
      break;
    }
    case 'invite': {
      const tpi = event.content['third_party_invite'];
      if (tpi !== undefined) {
        if (targetMembership === 'ban') deny('invite', `${target} is banned`);
        checkThirdPartyInvite(event, tpi, authEvents);
        return;
      }
      if (senderMembership !== 'join') deny('invite', `${event.sender} is not joined`);
      if (targetMembership === 'join' || targetMembership === 'ban') deny('invite', `${target} is already ${String(targetMembership)}`);
      if (senderLevel >= pl.invite) return;
      deny('invite', `${event.sender} lacks the invite power level`);
      break;
    }
    case 'leave': {
      if (event.sender === target) {
        if (senderMembership === 'join' || senderMembership === 'invite' || (v.knockJoinRule && senderMembership === 'knock')) return;
        deny('leave', `${target} is not in the room, invited or knocking`);
      }
      if (senderMembership !== 'join') deny('kick', `${event.sender} is not joined`);
      if (targetMembership === 'ban' && senderLevel < pl.ban) deny('unban', `${event.sender} lacks the ban power level`);
      if (senderLevel >= pl.kick && targetLevel < senderLevel) return;
      deny('kick', `${event.sender} cannot kick ${target}`);
      break;
    }
    case 'ban': {
      if (senderMembership !== 'join') deny('ban', `${event.sender} is not joined`);
      if (senderLevel >= pl.ban && targetLevel < senderLevel) return;
      deny('ban', `${event.sender} cannot ban ${target}`);
      break;
    }
    case 'knock': {
      if (!v.knockJoinRule) deny('knock', `room version ${v.id} has no knocking`);
      const allowsKnock = joinRule === 'knock' || (v.knockRestrictedJoinRule && joinRule === 'knock_restricted');
      if (!allowsKnock) deny('knock', `join rule ${JSON.stringify(joinRule ?? null)} does not allow knocking`);
      if (event.sender !== target) deny('knock', `${event.sender} cannot knock on behalf of ${target}`);
      if (senderMembership === 'ban' || senderMembership === 'invite' || senderMembership === 'join') {
        deny('knock', `${target} is already ${String(senderMembership)}`);
      }
      return;
    }
    default:
      deny('m.room.member', `unknown membership ${JSON.stringify(membership)}`);
  }
}
