/**
 * /messages and /context pagination tokens: a place in a room's topological order,
 * `t<depth>_<position>`, just after the event at (depth, position) (positions of backfilled
 * history are negative). /sync's stream tokens (`s...`) are accepted where these are, and placed
 * in the room's order (SyncStore.topoKeyAtStreamPos), so that a timeline's `prev_batch` pages
 * back from where the timeline starts.
 */
import type { TopoKey } from '../storage/topology.js';
import { parseToken } from './token.js';

export function formatTopoToken(k: TopoKey): string {
  return `t${k.depth}_${k.pos}`;
}

/** The place a token names; undefined when it is not a topological token. */
export function parseTopoToken(token: string): TopoKey | undefined {
  const m = /^t(-?\d{1,16})_(-?\d{1,16})$/.exec(token);
  if (!m) return undefined;
  const depth = Number(m[1]);
  const pos = Number(m[2]);
  return Number.isSafeInteger(depth) && Number.isSafeInteger(pos) ? { depth, pos } : undefined;
}

/**
 * The stream position a /sync or /messages token names, for the routes that page in stream
 * order (/relations, /threads): a topological token's position is that of the event it sits
 * after (negative in backfilled history).
 */
export function streamPosOfToken(token: string): number | undefined {
  return parseTopoToken(token)?.pos ?? parseToken(token)?.pdu;
}
