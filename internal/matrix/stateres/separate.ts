/**
 * Splitting the input state sets into the unconflicted state map and the conflicted state set.
 */
import type { StateKeyTuple, StateMap } from '../types.js';

export interface SeparatedState {
  /** Keys present in every state set with the same event. */
  readonly unconflicted: Map<StateKeyTuple, string>;
  /** Every other key, with the distinct events the state sets hold for it (in input order). */
  readonly conflicted: Map<StateKeyTuple, string[]>;
}

/**
 * State resolution v2 / v2.1: a key is unconflicted only when every state set has it, with the
 * same event; a key missing from some set is conflicted (its events are those present).
 */
export function separate(stateSets: readonly StateMap[]): SeparatedState {
  const unconflicted = new Map<StateKeyTuple, string>();
  const conflicted = new Map<StateKeyTuple, string[]>();
  const [first, ...rest] = stateSets;
  if (first === undefined) return { unconflicted, conflicted };
  for (const [key, eventId] of first) {
    if (rest.every((s) => s.get(key) === eventId)) unconflicted.set(key, eventId);
    else conflicted.set(key, eventsFor(key, stateSets));
  }
  for (const s of rest) {
    for (const key of s.keys()) {
      if (!first.has(key) && !conflicted.has(key)) conflicted.set(key, eventsFor(key, stateSets));
    }
  }
  return { unconflicted, conflicted };
}

/**
 * State resolution v1: a key is conflicted only when two state sets hold different events for
 * it; a key that some sets lack is unconflicted (as Synapse and the v1 spec text do).
 */
export function separateV1(stateSets: readonly StateMap[]): SeparatedState {
  const unconflicted = new Map<StateKeyTuple, string>();
  const conflicted = new Map<StateKeyTuple, string[]>();
  for (const s of stateSets) {
    for (const [key, eventId] of s) {
      const seen = conflicted.get(key);
      if (seen !== undefined) {
        if (!seen.includes(eventId)) seen.push(eventId);
        continue;
      }
      const current = unconflicted.get(key);
      if (current === undefined) unconflicted.set(key, eventId);
      else if (current !== eventId) {
        unconflicted.delete(key);
        conflicted.set(key, [current, eventId]);
      }
    }
  }
  return { unconflicted, conflicted };
}

function eventsFor(key: StateKeyTuple, stateSets: readonly StateMap[]): string[] {
  const out: string[] = [];
  for (const s of stateSets) {
    const id = s.get(key);
    if (id !== undefined && !out.includes(id)) out.push(id);
  }
  return out;
}

/** Every event of the conflicted state set, each once. */
export function conflictedEventIds(separated: SeparatedState): Set<string> {
  const out = new Set<string>();
  for (const ids of separated.conflicted.values()) for (const id of ids) out.add(id);
  return out;
}
