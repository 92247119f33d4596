/**
 * The reverse topological power ordering: the lexicographically smallest topological order of
 * the auth DAG restricted to the given events, earliest first, by Kahn's algorithm with a heap.
 * Among the events whose auth events (within the set) have all been emitted, the next is the one
 * whose sender has the greatest power level (from its own auth events), then the smallest
 * origin_server_ts, then the smallest event_id.
 */
import type { AuthGraph } from './authgraph.js';
import { StateResolutionError } from './authgraph.js';
import { compareCodePoints } from './compare.js';
import { IndexHeap } from './heap.js';
import { senderPowerLevel } from './powerlevel.js';

export function reverseTopologicalPowerOrder(graph: AuthGraph, eventIds: Iterable<string>): string[] {
  // Local positions 0..n-1 for the events being sorted.
  const nodes: number[] = [];
  const local = new Map<number, number>();
  for (const id of eventIds) {
    const i = graph.requireIndex(id, 'event to order');
    if (local.has(i)) continue;
    local.set(i, nodes.length);
    nodes.push(i);
  }
  const n = nodes.length;
  const power = new Float64Array(n);
  const ts = new Float64Array(n);
  const ids: string[] = new Array<string>(n);
  const pending = new Uint32Array(n);
  const dependents: number[][] = Array.from({ length: n }, () => []);
  for (let k = 0; k < n; k++) {
    const i = nodes[k]!;
    const event = graph.event(i);
    power[k] = senderPowerLevel(graph, i);
    ts[k] = event.originServerTs;
    ids[k] = event.eventId;
    for (const a of graph.authOf(i)) {
      const ak = local.get(a);
      if (ak === undefined) continue;
      pending[k]!++;
      dependents[ak]!.push(k);
    }
  }

  const heap = new IndexHeap((a, b) => {
    if (power[a] !== power[b]) return power[a]! > power[b]!;
    if (ts[a] !== ts[b]) return ts[a]! < ts[b]!;
    return compareCodePoints(ids[a]!, ids[b]!) < 0;
  });
  for (let k = 0; k < n; k++) if (pending[k] === 0) heap.push(k);
  const out: string[] = [];
  for (let k = heap.pop(); k !== undefined; k = heap.pop()) {
    out.push(ids[k]!);
    for (const d of dependents[k]!) {
      if (--pending[d]! === 0) heap.push(d);
    }
  }
  if (out.length !== n) {
    throw new StateResolutionError(`auth events form a cycle among ${n - out.length} of ${n} events to order`);
  }
  return out;
}
