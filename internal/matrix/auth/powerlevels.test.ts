import { describe, expect, it } from 'vitest';
import type { JsonObject, JsonValue } from '../types.js';
import { CREATOR_POWER_LEVEL, levelEncodingOf, parseLevel, powerLevelsOf, requiredEventLevel, userPowerLevel } from './powerlevels.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, TestRoom, makeEvent, mustVersion } from './testing.js';

function plEvent(v: string, content: JsonObject) {
  return makeEvent({ roomId: '!r:a.test', type: 'm.room.power_levels', stateKey: '', sender: ALICE, content, roomVersion: mustVersion(v) });
}

describe('parseLevel per room version', () => {
  // [value, v1-v5, v6-v9, v10+]
  const table: Array<[JsonValue, number | undefined, number | undefined, number | undefined]> = [
    [50, 50, 50, 50],
    [-20, -20, -20, -20],
    [0, 0, 0, 0],
    [2 ** 53 - 1, 2 ** 53 - 1, 2 ** 53 - 1, 2 ** 53 - 1],
    ['50', 50, 50, undefined],
    ['+050', 50, 50, undefined],
    ['-10', -10, -10, undefined],
    [' 100 ', 100, 100, undefined],
    ['\t7\n', 7, 7, undefined],
    ['00100', 100, 100, undefined],
    ['', undefined, undefined, undefined],
    [' ', undefined, undefined, undefined],
    ['1.5', undefined, undefined, undefined],
    ['1e3', undefined, undefined, undefined],
    ['0x10', undefined, undefined, undefined],
    ['+-1', undefined, undefined, undefined],
    ['5 0', undefined, undefined, undefined],
    ['abc', undefined, undefined, undefined],
    ['١٠٠', undefined, undefined, undefined], // Arabic-Indic digits are not base 10 ASCII digits
    [50.57, 50, undefined, undefined],
    [-3.9, -3, undefined, undefined],
    [5.114698e4, 51146, undefined, undefined],
    [Infinity, undefined, undefined, undefined],
    [NaN, undefined, undefined, undefined],
    [true, undefined, undefined, undefined],
    [null, undefined, undefined, undefined],
    [[50], undefined, undefined, undefined],
    [{ level: 50 }, undefined, undefined, undefined],
  ];
  it.each(table)('%j → v1-5: %s, v6-9: %s, v10+: %s', (value, old, mid, strict) => {
    expect(parseLevel(value, levelEncodingOf(mustVersion('1')))).toBe(old);
    expect(parseLevel(value, levelEncodingOf(mustVersion('5')))).toBe(old);
    expect(parseLevel(value, levelEncodingOf(mustVersion('6')))).toBe(mid);
    expect(parseLevel(value, levelEncodingOf(mustVersion('9')))).toBe(mid);
    expect(parseLevel(value, levelEncodingOf(mustVersion('10')))).toBe(strict);
    expect(parseLevel(value, levelEncodingOf(mustVersion('12')))).toBe(strict);
  });

  it('a string too long for a double is not a level', () => {
    expect(parseLevel('9'.repeat(400), levelEncodingOf(mustVersion('9')))).toBeUndefined();
  });
});

describe('powerLevelsOf', () => {
  it('without an event: state_default 50 (MSC1304), ban/kick/redact 50, invite 0, notifications.room 50', () => {
    const pl = powerLevelsOf(undefined);
    expect(pl).toMatchObject({ usersDefault: 0, eventsDefault: 0, stateDefault: 50, ban: 50, kick: 50, redact: 50, invite: 0, fromEvent: false });
    expect(pl.notifications.get('room')).toBe(50);
    expect(pl.users.size).toBe(0);
  });

  it.each(ALL_VERSIONS)('v%s: an empty event: state_default 50, the rest as without', (v) => {
    const pl = powerLevelsOf(plEvent(v, {}));
    expect(pl).toMatchObject({ usersDefault: 0, eventsDefault: 0, stateDefault: 50, ban: 50, kick: 50, redact: 50, invite: 0, fromEvent: true });
    expect(pl.notifications.get('room')).toBe(50);
  });

  it.each(ALL_VERSIONS)('v%s: reads every key', (v) => {
    const pl = powerLevelsOf(
      plEvent(v, {
        users_default: 1,
        events_default: 2,
        state_default: 3,
        ban: 4,
        kick: 5,
        redact: 6,
        invite: 7,
        users: { [BOB]: 8 },
        events: { 'm.room.name': 9 },
        notifications: { room: 10, other: 11 },
      }),
    );
    expect(pl).toMatchObject({ usersDefault: 1, eventsDefault: 2, stateDefault: 3, ban: 4, kick: 5, redact: 6, invite: 7 });
    expect([...pl.users]).toEqual([[BOB, 8]]);
    expect([...pl.events]).toEqual([['m.room.name', 9]]);
    expect(pl.notifications.get('room')).toBe(10);
    expect(pl.notifications.get('other')).toBe(11);
  });

  it.each([
    ['9', 75, 20],
    ['10', 50, undefined],
  ] as const)('v%s: string values are read (%s) only before v10', (v, ban, bob) => {
    const pl = powerLevelsOf(plEvent(v, { ban: '75', users: { [BOB]: ' 20 ' } }));
    expect(pl.ban).toBe(ban);
    expect(pl.users.get(BOB)).toBe(bob);
  });

  it('v1-v5 read floats truncated (the "floaty" power levels of the spec)', () => {
    const pl = powerLevelsOf(plEvent('3', { users: { [BOB]: 50.57, [CAROL]: 50 } }));
    expect(pl.users.get(BOB)).toBe(50);
    expect(pl.users.get(CAROL)).toBe(50);
  });

  it('parses each event once: the same object comes back', () => {
    const e = plEvent('10', { ban: 60 });
    expect(powerLevelsOf(e)).toBe(powerLevelsOf(e));
    expect(powerLevelsOf(plEvent('10', { ban: 60 }))).not.toBe(powerLevelsOf(e));
  });
});

