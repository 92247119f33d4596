import { AuthError } from '../types.js';

/**
 * Rejects the event: `rule` names the rule (group) that failed, as the spec numbers it where
 * that helps ("m.room.member join", "power levels"), `why` the condition that failed. Messages
 * are only built on failure, so the hot path allocates nothing for them.
 */
export function deny(rule: string, why: string): never {
  throw new AuthError(`${rule}: ${why}`);
}
