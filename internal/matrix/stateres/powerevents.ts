/**
 * Step 1 of state resolution v2: which events of the full conflicted set are replayed first.
 */
import type { EventLike } from '../types.js';
import type { AuthGraph } from './authgraph.js';
import { MISSING } from './authgraph.js';
import { BitSet } from './bitset.js';

/**
 * A power event may take away someone's ability to act: power levels, join rules, and kicks or
 * bans (a leave or ban whose sender is not its target). The create event counts too, as in
 * Synapse, so that it is always replayed first should it ever be conflicted.
 */
export function isPowerEvent(event: EventLike): boolean {
  if (event.stateKey === undefined) return false;
  switch (event.type) {
    case 'm.room.power_levels':
    case 'm.room.join_rules':
    case 'm.room.create':
      return event.stateKey === '';
    case 'm.room.member': {
      const membership = event.content['membership'];
      return (membership === 'leave' || membership === 'ban') && event.sender !== event.stateKey;
    }
    default:
      return false;
  }
}

/**
 * The power events of the full conflicted set together with the events of that set in their
 * auth chains. The walk follows auth edges only while they stay inside the full conflicted
 * set, as Synapse and Ruma do; it can differ from "auth chain ∩ set" only for an event that is
 * reachable solely through an event every state set agrees on.
 */
export function selectPowerEvents(graph: AuthGraph, fullConflictedSet: ReadonlySet<string>): Set<string> {
  const inSet = new BitSet(graph.size);
  const starts: number[] = [];
  for (const id of fullConflictedSet) {
    const i = graph.indexOf(id);
    if (i === MISSING) continue;
    inSet.add(i);
    if (isPowerEvent(graph.event(i))) starts.push(i);
  }
  const selected = new BitSet(graph.size);
  const out = new Set<string>();
  const stack: number[] = [];
  for (const s of starts) {
    if (selected.has(s)) continue;
    selected.add(s);
    stack.push(s);
    while (stack.length > 0) {
      const i = stack.pop()!;
      out.add(graph.eventId(i));
      for (const a of graph.authOf(i)) {
        if (!inSet.has(a) || selected.has(a)) continue;
        selected.add(a);
        stack.push(a);
      }
    }
  }
  return out;
}
