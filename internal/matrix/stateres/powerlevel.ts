/**
 * The sender's power level "when looking at their auth events", the first key of the reverse
 * topological power ordering. It reads the event's own auth events (its power levels and create
 * events), never the resolved state.
 *
 * Matches Synapse's `_get_power_level_for_sender`: with no power levels auth event, the room
 * creator has 100 and everyone else 0; in room version 12 (MSC4289) creators and
 * `additional_creators` rank above every number.
 */
import type { EventLike, JsonValue } from '../types.js';
import type { AuthGraph } from './authgraph.js';
import { MISSING } from './authgraph.js';

export const CREATOR_POWER_LEVEL = Number.POSITIVE_INFINITY;

export function senderPowerLevel(graph: AuthGraph, i: number): number {
  const event = graph.event(i);
  const createIndex = graph.createAuthOf(i);
  const create = createIndex === MISSING ? undefined : graph.event(createIndex);
  if (create !== undefined && event.roomVersion.privilegedCreators && isCreator(create, event.sender)) {
    return CREATOR_POWER_LEVEL;
  }
  const powerIndex = graph.powerLevelsAuthOf(i);
  if (powerIndex === MISSING) {
    return create !== undefined && creatorOf(create) === event.sender ? 100 : 0;
  }
  const content = graph.event(powerIndex).content;
  const users = content['users'];
  const own = isObject(users) ? users[event.sender] : undefined;
  return toLevel(own) ?? toLevel(content['users_default']) ?? 0;
}

/** The pre-v12 creator: `content.creator` before room version 11, the sender from then on. */
function creatorOf(create: EventLike): string | undefined {
  if (create.roomVersion.v11EventShape) return create.sender;
  const creator = create.content['creator'];
  return typeof creator === 'string' ? creator : undefined;
}

/** Room version 12: the create event's sender and its `additional_creators`. */
function isCreator(create: EventLike, userId: string): boolean {
  if (create.sender === userId) return true;
  const extra = create.content['additional_creators'];
  return Array.isArray(extra) && extra.includes(userId);
}

/** A power level value: integers, and before room version 10 integer strings ("50"). */
function toLevel(value: JsonValue | undefined): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : undefined;
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return undefined;
}

function isObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
