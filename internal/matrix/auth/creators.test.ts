import { describe, expect, it } from 'vitest';
import { isPrivilegedCreator, powerLevelsOf, userPowerLevel } from './powerlevels.js';
import { ALICE, BOB, CAROL, DAVE, TestRoom, expectAllowed, expectDenied, versionsWhere } from './testing.js';

/** v12: Alice created the room with Bob as an additional creator; Carol has 100, Dave 0. */
function v12Room(): TestRoom {
  const room = TestRoom.genesis('12', { createContent: { additional_creators: [BOB] }, users: { [CAROL]: 100 } });
  room.member(BOB, 'join');
  room.member(CAROL, 'join');
  room.member(DAVE, 'join');
  return room;
}

describe('room version 12 creators (MSC4289)', () => {
  it('the sender and the additional creators are creators; nobody else is', () => {
    const room = v12Room();
    expect(isPrivilegedCreator(ALICE, room.create)).toBe(true);
    expect(isPrivilegedCreator(BOB, room.create)).toBe(true);
    expect(isPrivilegedCreator(CAROL, room.create)).toBe(false);
  });

  it('creators may not be listed in users, neither the sender nor an additional creator', () => {
    const room = v12Room();
    expectDenied(() => room.send('m.room.power_levels', '', ALICE, { users: { [CAROL]: 100, [ALICE]: 100 } }), /^m\.room\.power_levels: @alice:a\.test is a room creator and may not be listed in users/);
    expectDenied(() => room.send('m.room.power_levels', '', ALICE, { users: { [CAROL]: 100, [BOB]: 0 } }), /@bob:b\.test is a room creator/);
  });

  it('not even in the first power levels event', () => {
    const room = new TestRoom('12');
    room.member(ALICE, 'join');
    expectDenied(() => room.send('m.room.power_levels', '', ALICE, { users: { [ALICE]: 100 } }), /is a room creator/);
  });

  it('a level-100 user cannot kick, ban or demote a creator; a creator can do all three to them', () => {
    const room = v12Room();
    expectDenied(() => room.member(BOB, 'leave', CAROL), /^m\.room\.member kick: @carol:c\.test \(level 100\) cannot kick @bob:b\.test \(level Infinity/);
    expectDenied(() => room.member(ALICE, 'ban', CAROL), /cannot ban @alice:a\.test \(level Infinity/);
    expectAllowed(() => room.send('m.room.power_levels', '', BOB, { users: { [CAROL]: 0 } }));
    expectAllowed(() => room.member(CAROL, 'ban', BOB));
  });

  it('creators cannot kick or ban each other (neither is below the other)', () => {
    const room = v12Room();
    expectDenied(() => room.member(BOB, 'leave', ALICE), /cannot kick @bob:b\.test \(level Infinity/);
    expectDenied(() => room.member(ALICE, 'ban', BOB), /cannot ban @alice:a\.test/);
  });

  it('a creator may grant any number, and stays above it', () => {
    const room = v12Room();
    expectAllowed(() => room.send('m.room.power_levels', '', ALICE, { users: { [CAROL]: 2 ** 53 - 1 } }));
    const pl = powerLevelsOf(room.stateEvent('m.room.power_levels'));
    expect(userPowerLevel(ALICE, pl, room.create)).toBe(Infinity);
    expect(userPowerLevel(CAROL, pl, room.create)).toBe(2 ** 53 - 1);
    expectAllowed(() => room.member(CAROL, 'leave', ALICE));
  });

  it('creators pass every threshold and every event level', () => {
    const room = TestRoom.genesis('12', {
      powerLevels: { state_default: 2 ** 53 - 1, events_default: 2 ** 53 - 1, invite: 2 ** 53 - 1, ban: 2 ** 53 - 1, events: { 'm.room.tombstone': 2 ** 53 - 1 } },
    });
    expectAllowed(() => room.send('m.room.tombstone', '', ALICE, { body: 'moving', replacement_room: '!new' }));
    expectAllowed(() => room.send('m.room.message', undefined, ALICE, { body: 'hi' }));
    expectAllowed(() => room.member(BOB, 'invite', ALICE));
    expectAllowed(() => room.member(CAROL, 'ban', ALICE));
  });

  it('a creator who leaves keeps the rank but must rejoin to act', () => {
    const room = v12Room();
    room.member(BOB, 'leave');
    expectDenied(() => room.send('m.room.topic', '', BOB, { topic: 'x' }), /^sender:/);
    room.member(BOB, 'join');
    expectAllowed(() => room.send('m.room.topic', '', BOB, { topic: 'x' }));
  });

  it('a banned creator stays banned: ban rank does not matter to joins', () => {
    // Only reachable from a state nobody could produce under these rules (creators cannot be
    // banned), as after a state resolution between forks: the ban still wins.
    const room = v12Room();
    room.force('m.room.member', BOB, ALICE, { membership: 'ban' });
    expectDenied(() => room.member(BOB, 'join'), /is banned/);
  });

  it('with no power levels event, the creators rank above everyone', () => {
    const room = new TestRoom('12', { createContent: { additional_creators: [BOB] } });
    room.member(ALICE, 'join');
    room.send('m.room.join_rules', '', ALICE, { join_rule: 'public' });
    room.member(BOB, 'join');
    room.member(CAROL, 'join');
    expectAllowed(() => room.member(CAROL, 'ban', BOB));
    expect(userPowerLevel(CAROL, powerLevelsOf(undefined), room.create)).toBe(0);
  });

  it.each(versionsWhere((v) => !v.privilegedCreators))('v%s: creators have no special rank: two users at 100 cannot kick each other', (v) => {
    const room = TestRoom.genesis(v, { users: { [CAROL]: 100 } });
    room.member(CAROL, 'join');
    expectDenied(() => room.member(ALICE, 'leave', CAROL), /cannot kick/);
    expectDenied(() => room.member(CAROL, 'leave', ALICE), /cannot kick/);
    // And the creator may be listed (and demoted) in users.
    expectAllowed(() => room.send('m.room.power_levels', '', ALICE, { users: { [ALICE]: 50, [CAROL]: 100 } }));
  });
});
