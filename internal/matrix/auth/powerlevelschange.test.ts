import { describe, it } from 'vitest';
import type { JsonObject, JsonValue } from '../types.js';
import { ALL_VERSIONS, BOB, CAROL, DAVE, TestRoom, expectAllowed, expectDenied, expectOutcome, mustVersion, versionsWhere } from './testing.js';

/** Bob and Carol are moderators (50), Dave a member; state_default 50. */
function setup(v: string, rest: JsonObject = {}): TestRoom {
  const room = TestRoom.genesis(v, { users: { [BOB]: 50, [CAROL]: 50 }, powerLevels: { state_default: 50, ...rest } });
  room.member(BOB, 'join');
  room.member(CAROL, 'join');
  room.member(DAVE, 'join');
  return room;
}

/** Sends a power levels event from `sender` with the room's creator entry, moderators and `rest`. */
function sendLevels(room: TestRoom, sender: string, users: JsonObject, rest: JsonObject = {}): void {
  room.send('m.room.power_levels', '', sender, room.powerLevels(users, { state_default: 50, ...rest }));
}

const MODS = { [BOB]: 50, [CAROL]: 50 };

describe('well-formed power levels', () => {
  it.each(ALL_VERSIONS)('v%s: users must be an object of user IDs', (v) => {
    const room = setup(v);
    expectDenied(() => room.send('m.room.power_levels', '', room.creator, { users: [] }), /^m\.room\.power_levels: users must be an object/);
    expectDenied(() => room.send('m.room.power_levels', '', room.creator, { users: null }), /users must be an object/);
    expectDenied(() => sendLevels(room, room.creator, { ...MODS, bob: 50 }), /users holds "bob", which is not a user ID/);
    expectDenied(() => sendLevels(room, room.creator, { ...MODS, '@bob': 50 }), /not a user ID/);
  });

  it.each(ALL_VERSIONS)('v%s: user levels are integers, or integer strings before v10', (v) => {
    const room = setup(v);
    const strings = !mustVersion(v).enforceIntegerPowerLevels;
    expectOutcome(strings, () => sendLevels(room, room.creator, { ...MODS, [DAVE]: '10' }), /users\.@dave:d\.test is not an integer: "10"/);
    expectDenied(() => sendLevels(room, room.creator, { ...MODS, [DAVE]: 'ten' }), /users\.@dave:d\.test is not an integer/);
    expectDenied(() => sendLevels(room, room.creator, { ...MODS, [DAVE]: true }), /is not an integer/);
    expectDenied(() => sendLevels(room, room.creator, { ...MODS, [DAVE]: null }), /is not an integer/);
  });

  it.each(ALL_VERSIONS)('v%s: floats are levels (truncated) before v6 only', (v) => {
    const room = setup(v);
    expectOutcome(!mustVersion(v).strictCanonicalJson, () => sendLevels(room, room.creator, { ...MODS, [DAVE]: 10.5 }), /users\.@dave:d\.test is not an integer/);
  });

  const thresholds = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'];
  it.each(ALL_VERSIONS)('v%s: thresholds are levels in the version\'s encoding', (v) => {
    const room = setup(v);
    const strings = !mustVersion(v).enforceIntegerPowerLevels;
    for (const key of thresholds) {
      expectOutcome(strings, () => sendLevels(room, room.creator, MODS, { [key]: '0' }), new RegExp(`^m\\.room\\.power_levels: ${key} is not an integer: "0"`));
      expectDenied(() => sendLevels(room, room.creator, MODS, { [key]: 'zero' }), new RegExp(`${key} is not an integer`));
      expectDenied(() => sendLevels(room, room.creator, MODS, { [key]: null }), new RegExp(`${key} is not an integer`));
      expectDenied(() => sendLevels(room, room.creator, MODS, { [key]: {} }), new RegExp(`${key} is not an integer`));
    }
  });

  it.each(ALL_VERSIONS)('v%s: events and notifications are objects of levels', (v) => {
    const room = setup(v);
    const strings = !mustVersion(v).enforceIntegerPowerLevels;
    for (const key of ['events', 'notifications']) {
      expectDenied(() => sendLevels(room, room.creator, MODS, { [key]: 5 }), new RegExp(`${key} must be an object`));
      expectDenied(() => sendLevels(room, room.creator, MODS, { [key]: { x: 'high' } }), new RegExp(`${key}\\.x is not an integer`));
      expectOutcome(strings, () => sendLevels(room, room.creator, MODS, { [key]: { room: '20' } }), new RegExp(`${key}\\.room is not an integer: "20"`));
      expectAllowed(() => sendLevels(room, room.creator, MODS, { [key]: { room: 20 } }));
    }
  });

  it('v1: a float too large for a double (Infinity after parsing) is no level', () => {
    const room = setup('1');
    expectDenied(() => sendLevels(room, room.creator, MODS, { ban: Infinity as JsonValue }), /ban is not an integer/);
  });

  it.each(ALL_VERSIONS)('v%s: the first power levels event needs only to be well formed', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    expectAllowed(() => room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [BOB]: 100 }, { ban: 1000, events: { x: 1000 } })));
  });

  it.each(ALL_VERSIONS)('v%s: without power levels only the creator may send the first one (state_default is 50, MSC1304)', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'public' });
    room.member(BOB, 'join');
    expectDenied(() => room.send('m.room.power_levels', '', BOB, room.powerLevels({ [BOB]: 100 })), /needs level 50; @bob:b\.test has 0/);
  });
});

