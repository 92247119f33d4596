/**
 * Power levels as the auth rules read them.
 *
 * - Defaults (server-server spec, "Definitions", and m.room.power_levels): with a power levels
 *   event, a missing key takes its default (users_default 0, events_default 0, state_default 50,
 *   ban/kick/redact 50, invite 0, notifications.room 50); with no event at all the same
 *   defaults hold and the creator has 100 (before room version 12). state_default stays 50 then
 *   too: the old "0 without an event" let any member seize the room by sending the first power
 *   levels event (MSC1304; m.room.power_levels schema, matrix-spec#1479).
 * - Value encodings: integers everywhere; before room version 10 also strings holding an
 *   integer (v1 "stringy power levels": optional sign, leading zeros, surrounding whitespace);
 *   before room version 6 (no canonical JSON yet) also floats, truncated ("floaty power levels").
 *   Values that fit none of these are ignored here (the key takes its default); the power levels
 *   rule decides which of them make the event itself invalid.
 * - Room version 12 (MSC4289): creators (the create event's sender and `additional_creators`)
 *   have an infinite level, CREATOR_POWER_LEVEL, above anything an event can grant.
 *
 * Parsed once per power levels event (a WeakMap keyed by the event object): state resolution
 * checks thousands of events against the same few power levels events.
 */
import type { EventLike, JsonValue } from '../types.js';
import type { RoomVersion } from '../roomversion.js';
import { createInfoOf } from './create.js';
import { isJsonObject } from './json.js';

/** The normalised content of an m.room.power_levels event, defaults applied. */
export interface PowerLevels {
  readonly usersDefault: number;
  readonly eventsDefault: number;
  readonly stateDefault: number;
  readonly ban: number;
  readonly kick: number;
  readonly redact: number;
  readonly invite: number;
  /** `users`: explicit levels by user ID. */
  readonly users: ReadonlyMap<string, number>;
  /** `events`: levels needed to send by event type. */
  readonly events: ReadonlyMap<string, number>;
  /** `notifications`, with `room` defaulting to 50. */
  readonly notifications: ReadonlyMap<string, number>;
  /** Whether a power levels event exists; without one the creator has 100 (before v12). */
  readonly fromEvent: boolean;
}

/** Room version 12 creators: above every level a power levels event can hold. */
export const CREATOR_POWER_LEVEL = Number.POSITIVE_INFINITY;

/** Which encodings of a level a room version accepts. */
export interface LevelEncoding {
  /** v1-v9: "50", " +050 ". */
  readonly strings: boolean;
  /** v1-v5: 50.7 (truncated to 50). */
  readonly floats: boolean;
}

const encodings = new WeakMap<RoomVersion, LevelEncoding>();

export function levelEncodingOf(v: RoomVersion): LevelEncoding {
  let e = encodings.get(v);
  if (!e) {
    e = { strings: !v.enforceIntegerPowerLevels, floats: !v.strictCanonicalJson };
    encodings.set(v, e);
  }
  return e;
}

/**
 * Whitespace allowed around a string level. Synapse (whose `int()` defined the behaviour) strips
 * Python's whitespace; JavaScript's `\s` differs only in corner cases (U+FEFF, U+001C-U+001F,
 * U+0085), so we accept the union of both.
 */
const STRING_LEVEL = /^[\s\u001c-\u001f\u0085]*([+-]?[0-9]+)[\s\u001c-\u001f\u0085]*$/;

