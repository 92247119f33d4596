/**
 * State resolution v1 (room version 1), as the spec describes it and Synapse implements it:
 * conflicted power levels first, then join rules, then memberships, each resolved by walking
 * its candidates from the shallowest (ascending depth, then descending sha1(event_id)) and
 * keeping the last one the auth rules accept on top of the state so far; every other conflicted
 * key takes the deepest candidate (then lowest sha1) that the auth rules accept, or the
 * shallowest when none is accepted.
 *
 * Known to reset state (the reason v2 exists); kept for room version 1 only.
 */
import { createHash } from 'node:crypto';
import type { AuthEventProvider, EventLike, EventProvider, StateKeyTuple, StateMap } from '../types.js';
import { MatrixProtocolError, splitStateTuple, stateTuple } from '../types.js';
import { StateResolutionError } from './authgraph.js';
import type { AuthCheck } from './iterative.js';
import { separateV1 } from './separate.js';

const POWER_LEVELS_KEY = stateTuple('m.room.power_levels', '');

export function resolveV1(
  stateSets: readonly StateMap[],
  events: EventProvider,
  check: AuthCheck,
): Map<StateKeyTuple, string> {
  if (stateSets.length === 1) return new Map(stateSets[0]);
  const { unconflicted, conflicted } = separateV1(stateSets);
  if (conflicted.size === 0) return unconflicted;

  const candidates = new Map<StateKeyTuple, EventLike[]>();
  for (const [key, ids] of conflicted) {
    candidates.set(
      key,
      ids.map((id) => {
        const e = events.get(id);
        if (e === undefined) throw new StateResolutionError(`conflicted state event ${id} was not provided to state resolution`);
        return e;
      }),
    );
  }

  const ordering = new V1Ordering();
  // R: the state the auth checks run against, grown phase by phase.
  const known = new Map<StateKeyTuple, string>(unconflicted);
  const resolved = new Map<StateKeyTuple, string>();
  const phase = (keys: StateKeyTuple[], pick: (c: EventLike[], r: AuthEventProvider) => EventLike): void => {
    // Keys of one phase are resolved against the same snapshot, then all applied together.
    const snapshot = stateProvider(new Map(known), events);
    for (const key of keys) resolved.set(key, pick(candidates.get(key)!, snapshot).eventId);
    for (const key of keys) known.set(key, resolved.get(key)!);
  };
  const keysOfType = (type: string): StateKeyTuple[] =>
    [...candidates.keys()].filter((k) => splitStateTuple(k)[0] === type);

  if (candidates.has(POWER_LEVELS_KEY)) {
    phase([POWER_LEVELS_KEY], (c, r) => resolveAuthEvents(c, r, ordering, check));
  }
  phase(keysOfType('m.room.join_rules'), (c, r) => resolveAuthEvents(c, r, ordering, check));
  phase(keysOfType('m.room.member'), (c, r) => resolveAuthEvents(c, r, ordering, check));
  phase(
    [...candidates.keys()].filter((k) => !resolved.has(k)),
    (c, r) => resolveNormalEvents(c, r, ordering, check),
  );

  for (const [key, id] of resolved) unconflicted.set(key, id);
  return unconflicted;
}

/** Shallowest first; each accepted candidate becomes the state the next is checked against. */
function resolveAuthEvents(candidates: EventLike[], state: AuthEventProvider, ordering: V1Ordering, check: AuthCheck): EventLike {
  const ordered = ordering.shallowestFirst(candidates);
  let current = ordered[0]!;
  for (const event of ordered.slice(1)) {
    const prev = current;
    const provider: AuthEventProvider = {
      get: (type, stateKey) => (type === prev.type && stateKey === prev.stateKey ? prev : state.get(type, stateKey)),
    };
    if (!allowed(event, provider, check)) return current;
    current = event;
  }
  return current;
}

/** Deepest accepted candidate; the shallowest when none is accepted. */
function resolveNormalEvents(candidates: EventLike[], state: AuthEventProvider, ordering: V1Ordering, check: AuthCheck): EventLike {
  const ordered = ordering.shallowestFirst(candidates).reverse();
  for (const event of ordered) if (allowed(event, state, check)) return event;
  return ordered[ordered.length - 1]!;
}

function allowed(event: EventLike, provider: AuthEventProvider, check: AuthCheck): boolean {
  try {
    check(event, provider);
    return true;
  } catch (err) {
    if (err instanceof MatrixProtocolError) return false;
    throw err;
  }
}

function stateProvider(state: ReadonlyMap<StateKeyTuple, string>, events: EventProvider): AuthEventProvider {
  return {
    get(type, stateKey) {
      const id = state.get(stateTuple(type, stateKey));
      return id === undefined ? undefined : events.get(id);
    },
  };
}

/** Ascending depth, then descending sha1(event_id) in hex; hashes computed once per event. */
class V1Ordering {
  private readonly sha1 = new Map<string, string>();

  shallowestFirst(events: readonly EventLike[]): EventLike[] {
    return [...events].sort((a, b) => {
      if (a.depth !== b.depth) return a.depth - b.depth;
      const ha = this.hash(a.eventId);
      const hb = this.hash(b.eventId);
      return ha === hb ? 0 : ha > hb ? -1 : 1;
    });
  }

  private hash(eventId: string): string {
    let h = this.sha1.get(eventId);
    if (h === undefined) {
      h = createHash('sha1').update(eventId, 'utf8').digest('hex');
      this.sha1.set(eventId, h);
    }
    return h;
  }
}
