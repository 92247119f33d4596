/**
 * Event authorisation for room versions 1-12: `checkEventAuth`, the auth events selection, and
 * the readers of room state (power levels, creators, memberships) that other parts share with
 * the rules so that they never disagree with them.
 */
export { checkEventAuth } from './eventauth.js';
export { checkEventAuthAgainstAuthEvents } from './receipt.js';
export type { AuthEventsCheckOptions } from './receipt.js';
export { authEventTypesNeeded, authEventsFromList, checkAuthEventsList } from './selection.js';
export type { AuthEventsListOptions, Selectable, StateKeyPair } from './selection.js';
export {
  CREATOR_POWER_LEVEL,
  creatorOf,
  isPrivilegedCreator,
  levelEncodingOf,
  notificationLevel,
  parseLevel,
  powerLevelsOf,
  requiredEventLevel,
  userPowerLevel,
} from './powerlevels.js';
export type { LevelEncoding, PowerLevels } from './powerlevels.js';
export { createInfoOf } from './create.js';
export type { CreateInfo } from './create.js';
export { joinRuleOf, membershipOf } from './membership.js';
export { redactionTakesEffect } from './redaction.js';
export { thirdPartyInvitePublicKeys } from './thirdpartyinvite.js';
