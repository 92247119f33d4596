/**
 * The m.room.power_levels rule (rule 10 in v1-v5, 9 in v6-v11, 10 in v12):
 *
 * 1. The new content must be well formed: `users` an object of user IDs to levels; every
 *    threshold a level and `events`/`notifications` objects of levels; from v12 no creator
 *    listed in `users` (MSC4289). A "level" is what the room version accepts (powerlevels.ts):
 *    integers only from v10, integer strings before, truncated floats before v6; NaN and
 *    ±Infinity never. The spec states the threshold and map checks from v10 on and only the
 *    `users` check before; we apply them in every version, as gomatrixserverlib does (it cannot
 *    parse such an event and rejects it), because a threshold that is not a number has no
 *    meaning: Synapse accepts the event but then fails every later check that reads the value.
 * 2. With no previous power levels event, allow.
 * 3. Otherwise every change must stay within the sender's reach: a threshold, or an `events`
 *    (from v6 also `notifications`) entry, may change only when its old and new values are both
 *    at most the sender's level; another user's entry may be changed or removed only when it
 *    was below the sender's level; no entry may be set above the sender's level.
 *
 * Values are compared as parsed levels, so "50" and 50 are the same value before v10.
 */
import { isValidUserId } from '../identifiers.js';
import type { EventLike, JsonObject } from '../types.js';
import { deny } from './deny.js';
import { isJsonObject } from './json.js';
import { levelEncodingOf, parseLevel, powerLevelsOf, type LevelEncoding } from './powerlevels.js';
import type { CreateInfo } from './create.js';

const RULE = 'm.room.power_levels';
const THRESHOLDS = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;

function checkWellFormed(event: EventLike, create: CreateInfo, enc: LevelEncoding): void {
  const c = event.content;
  for (const key of THRESHOLDS) {
    const v = c[key];
    if (v !== undefined && parseLevel(v, enc) === undefined) deny(RULE, `${key} is not ${describe(enc)}: ${JSON.stringify(v)}`);
  }
  for (const key of ['events', 'notifications'] as const) {
    const m = c[key];
    if (m === undefined) continue;
    if (!isJsonObject(m)) deny(RULE, `${key} must be an object`);
    for (const k in m) {
      if (parseLevel(m[k], enc) === undefined) deny(RULE, `${key}.${k} is not ${describe(enc)}: ${JSON.stringify(m[k])}`);
    }
  }
  const users = c['users'];
  if (users === undefined) return;
  if (!isJsonObject(users)) deny(RULE, 'users must be an object');
  for (const userId in users) {
    if (!isValidUserId(userId)) deny(RULE, `users holds ${JSON.stringify(userId)}, which is not a user ID`);
    if (parseLevel(users[userId], enc) === undefined) deny(RULE, `users.${userId} is not ${describe(enc)}: ${JSON.stringify(users[userId])}`);
    if (create.privilegedCreators.has(userId)) deny(RULE, `${userId} is a room creator and may not be listed in users`);
  }
}

function describe(enc: LevelEncoding): string {
  return enc.strings ? 'an integer (or a string holding one)' : 'an integer';
}

/** Entries of a level map as parsed levels; entries that are not levels are left out. */
function levelEntries(content: JsonObject, key: string, enc: LevelEncoding): Map<string, number> {
  const out = new Map<string, number>();
  const m = content[key];
  if (!isJsonObject(m)) return out;
  for (const k in m) {
    const n = parseLevel(m[k], enc);
    if (n !== undefined) out.set(k, n);
  }
  return out;
}

/**
 * Checks an m.room.power_levels event. `previous` is the power levels event it replaces (the
 * auth state's), `senderLevel` the sender's level under `previous`.
 */
export function checkPowerLevelsEvent(event: EventLike, previous: EventLike | undefined, create: CreateInfo, senderLevel: number): void {
  const enc = levelEncodingOf(event.roomVersion);
  checkWellFormed(event, create, enc);
  if (!previous) return;

  const sender = event.sender;
  const oldC = previous.content;
  const newC = event.content;

  for (const key of THRESHOLDS) {
    const before = parseLevel(oldC[key], enc);
    const after = parseLevel(newC[key], enc);
    if (before === after) continue;
    if (before !== undefined && before > senderLevel) deny(RULE, `${sender} (level ${senderLevel}) cannot change ${key} from ${before}`);
    if (after !== undefined && after > senderLevel) deny(RULE, `${sender} (level ${senderLevel}) cannot set ${key} to ${after}`);
  }

  // users and events maps come from the parse cache: the new event is about to become the
  // power levels event that later checks read.
  const oldLevels = powerLevelsOf(previous);
  const newLevels = powerLevelsOf(event);
  checkMapChange('events', oldLevels.events, newLevels.events, sender, senderLevel);
  if (event.roomVersion.limitNotificationsPowerLevels) {
    // Not the parsed maps: those hold the default for `room`, and adding it explicitly is a change.
    checkMapChange('notifications', levelEntries(oldC, 'notifications', enc), levelEntries(newC, 'notifications', enc), sender, senderLevel);
  }

  const beforeUsers = oldLevels.users;
  const afterUsers = newLevels.users;
  for (const [userId, old] of beforeUsers) {
    if (userId === sender || afterUsers.get(userId) === old) continue;
    if (old >= senderLevel) deny(RULE, `${sender} (level ${senderLevel}) cannot change the level of ${userId}, who has ${old}`);
  }
  for (const [userId, next] of afterUsers) {
    if (beforeUsers.get(userId) === next) continue;
    if (next > senderLevel) deny(RULE, `${sender} (level ${senderLevel}) cannot give ${userId} level ${next}`);
  }
}

/** Rules for `events` and `notifications` entries: old and new values within the sender's level. */
function checkMapChange(
  mapKey: string,
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
  sender: string,
  senderLevel: number,
): void {
  for (const [k, old] of before) {
    if (after.get(k) === old) continue;
    if (old > senderLevel) deny(RULE, `${sender} (level ${senderLevel}) cannot change ${mapKey}.${k} from ${old}`);
  }
  for (const [k, next] of after) {
    if (before.get(k) === next) continue;
    if (next > senderLevel) deny(RULE, `${sender} (level ${senderLevel}) cannot set ${mapKey}.${k} to ${next}`);
  }
}
