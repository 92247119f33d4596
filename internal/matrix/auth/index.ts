/**
 * Event authorization for room versions 1-12: `checkEventAuth` and what goes with it.
 */
export { checkEventAuth } from './eventauth.js';
export { authEventTypesNeeded, authEventsFromList, checkAuthEventsList } from './selection.js';
export {
  CREATOR_POWER_LEVEL,
  creatorOf,
  isPrivilegedCreator,
  powerLevelsOf,
  requiredEventLevel,
  userPowerLevel,
  type PowerLevels,
} from './powerlevels.js';
