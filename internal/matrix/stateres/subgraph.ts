/**
 * The conflicted state subgraph of state resolution v2.1 (room version 12, MSC4297): every
 * event on an auth-event path from one conflicted event to another, endpoints included. It puts
 * back into the full conflicted set the events between an old and a new conflicted event that
 * both sides have in their auth chains, so that they are replayed in order.
 *
 * An event is on such a path exactly when it is reachable from a conflicted event (it is in the
 * auth closure of the conflicted set) and a conflicted event is reachable from it. One
 * iterative post-order walk of that closure decides the second property bottom-up: an event
 * reaches a conflicted event when it is one, or when one of its auth events does.
 */
import type { AuthGraph } from './authgraph.js';
import { MISSING } from './authgraph.js';
import { BitSet } from './bitset.js';

export function conflictedStateSubgraph(graph: AuthGraph, conflictedIds: Iterable<string>): Set<string> {
  const conflicted = new BitSet(graph.size);
  const starts: number[] = [];
  for (const id of conflictedIds) {
    const i = graph.indexOf(id);
    if (i === MISSING || conflicted.has(i)) continue;
    conflicted.add(i);
    starts.push(i);
  }

  const visited = new BitSet(graph.size);
  const reaches = new BitSet(graph.size);
  const out = new Set<string>();
  const nodes: number[] = [];
  const nextEdge: number[] = [];
  for (const s of starts) {
    if (visited.has(s)) continue;
    visited.add(s);
    nodes.push(s);
    nextEdge.push(0);
    while (nodes.length > 0) {
      const top = nodes.length - 1;
      const node = nodes[top]!;
      const auth = graph.authOf(node);
      const edge = nextEdge[top]!;
      if (edge < auth.length) {
        nextEdge[top] = edge + 1;
        const child = auth[edge]!;
        if (!visited.has(child)) {
          visited.add(child);
          nodes.push(child);
          nextEdge.push(0);
        }
        continue;
      }
      nodes.pop();
      nextEdge.pop();
      if (conflicted.has(node) || auth.some((a) => reaches.has(a))) {
        reaches.add(node);
        out.add(graph.eventId(node));
      }
    }
  }
  return out;
}