describe('changing thresholds', () => {
  it.each(ALL_VERSIONS)('v%s: a threshold above the sender cannot be changed', (v) => {
    const room = setup(v, { ban: 80 });
    expectDenied(() => sendLevels(room, BOB, MODS, { ban: 40 }), /@bob:b\.test \(level 50\) cannot change ban from 80/);
    expectDenied(() => sendLevels(room, BOB, MODS, {}), /cannot change ban from 80/);
  });

  it.each(ALL_VERSIONS)('v%s: a threshold cannot be set above the sender', (v) => {
    const room = setup(v, { ban: 80 });
    expectDenied(() => sendLevels(room, BOB, MODS, { ban: 80, kick: 51 }), /cannot set kick to 51/);
    expectDenied(() => sendLevels(room, BOB, MODS, { ban: 80, users_default: 51 }), /cannot set users_default to 51/);
  });

  it.each(ALL_VERSIONS)('v%s: within the sender\'s level thresholds change freely (added, changed, removed)', (v) => {
    const room = setup(v, { ban: 80, kick: 30 });
    expectAllowed(() => sendLevels(room, BOB, MODS, { ban: 80, kick: 50, invite: 50, redact: 0 }));
    expectAllowed(() => sendLevels(room, BOB, MODS, { ban: 80 }));
  });

  it.each(versionsWhere((v) => !v.enforceIntegerPowerLevels))('v%s: "80" and 80 are the same value: no change', (v) => {
    const room = setup(v, { ban: 80 });
    expectAllowed(() => sendLevels(room, BOB, MODS, { ban: '80' }));
    expectAllowed(() => sendLevels(room, BOB, MODS, { ban: ' +080 ' }));
  });
});

describe('changing events and notifications', () => {
  it.each(ALL_VERSIONS)('v%s: events entries above the sender cannot be changed or removed', (v) => {
    const room = setup(v, { events: { 'm.room.tombstone': 100, 'm.room.topic': 10 } });
    const events = (e: JsonObject) => sendLevels(room, BOB, MODS, { events: e });
    expectDenied(() => events({ 'm.room.tombstone': 50, 'm.room.topic': 10 }), /cannot change events\.m\.room\.tombstone from 100/);
    expectDenied(() => events({ 'm.room.topic': 10 }), /cannot change events\.m\.room\.tombstone from 100/);
    expectDenied(() => events({ 'm.room.tombstone': 100, 'm.room.topic': 60 }), /cannot set events\.m\.room\.topic to 60/);
    expectDenied(() => events({ 'm.room.tombstone': 100, 'm.room.topic': 10, 'm.new': 51 }), /cannot set events\.m\.new to 51/);
    expectAllowed(() => events({ 'm.room.tombstone': 100, 'm.room.topic': 50, 'm.new': 50 }));
    expectAllowed(() => events({ 'm.room.tombstone': 100 }));
  });

  it.each(ALL_VERSIONS)('v%s: notifications entries are checked like events from v6', (v) => {
    const room = setup(v, { notifications: { room: 80 } });
    const limited = mustVersion(v).limitNotificationsPowerLevels;
    expectOutcome(!limited, () => sendLevels(room, BOB, MODS, { notifications: { room: 20 } }), /cannot change notifications\.room from 80/);
  });

  it.each(ALL_VERSIONS)('v%s: adding notifications.room above the sender is refused from v6', (v) => {
    const room = setup(v);
    const limited = mustVersion(v).limitNotificationsPowerLevels;
    expectOutcome(!limited, () => sendLevels(room, BOB, MODS, { notifications: { room: 90 } }), /cannot set notifications\.room to 90/);
    // Writing the default (50) explicitly is a change, but within Bob's level.
    expectAllowed(() => sendLevels(room, BOB, MODS, { notifications: { room: 50 } }));
  });
});

