/**
 * The mainline ordering of state resolution v2, for the conflicted events that are not power
 * events. The mainline of the resolved power levels event P₀ is P₀, the power levels event in
 * its auth events P₁, and so on. An event's mainline position is the index in that list of the
 * first event of its own power levels chain (the event itself excluded) that lies on it, or ∞.
 * Events sort by position descending (older power first), then origin_server_ts, then event_id.
 *
 * Positions are memoised per power levels event, so sorting many events that cite the same
 * power levels walks each power levels chain once.
 */
import type { AuthGraph } from './authgraph.js';
import { MISSING } from './authgraph.js';
import { compareCodePoints } from './compare.js';

export function mainlineOrder(
  graph: AuthGraph,
  eventIds: Iterable<string>,
  powerLevelsId: string | undefined,
): string[] {
  const ids = [...new Set(eventIds)];
  if (ids.length === 0) return [];
  const positionOfPower = mainlinePositions(graph, powerLevelsId);

  const keyed = ids.map((id) => {
    const i = graph.requireIndex(id, 'event to order');
    return {
      id,
      position: chainPosition(graph, graph.powerLevelsAuthOf(i), positionOfPower),
      ts: graph.event(i).originServerTs,
    };
  });
  keyed.sort((a, b) => {
    if (a.position !== b.position) return a.position > b.position ? -1 : 1;
    if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
    return compareCodePoints(a.id, b.id);
  });
  return keyed.map((k) => k.id);
}

/** Power levels event index -> mainline position, seeded with the mainline itself. */
function mainlinePositions(graph: AuthGraph, powerLevelsId: string | undefined): Map<number, number> {
  const positions = new Map<number, number>();
  let p = powerLevelsId === undefined ? MISSING : graph.indexOf(powerLevelsId);
  for (let position = 0; p !== MISSING && !positions.has(p); position++) {
    positions.set(p, position);
    p = graph.powerLevelsAuthOf(p);
  }
  return positions;
}

/**
 * The mainline position of a power levels chain starting at `start` (∞ when it never meets
 * the mainline). Every event walked gets the answer memoised, so each is walked once.
 */
function chainPosition(graph: AuthGraph, start: number, memo: Map<number, number>): number {
  const walked: number[] = [];
  const seen = new Set<number>();
  let p = start;
  let position = Number.POSITIVE_INFINITY;
  while (p !== MISSING) {
    const known = memo.get(p);
    if (known !== undefined) {
      position = known;
      break;
    }
    if (seen.has(p)) break; // a cycle never reaches the mainline
    seen.add(p);
    walked.push(p);
    p = graph.powerLevelsAuthOf(p);
  }
  for (const w of walked) memo.set(w, position);
  return position;
}
