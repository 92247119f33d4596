import { describe, expect, it } from 'vitest';
import { roomVersion } from '../roomversion.js';
import { powerLevelsOf, userPowerLevel } from './powerlevels.js';
import { TestRoom, allVersions, expectAllowed, expectDenied } from './testing.js';

const bob = '@bob:b.test';
const carol = '@carol:c.test';

describe('power levels needed to send', () => {
  it.each(allVersions)('v%s: events and state need their level', (v) => {
    const room = TestRoom.genesis(v, { powerLevels: { events: { 'm.room.name': 60 }, events_default: 10, state_default: 50 } });
    room.member(bob, 'join');
    expectDenied(() => room.send('m.room.message', undefined, bob, { body: 'hi' }), /power: m.room.message needs power level 10/);
    expectDenied(() => room.send('m.room.topic', '', bob, { topic: 't' }), /needs power level 50/);
    expectAllowed(() => room.send('m.room.message', undefined, room.creator, { body: 'hi' }));
    expectAllowed(() => room.send('m.room.name', '', room.creator, { name: 'n' }));
  });

  it.each(allVersions)('v%s: without a power levels event, state_default is 0 and the creator has 100', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'public' });
    room.member(bob, 'join');
    expectAllowed(() => room.send('m.room.topic', '', bob, { topic: 'anyone may' }));
    const pl = powerLevelsOf(undefined);
    expect(userPowerLevel(room.creator, pl, room.create)).toBe(v === '12' ? Infinity : 100);
    expect(userPowerLevel(bob, pl, room.create)).toBe(0);
  });

  it.each(allVersions)('v%s: senders must be joined', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.send('m.room.message', undefined, bob, { body: 'x' }), /sender: .* is not joined/);
  });

  it.each(allVersions)('v%s: a state key that is a user ID must be the sender\'s', (v) => {
    const room = TestRoom.genesis(v, { powerLevels: { state_default: 0 } });
    room.member(bob, 'join');
    expectDenied(() => room.send('org.example.profile', carol, bob, {}), /state_key/);
    expectAllowed(() => room.send('org.example.profile', bob, bob, {}));
  });
});

