/**
 * Matrix state resolution: given the states after each prev event, the state before an event.
 * Pure and synchronous; the caller preloads every event of the state sets and their auth chains.
 *
 * - v1 (room version 1): v1.ts
 * - v2 (room versions 2-11) and v2.1 (room version 12, MSC4297): v2.ts, built from the steps
 *   exported below so that each can be tested (and reused) on its own.
 */
import { checkEventAuth } from '../auth/index.js';
import type { RoomVersion } from '../roomversion.js';
import type { EventProvider, StateKeyTuple, StateMap } from '../types.js';
import type { AuthCheck } from './iterative.js';
import { resolveV1 } from './v1.js';
import { resolveV2 } from './v2.js';

export { AuthGraph, MISSING, StateResolutionError, authEventIdsOf } from './authgraph.js';
export { authDifference } from './authdifference.js';
export { compareCodePoints } from './compare.js';
export type { AuthCheck, IterativeAuthOptions } from './iterative.js';
export { iterativeAuthChecks } from './iterative.js';
export { mainlineOrder } from './mainline.js';
export { isPowerEvent, selectPowerEvents } from './powerevents.js';
export { CREATOR_POWER_LEVEL, senderPowerLevel } from './powerlevel.js';
export type { SeparatedState } from './separate.js';
export { conflictedEventIds, separate, separateV1 } from './separate.js';
export { conflictedStateSubgraph } from './subgraph.js';
export { reverseTopologicalPowerOrder } from './topological.js';
export { resolveV1 } from './v1.js';
export { resolveV2 } from './v2.js';

export interface ResolveStateOptions {
  /**
   * Whether an event was rejected when it was received. Rejected events are not used as auth
   * events during the iterative auth checks (v2, v2.1). Default: none is.
   */
  readonly isRejected?: (eventId: string) => boolean;
  /** The auth rules to replay events with; default `checkEventAuth`. */
  readonly checkAuth?: AuthCheck;
}

/**
 * Resolve state sets for a room version (dispatches on roomVersion.stateResolution). `events`
 * must return every event referenced by the state sets and their full auth chains (the caller
 * preloads them). Pure and synchronous.
 *
 * Throws StateResolutionError when a conflicted state event is missing from `events`, or when
 * the auth events form a cycle.
 */
export function resolveState(
  roomVersion: RoomVersion,
  stateSets: readonly StateMap[],
  events: EventProvider,
  options: ResolveStateOptions = {},
): Map<StateKeyTuple, string> {
  if (stateSets.length === 0) return new Map();
  const check = options.checkAuth ?? checkEventAuth;
  switch (roomVersion.stateResolution) {
    case 'v1':
      return resolveV1(stateSets, events, check);
    case 'v2':
    case 'v2.1':
      return resolveV2(stateSets, events, {
        v21: roomVersion.stateResolution === 'v2.1',
        check,
        ...(options.isRejected !== undefined ? { isRejected: options.isRejected } : {}),
      });
  }
}