/** A level value in the given encoding, or undefined when it is not one. */
export function parseLevel(value: JsonValue | undefined, encoding: LevelEncoding): number | undefined {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value;
    // Non-integers: floats truncate in v1-v5; NaN and ±Infinity are never levels.
    return encoding.floats && Number.isFinite(value) ? Math.trunc(value) : undefined;
  }
  if (typeof value === 'string' && encoding.strings) {
    const m = STRING_LEVEL.exec(value);
    if (!m) return undefined;
    const n = Number.parseInt(m[1] as string, 10);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function levelMap(value: JsonValue | undefined, encoding: LevelEncoding): Map<string, number> {
  const out = new Map<string, number>();
  if (!isJsonObject(value)) return out;
  for (const key in value) {
    const n = parseLevel(value[key], encoding);
    if (n !== undefined) out.set(key, n);
  }
  return out;
}

const NO_EVENT: PowerLevels = Object.freeze({
  usersDefault: 0,
  eventsDefault: 0,
  stateDefault: 50,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: 0,
  users: new Map<string, number>(),
  events: new Map<string, number>(),
  notifications: new Map([['room', 50]]),
  fromEvent: false,
});

const parsed = new WeakMap<EventLike, PowerLevels>();

/**
 * The power levels an m.room.power_levels event sets (undefined: the room has none). Cached per
 * event object; treat the result as immutable. `_create` is accepted for symmetry with
 * userPowerLevel: the levels themselves do not depend on it.
 */
export function powerLevelsOf(powerLevelsEvent: EventLike | undefined, _create?: EventLike): PowerLevels {
  if (!powerLevelsEvent) return NO_EVENT;
  const cached = parsed.get(powerLevelsEvent);
  if (cached) return cached;
  const c = powerLevelsEvent.content;
  const enc = levelEncodingOf(powerLevelsEvent.roomVersion);
  const notifications = levelMap(c['notifications'], enc);
  if (!notifications.has('room')) notifications.set('room', 50);
  const pl: PowerLevels = {
    usersDefault: parseLevel(c['users_default'], enc) ?? 0,
    eventsDefault: parseLevel(c['events_default'], enc) ?? 0,
    stateDefault: parseLevel(c['state_default'], enc) ?? 50,
    ban: parseLevel(c['ban'], enc) ?? 50,
    kick: parseLevel(c['kick'], enc) ?? 50,
    redact: parseLevel(c['redact'], enc) ?? 50,
    invite: parseLevel(c['invite'], enc) ?? 0,
    users: levelMap(c['users'], enc),
    events: levelMap(c['events'], enc),
    notifications,
    fromEvent: true,
  };
  parsed.set(powerLevelsEvent, pl);
  return pl;
}

/** Room version 12: whether `userId` is a creator (the create event's sender or an additional creator). */
export function isPrivilegedCreator(userId: string, create: EventLike | undefined): boolean {
  return create !== undefined && createInfoOf(create).privilegedCreators.has(userId);
}

/** The creator as the first-join rule and the "no power levels" default read it (undefined if none). */
export function creatorOf(create: EventLike | undefined): string | undefined {
  return create === undefined ? undefined : createInfoOf(create).creator;
}

/**
 * A user's power level. Room version 12 creators: CREATOR_POWER_LEVEL (Infinity). With no power
 * levels event: 100 for the creator, 0 for everyone else. Otherwise `users[userId]`, else
 * `users_default`. `create` may be undefined only where no creator can matter (callers outside
 * the auth rules that lack it); the auth rules always pass it.
 */
export function userPowerLevel(userId: string, powerLevels: PowerLevels, create: EventLike | undefined): number {
  if (create !== undefined) {
    const info = createInfoOf(create);
    if (info.privilegedCreators.has(userId)) return CREATOR_POWER_LEVEL;
    if (!powerLevels.fromEvent) return info.creator === userId ? 100 : 0;
  }
  return powerLevels.users.get(userId) ?? powerLevels.usersDefault;
}

/** The *required power level* of an event type: `events[type]`, else state_default or events_default. */
export function requiredEventLevel(type: string, isState: boolean, powerLevels: PowerLevels): number {
  return powerLevels.events.get(type) ?? (isState ? powerLevels.stateDefault : powerLevels.eventsDefault);
}

/** The level `notifications[key]` requires (`room`: 50 unless set). */
export function notificationLevel(key: string, powerLevels: PowerLevels): number | undefined {
  return powerLevels.notifications.get(key);
}
