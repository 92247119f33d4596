/**
 * The m.room.power_levels rule: the new content must be well-formed (integers only from
 * room version 10; v12 creators may not be listed), and a sender may only change levels
 * that are, before and after, no higher than their own, and only other users' entries that
 * are below their own.
 */
import { isValidUserId } from '../identifiers.js';
import type { EventLike, JsonObject, JsonValue } from '../types.js';
import { deny } from './deny.js';
import { isPrivilegedCreator, parseLevel } from './powerlevels.js';

const levelKeys = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkWellFormed(event: EventLike, create: EventLike): void {
  const c = event.content;
  const strings = !event.roomVersion.enforceIntegerPowerLevels;
  const isLevel = (v: JsonValue | undefined): boolean => parseLevel(v, strings) !== undefined;
  if (!strings) {
    for (const k of levelKeys) if (c[k] !== undefined && !isLevel(c[k])) deny('m.room.power_levels', `${k} must be an integer`);
    for (const k of ['events', 'notifications'] as const) {
      const m = c[k];
      if (m === undefined) continue;
      if (!isObject(m) || !Object.values(m).every(isLevel)) deny('m.room.power_levels', `${k} must map to integers`);
    }
  }
  const users = c['users'];
  if (users !== undefined) {
    if (!isObject(users)) deny('m.room.power_levels', 'users must be an object');
    for (const [userId, level] of Object.entries(users)) {
      if (!isValidUserId(userId)) deny('m.room.power_levels', `users holds ${userId}, which is not a user ID`);
      if (!isLevel(level)) deny('m.room.power_levels', `users.${userId} must be an integer`);
      if (isPrivilegedCreator(userId, create)) deny('m.room.power_levels', `creator ${userId} may not be listed in users`);
    }
  }
}

function levelOf(content: JsonObject, key: string, strings: boolean): number | undefined {
  return parseLevel(content[key], strings);
}

function mapOf(content: JsonObject, key: string, strings: boolean): Map<string, number> {
  const out = new Map<string, number>();
  const m = content[key];
  if (isObject(m)) for (const [k, v] of Object.entries(m)) {
    const n = parseLevel(v, strings);
    if (n !== undefined) out.set(k, n);
  }
  return out;
}

export function checkPowerLevelsChange(event: EventLike, previous: EventLike | undefined, create: EventLike, senderLevel: number): void {
  checkWellFormed(event, create);
  if (!previous) return;
  const strings = !event.roomVersion.enforceIntegerPowerLevels;
  const oldC = previous.content;
  const newC = event.content;

  // A changed value must be within the sender's reach, before and after.
  const within = (what: string, before: number | undefined, after: number | undefined): void => {
    if (before === after) return;
    if (before !== undefined && before > senderLevel) deny('m.room.power_levels', `${what} is ${before}, above ${event.sender}'s ${senderLevel}`);
    if (after !== undefined && after > senderLevel) deny('m.room.power_levels', `${what} would be ${after}, above ${event.sender}'s ${senderLevel}`);
  };

  for (const k of levelKeys) within(k, levelOf(oldC, k, strings), levelOf(newC, k, strings));
  const mapsToCheck = event.roomVersion.limitNotificationsPowerLevels ? (['events', 'notifications'] as const) : (['events'] as const);
  for (const m of mapsToCheck) {
    const before = mapOf(oldC, m, strings);
    const after = mapOf(newC, m, strings);
    for (const key of new Set([...before.keys(), ...after.keys()])) within(`${m}.${key}`, before.get(key), after.get(key));
  }

  const beforeUsers = mapOf(oldC, 'users', strings);
  const afterUsers = mapOf(newC, 'users', strings);
  for (const userId of new Set([...beforeUsers.keys(), ...afterUsers.keys()])) {
    const before = beforeUsers.get(userId);
    const after = afterUsers.get(userId);
    if (before === after) continue;
    // Other users' entries that are changed or removed must be below the sender.
    if (before !== undefined && userId !== event.sender && before >= senderLevel) {
      deny('m.room.power_levels', `${event.sender} cannot change ${userId}'s level ${before}`);
    }
    if (after !== undefined && after > senderLevel) {
      deny('m.room.power_levels', `${event.sender} cannot give ${userId} level ${after}, above their own ${senderLevel}`);
    }
  }
}