describe('changing users', () => {
  it.each(ALL_VERSIONS)('v%s: nobody raises anyone (themselves included) above their own level', (v) => {
    const room = setup(v);
    expectDenied(() => sendLevels(room, BOB, { ...MODS, [DAVE]: 51 }), /cannot give @dave:d\.test level 51/);
    expectDenied(() => sendLevels(room, BOB, { ...MODS, [BOB]: 75 }), /cannot give @bob:b\.test level 75/);
  });

  it.each(ALL_VERSIONS)('v%s: raising others up to one\'s own level is allowed', (v) => {
    const room = setup(v);
    expectAllowed(() => sendLevels(room, BOB, { ...MODS, [DAVE]: 50 }));
  });

  it.each(ALL_VERSIONS)('v%s: peers cannot demote or remove each other', (v) => {
    const room = setup(v);
    expectDenied(() => sendLevels(room, BOB, { [BOB]: 50, [CAROL]: 0 }), /cannot change the level of @carol:c\.test, who has 50/);
    expectDenied(() => sendLevels(room, BOB, { [BOB]: 50 }), /cannot change the level of @carol:c\.test, who has 50/);
  });

  it.each(ALL_VERSIONS)('v%s: users below the sender can be changed and removed', (v) => {
    const room = setup(v);
    sendLevels(room, room.creator, { ...MODS, [DAVE]: 20 });
    expectAllowed(() => sendLevels(room, BOB, { ...MODS, [DAVE]: 40 }));
    expectAllowed(() => sendLevels(room, BOB, MODS));
  });

  it.each(ALL_VERSIONS)('v%s: one may lower or remove one\'s own entry', (v) => {
    const room = setup(v);
    expectAllowed(() => sendLevels(room, BOB, { ...MODS, [BOB]: 10 }));
    const room2 = setup(v);
    expectAllowed(() => sendLevels(room2, BOB, { [CAROL]: 50 }));
  });

  it.each(ALL_VERSIONS)('v%s: the creator (100) demotes moderators; moderators cannot touch the creator', (v) => {
    const room = setup(v);
    expectAllowed(() => sendLevels(room, room.creator, { [BOB]: 0, [CAROL]: 50 }));
    if (!mustVersion(v).privilegedCreators) {
      expectDenied(() => room.send('m.room.power_levels', '', CAROL, { users: { [room.creator]: 0, [CAROL]: 50 }, state_default: 50 }), /cannot change the level of @alice:a\.test, who has 100/);
    }
  });

  it.each(ALL_VERSIONS)('v%s: the sender needs the level to send power levels at all', (v) => {
    const room = setup(v, { events: { 'm.room.power_levels': 100 } });
    expectDenied(() => sendLevels(room, BOB, MODS, { events: { 'm.room.power_levels': 100 } }), /^power level: m\.room\.power_levels needs level 100; @bob:b\.test has 50/);
  });

  it.each(versionsWhere((v) => !v.enforceIntegerPowerLevels))('v%s: a string level equal to the old integer is no change', (v) => {
    const room = setup(v);
    expectAllowed(() => sendLevels(room, BOB, { [BOB]: 50, [CAROL]: '50' }));
  });

  it.each(ALL_VERSIONS)('v%s: a power levels event with another state_key is held to the room\'s power levels', (v) => {
    const room = setup(v);
    expectDenied(() => room.send('m.room.power_levels', 'shadow', BOB, { users: { [BOB]: 100 } }), /cannot change the level of @(alice|carol)|cannot give @bob:b\.test level 100/);
  });
});