describe('userPowerLevel', () => {
  it.each(ALL_VERSIONS)('v%s: without power levels the creator has 100 (infinite in v12), others 0', (v) => {
    const room = new TestRoom(v);
    const pl = powerLevelsOf(undefined);
    expect(userPowerLevel(ALICE, pl, room.create)).toBe(mustVersion(v).privilegedCreators ? CREATOR_POWER_LEVEL : 100);
    expect(userPowerLevel(BOB, pl, room.create)).toBe(0);
  });

  it.each(ALL_VERSIONS)('v%s: the default creator is content.creator before v11 and the sender from v11', (v) => {
    const room = new TestRoom(v, { createContent: { creator: BOB } });
    const pl = powerLevelsOf(undefined);
    const v11 = mustVersion(v).v11EventShape;
    expect(userPowerLevel(BOB, pl, room.create)).toBe(v11 ? 0 : 100);
    expect(userPowerLevel(ALICE, pl, room.create)).toBe(v11 ? (mustVersion(v).privilegedCreators ? Infinity : 100) : 0);
  });

  it.each(ALL_VERSIONS)('v%s: with power levels, users[user] else users_default; the creator gets no default', (v) => {
    const room = new TestRoom(v);
    const pl = powerLevelsOf(plEvent(v, { users_default: 5, users: { [BOB]: 70 } }));
    expect(userPowerLevel(BOB, pl, room.create)).toBe(70);
    expect(userPowerLevel(CAROL, pl, room.create)).toBe(5);
    expect(userPowerLevel(ALICE, pl, room.create)).toBe(mustVersion(v).privilegedCreators ? Infinity : 5);
  });

  it('v12: the sender and every additional creator are infinite, even if listed in users', () => {
    const room = new TestRoom('12', { createContent: { additional_creators: [BOB] } });
    const pl = powerLevelsOf(plEvent('12', { users: { [BOB]: 10 }, users_default: 0 }));
    expect(userPowerLevel(ALICE, pl, room.create)).toBe(Infinity);
    expect(userPowerLevel(BOB, pl, room.create)).toBe(Infinity);
    expect(userPowerLevel(CAROL, pl, room.create)).toBe(0);
    expect(Infinity > 2 ** 53).toBe(true);
  });

  it('v11: additional_creators mean nothing', () => {
    const room = new TestRoom('11', { createContent: { additional_creators: [BOB] } });
    expect(userPowerLevel(BOB, powerLevelsOf(undefined), room.create)).toBe(0);
  });

  it('without a create event, users and users_default still apply', () => {
    const pl = powerLevelsOf(plEvent('10', { users_default: 3, users: { [BOB]: 9 } }));
    expect(userPowerLevel(BOB, pl, undefined)).toBe(9);
    expect(userPowerLevel(CAROL, pl, undefined)).toBe(3);
  });
});

describe('requiredEventLevel', () => {
  it('events[type], else state_default for state events and events_default for others', () => {
    const pl = powerLevelsOf(plEvent('10', { events: { 'm.room.name': 30, 'm.room.message': 5 }, state_default: 40, events_default: 1 }));
    expect(requiredEventLevel('m.room.name', true, pl)).toBe(30);
    expect(requiredEventLevel('m.room.message', false, pl)).toBe(5);
    // The events entry applies whether or not the event is a state event.
    expect(requiredEventLevel('m.room.message', true, pl)).toBe(5);
    expect(requiredEventLevel('m.room.topic', true, pl)).toBe(40);
    expect(requiredEventLevel('m.custom', false, pl)).toBe(1);
  });
});
