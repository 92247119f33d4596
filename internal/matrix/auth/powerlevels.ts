/**
 * Power levels as the auth rules read them: the defaults the spec gives when the room has no
 * m.room.power_levels event (or leaves a key out), string values accepted before room
 * version 10, and room version 12's creators who outrank every number (MSC4289).
 * Parsed once per power-levels event (a WeakMap), because auth checks in state resolution
 * read the same event thousands of times.
 */
import type { EventLike, JsonObject, JsonValue } from '../types.js';

export interface PowerLevels {
  usersDefault: number;
  eventsDefault: number;
  stateDefault: number;
  ban: number;
  kick: number;
  redact: number;
  invite: number;
  users: ReadonlyMap<string, number>;
  events: ReadonlyMap<string, number>;
  notifications: ReadonlyMap<string, number>;
  /** Whether a power levels event exists (state_default is 50 with one, 0 without). */
  fromEvent: boolean;
}

/** v12 creators: above any power level a power levels event can give. */
export const CREATOR_POWER_LEVEL = Number.POSITIVE_INFINITY;

/** A level value: integers; before v10 also integer strings such as "50". */
export function parseLevel(value: JsonValue | undefined, allowStrings: boolean): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? value : undefined;
  if (allowStrings && typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return undefined;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function levelMap(v: JsonValue | undefined, allowStrings: boolean): Map<string, number> {
  const out = new Map<string, number>();
  if (!isObject(v)) return out;
  for (const [k, raw] of Object.entries(v)) {
    const n = parseLevel(raw, allowStrings);
    if (n !== undefined) out.set(k, n);
  }
  return out;
}

const noEventDefaults: PowerLevels = {
  usersDefault: 0,
  eventsDefault: 0,
  stateDefault: 0,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: 0,
  users: new Map(),
  events: new Map(),
  notifications: new Map([['room', 50]]),
  fromEvent: false,
};

const parsed = new WeakMap<EventLike, PowerLevels>();

/** The creator before room version 12 gets 100 when no power levels event exists. */
export function creatorOf(create: EventLike | undefined): string | undefined {
  if (!create) return undefined;
  if (create.roomVersion.v11EventShape) return create.sender;
  const c = create.content['creator'];
  return typeof c === 'string' ? c : undefined;
}

/** Room version 12: the create event's sender and its `additional_creators`. */
export function isPrivilegedCreator(userId: string, create: EventLike | undefined): boolean {
  if (!create || !create.roomVersion.privilegedCreators) return false;
  if (create.sender === userId) return true;
  const extra = create.content['additional_creators'];
  return Array.isArray(extra) && extra.includes(userId);
}

export function powerLevelsOf(powerLevels: EventLike | undefined, _create?: EventLike | undefined): PowerLevels {
  if (!powerLevels) return noEventDefaults;
  const cached = parsed.get(powerLevels);
  if (cached) return cached;
  const c = powerLevels.content;
  const strings = !powerLevels.roomVersion.enforceIntegerPowerLevels;
  const level = (key: string, fallback: number): number => parseLevel(c[key], strings) ?? fallback;
  const notifications = levelMap(c['notifications'], strings);
  if (!notifications.has('room')) notifications.set('room', 50);
  const pl: PowerLevels = {
    usersDefault: level('users_default', 0),
    eventsDefault: level('events_default', 0),
    stateDefault: level('state_default', 50),
    ban: level('ban', 50),
    kick: level('kick', 50),
    redact: level('redact', 50),
    invite: level('invite', 0),
    users: levelMap(c['users'], strings),
    events: levelMap(c['events'], strings),
    notifications,
    fromEvent: true,
  };
  parsed.set(powerLevels, pl);
  return pl;
}

/** A user's power level: v12 creators are infinite; without a power levels event the creator has 100. */
export function userPowerLevel(userId: string, powerLevels: PowerLevels, create: EventLike | undefined): number {
  if (isPrivilegedCreator(userId, create)) return CREATOR_POWER_LEVEL;
  if (!powerLevels.fromEvent) return creatorOf(create) === userId && !create?.roomVersion.privilegedCreators ? 100 : 0;
  return powerLevels.users.get(userId) ?? powerLevels.usersDefault;
}

/** The level needed to send an event of this type (state or not). */
export function requiredEventLevel(type: string, isState: boolean, powerLevels: PowerLevels): number {
  return powerLevels.events.get(type) ?? (isState ? powerLevels.stateDefault : powerLevels.eventsDefault);
}
