/**
 * The sender's power level "when looking at their auth events", the first key of the reverse
 * topological power ordering. It reads the event's own auth events (its power levels and create
 * events), never the resolved state, and delegates the reading to the auth rules' own power
 * level functions so both agree: with no power levels auth event the pre-v12 creator has 100
 * and everyone else 0; in room version 12 (MSC4289) creators and `additional_creators` rank
 * above every number. This matches Synapse's `_get_power_level_for_sender`.
 */
import { powerLevelsOf, userPowerLevel } from '../auth/index.js';
import type { AuthGraph } from './authgraph.js';
import { MISSING } from './authgraph.js';

export { CREATOR_POWER_LEVEL } from '../auth/index.js';

export function senderPowerLevel(graph: AuthGraph, i: number): number {
  const event = graph.event(i);
  const createIndex = graph.createAuthOf(i);
  const create = createIndex === MISSING ? undefined : graph.event(createIndex);
  const powerIndex = graph.powerLevelsAuthOf(i);
  const powerLevels = powerLevelsOf(powerIndex === MISSING ? undefined : graph.event(powerIndex), create);
  return userPowerLevel(event.sender, powerLevels, create);
}
