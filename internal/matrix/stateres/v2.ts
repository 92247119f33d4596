/**
 * State resolution v2 (room versions 2-11) and v2.1 (room version 12, MSC4297).
 *
 * 1. Separate the state sets into the unconflicted state map and the conflicted state set.
 * 2. Full conflicted set = conflicted events ∪ auth difference (∪ conflicted state subgraph in
 *    v2.1).
 * 3. Replay its power events (and the events they depend on within it) in reverse topological
 *    power order on the unconflicted state (v2) or on an empty state (v2.1).
 * 4. Replay the rest in mainline order of the power levels that step 3 resolved.
 * 5. Put the unconflicted state back on top.
 */
import type { EventProvider, StateKeyTuple, StateMap } from '../types.js';
import { stateTuple } from '../types.js';
import { authDifference } from './authdifference.js';
import { AuthGraph } from './authgraph.js';
import type { IterativeAuthOptions } from './iterative.js';
import { iterativeAuthChecks } from './iterative.js';
import { mainlineOrder } from './mainline.js';
import { selectPowerEvents } from './powerevents.js';
import { conflictedEventIds, separate } from './separate.js';
import { conflictedStateSubgraph } from './subgraph.js';
import { reverseTopologicalPowerOrder } from './topological.js';

const POWER_LEVELS_KEY = stateTuple('m.room.power_levels', '');

export interface ResolveV2Options extends IterativeAuthOptions {
  /** v2.1: start the power replay from empty state and add the conflicted state subgraph. */
  readonly v21: boolean;
}

export function resolveV2(
  stateSets: readonly StateMap[],
  events: EventProvider,
  options: ResolveV2Options,
): Map<StateKeyTuple, string> {
  const separated = separate(stateSets);
  if (separated.conflicted.size === 0) return separated.unconflicted;

  const graph = new AuthGraph(events);
  const conflicted = conflictedEventIds(separated);
  for (const id of conflicted) graph.requireIndex(id, 'conflicted state event');

  const fullConflictedSet = new Set(conflicted);
  for (const id of authDifference(graph, stateSets, separated)) fullConflictedSet.add(id);
  if (options.v21) {
    for (const id of conflictedStateSubgraph(graph, conflicted)) fullConflictedSet.add(id);
  }

  const powerEvents = selectPowerEvents(graph, fullConflictedSet);
  const powerOrder = reverseTopologicalPowerOrder(graph, powerEvents);
  const base: StateMap = options.v21 ? new Map() : separated.unconflicted;
  const partial = iterativeAuthChecks(graph, powerOrder, base, options);

  const others: string[] = [];
  for (const id of fullConflictedSet) if (!powerEvents.has(id)) others.push(id);
  const otherOrder = mainlineOrder(graph, others, partial.get(POWER_LEVELS_KEY));
  const resolved = iterativeAuthChecks(graph, otherOrder, partial, options);

  for (const [key, id] of separated.unconflicted) resolved.set(key, id);
  return resolved;
}
