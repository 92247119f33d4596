/**
 * The auth difference of state resolution v2: the events in some but not all of the state sets'
 * full auth chains, where a state set's full auth chain is its events and all their auth chains
 * (as Synapse computes it; the state events themselves count as part of the chain).
 *
 * Work is proportional to the room's auth DAG once, not once per state set: the events every
 * set shares (the unconflicted state) have chains common to all sets, so their closure `U` is
 * walked once and each set's walk from its own conflicted events stops at `U`. Then
 * difference = (∪ Cᵢ ∪ U) − (∩ Cᵢ ∪ U) = ∪ Cᵢ − ∩ Cᵢ − U, with Cᵢ walked outside U only.
 */
import type { StateMap } from '../types.js';
import type { AuthGraph } from './authgraph.js';
import { BitSet } from './bitset.js';
import type { SeparatedState } from './separate.js';
import { separate } from './separate.js';

export function authDifference(
  graph: AuthGraph,
  stateSets: readonly StateMap[],
  separated: SeparatedState = separate(stateSets),
): Set<string> {
  const out = new Set<string>();
  if (stateSets.length < 2 || separated.conflicted.size === 0) return out;

  const common = new BitSet(graph.size);
  graph.markAuthClosure(idsToIndices(graph, separated.unconflicted.values()), common);

  // How many state sets reach each event outside the common closure.
  const reachedBy = new Map<number, number>();
  for (const stateSet of stateSets) {
    const starts: number[] = [];
    for (const key of separated.conflicted.keys()) {
      const id = stateSet.get(key);
      if (id !== undefined) starts.push(graph.indexOf(id));
    }
    const visited: number[] = [];
    graph.markAuthClosure(starts, new BitSet(graph.size), common, visited);
    for (const i of visited) reachedBy.set(i, (reachedBy.get(i) ?? 0) + 1);
  }
  for (const [i, count] of reachedBy) {
    if (count < stateSets.length) out.add(graph.eventId(i));
  }
  return out;
}

function* idsToIndices(graph: AuthGraph, ids: Iterable<string>): Generator<number> {
  for (const id of ids) yield graph.indexOf(id);
}
