import { AuthError } from '../types.js';

/** Rejects the event: `rule` names the rule group, `why` the failed condition. */
export function deny(rule: string, why: string): never {
  throw new AuthError(`${rule}: ${why}`);
}