describe('changing power levels', () => {
  const setup = (v: string) => {
    const room = TestRoom.genesis(v, { users: { [bob]: 50, [carol]: 50 }, powerLevels: { state_default: 50 } });
    room.member(bob, 'join');
    room.member(carol, 'join');
    return room;
  };
  const creatorEntry = (room: TestRoom) => (room.version.privilegedCreators ? {} : { [room.creator]: 100 });

  it.each(allVersions)('v%s: nobody raises anyone above themselves', (v) => {
    const room = setup(v);
    expectDenied(() => room.send('m.room.power_levels', '', bob, { users: { ...creatorEntry(room), [bob]: 75, [carol]: 50 }, state_default: 50 }), /above their own/);
  });

  it.each(allVersions)('v%s: peers cannot demote each other, but may lower themselves', (v) => {
    const room = setup(v);
    expectDenied(() => room.send('m.room.power_levels', '', bob, { users: { ...creatorEntry(room), [bob]: 50, [carol]: 0 }, state_default: 50 }), /cannot change/);
    expectAllowed(() => room.send('m.room.power_levels', '', bob, { users: { ...creatorEntry(room), [bob]: 10, [carol]: 50 }, state_default: 50 }));
  });

  it.each(allVersions)('v%s: thresholds above the sender cannot be moved', (v) => {
    const room = setup(v);
    room.send('m.room.power_levels', '', room.creator, { users: { ...creatorEntry(room), [bob]: 50, [carol]: 50 }, state_default: 50, ban: 80 });
    expectDenied(() => room.send('m.room.power_levels', '', bob, { users: { ...creatorEntry(room), [bob]: 50, [carol]: 50 }, state_default: 50, ban: 40 }), /ban is 80/);
    expectDenied(() => room.send('m.room.power_levels', '', bob, { users: { ...creatorEntry(room), [bob]: 50, [carol]: 50 }, state_default: 50, ban: 80, kick: 70 }), /kick would be 70/);
    expectDenied(
      () => room.send('m.room.power_levels', '', bob, { users: { ...creatorEntry(room), [bob]: 50, [carol]: 50 }, state_default: 50, ban: 80, events: { 'm.room.name': 90 } }),
      /events.m.room.name would be 90/,
    );
  });

  it.each([
    ['5', true],
    ['6', false],
  ])('v%s: notifications levels are free to change: %s', (v, free) => {
    const room = setup(v);
    const send = () => room.send('m.room.power_levels', '', bob, { users: { ...creatorEntry(room), [bob]: 50, [carol]: 50 }, state_default: 50, notifications: { room: 90 } });
    if (free) expectAllowed(send);
    else expectDenied(send, /notifications.room would be 90/);
  });

  it.each([
    ['9', true],
    ['10', false],
  ])('v%s: string levels accepted: %s', (v, accepted) => {
    const room = setup(v);
    const send = () => room.send('m.room.power_levels', '', room.creator, { users: { ...creatorEntry(room), [bob]: '50', [carol]: 50 }, state_default: 50 });
    if (accepted) {
      expectAllowed(send);
      expect(userPowerLevel(bob, powerLevelsOf(room.state.get('m.room.power_levels\u0000')), room.create)).toBe(50);
    } else expectDenied(send, /users.@bob:b.test must be an integer/);
  });

  it('v10: every threshold must be an integer', () => {
    const room = setup('10');
    expectDenied(() => room.send('m.room.power_levels', '', room.creator, { users: { [room.creator]: 100 }, kick: '50' }), /kick must be an integer/);
    expectDenied(() => room.send('m.room.power_levels', '', room.creator, { users: { [room.creator]: 100 }, events: { 'm.room.name': 'x' } }), /events must map to integers/);
    expectDenied(() => room.send('m.room.power_levels', '', room.creator, { users: { [room.creator]: 100 }, kick: 50.5 }), /kick must be an integer/);
  });

  it.each(allVersions)('v%s: users keys must be user IDs', (v) => {
    const room = setup(v);
    expectDenied(() => room.send('m.room.power_levels', '', room.creator, { users: { ...creatorEntry(room), bob: 50 } }), /not a user ID/);
  });

  it('v9 reads string thresholds as numbers', () => {
    const pl = powerLevelsOf({ ...TestRoom.genesis('9').create, type: 'm.room.power_levels', content: { ban: '75', users: { [bob]: ' 20 ' } }, roomVersion: roomVersion('9')! });
    expect(pl.ban).toBe(75);
    expect(pl.users.get(bob)).toBe(20);
  });
});

describe('room version 12 creators (MSC4289)', () => {
  it('creators outrank every level and cannot be listed in users', () => {
    const room = TestRoom.genesis('12', { createContent: { additional_creators: [bob] }, users: { [carol]: 100 } });
    room.member(bob, 'join');
    room.member(carol, 'join');
    expectDenied(() => room.send('m.room.power_levels', '', room.creator, { users: { [carol]: 100, [bob]: 100 } }), /creator @bob:b.test may not be listed/);
    // A level-100 user cannot kick a creator; a creator can kick the level-100 user.
    expectDenied(() => room.member(bob, 'leave', carol), /cannot kick/);
    expectAllowed(() => room.member(carol, 'leave', bob));
  });

  it('a creator may grant any number, and stays above it', () => {
    const room = TestRoom.genesis('12', { users: { [carol]: 100 } });
    room.member(carol, 'join');
    expectAllowed(() => room.send('m.room.power_levels', '', room.creator, { users: { [carol]: 99999 } }));
    expect(userPowerLevel(room.creator, powerLevelsOf(room.state.get('m.room.power_levels\u0000')), room.create)).toBe(Infinity);
  });

  it('v11 gives creators no special rank: two users at 100 cannot kick each other', () => {
    const room = TestRoom.genesis('11', { users: { [carol]: 100 } });
    room.member(carol, 'join');
    expectDenied(() => room.member(room.creator, 'leave', carol), /cannot kick/);
    expectDenied(() => room.member(carol, 'leave', room.creator), /cannot kick/);
  });
});
