/**
 * The iterative auth checks of state resolution v2: replay events in order on top of a state,
 * keeping each state event that the auth rules allow.
 *
 * For each event the auth rules look up (type, state_key) pairs through a provider that reads
 * the state built so far and, for pairs not in it, the event's own auth events. Rejected auth
 * events are never used (spec: "Rejected auth events are deliberately excluded"). The events
 * being replayed are re-checked even if they were once rejected, as the spec says; Synapse
 * instead keeps them out (its admitted deviation, synapse#13797).
 *
 * The provider is built lazily: it resolves only the pairs the auth rules ask for, so each
 * check costs a handful of map lookups whatever the size of the state.
 */
import type { AuthEventProvider, EventLike, StateKeyTuple, StateMap } from '../types.js';
import { MatrixProtocolError, stateTuple } from '../types.js';
import type { AuthGraph } from './authgraph.js';
import { MISSING } from './authgraph.js';

/** The auth rules: throws (an AuthError) when the event is not allowed. */
export type AuthCheck = (event: EventLike, authEvents: AuthEventProvider) => void;

export interface IterativeAuthOptions {
  readonly check: AuthCheck;
  /** Whether an event was rejected on receipt; rejected events are not used as auth events. */
  readonly isRejected?: (eventId: string) => boolean;
}

export function iterativeAuthChecks(
  graph: AuthGraph,
  eventIds: readonly string[],
  baseState: StateMap,
  options: IterativeAuthOptions,
): Map<StateKeyTuple, string> {
  const state = new Map(baseState);
  const isRejected = options.isRejected ?? (() => false);
  const usable = (i: number): EventLike | undefined => {
    if (i === MISSING) return undefined;
    const e = graph.event(i);
    return isRejected(e.eventId) ? undefined : e;
  };

  for (const id of eventIds) {
    const i = graph.requireIndex(id, 'event to replay');
    const event = graph.event(i);
    if (event.stateKey === undefined) continue;
    const authIndices = graph.authOf(i);
    const provider: AuthEventProvider = {
      get(type, stateKey) {
        const fromState = state.get(stateTuple(type, stateKey));
        if (fromState !== undefined) {
          const e = usable(graph.indexOf(fromState));
          if (e !== undefined) return e;
        }
        // The last usable match wins, as when the auth events are read into a map.
        let found: EventLike | undefined;
        for (const a of authIndices) {
          const e = graph.event(a);
          if (e.type === type && e.stateKey === stateKey) found = usable(a) ?? found;
        }
        return found;
      },
    };
    try {
      options.check(event, provider);
    } catch (err) {
      if (err instanceof MatrixProtocolError) continue; // not allowed: leave the state as it is
      throw err;
    }
    state.set(stateTuple(event.type, event.stateKey), event.eventId);
  }
  return state;
}
