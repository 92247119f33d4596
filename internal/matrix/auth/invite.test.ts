import { describe, it } from 'vitest';
import { ALL_VERSIONS, BOB, CAROL, DAVE, TestRoom, expectAllowed, expectDenied } from './testing.js';

describe('invites', () => {
  it.each(ALL_VERSIONS)('v%s: a non-member cannot invite, not even into a public room', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.member(CAROL, 'invite', BOB), /^m\.room\.member invite: @bob:b\.test is not joined/);
  });

  it.each(ALL_VERSIONS)('v%s: an invited (not yet joined) user cannot invite others', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'invite' });
    room.member(BOB, 'invite', room.creator);
    expectDenied(() => room.member(CAROL, 'invite', BOB), /is not joined/);
  });

  it.each(ALL_VERSIONS)('v%s: a user who left cannot invite', (v) => {
    const room = TestRoom.genesis(v);
    room.member(BOB, 'join');
    room.member(BOB, 'leave');
    expectDenied(() => room.member(CAROL, 'invite', BOB), /is not joined/);
  });

  it.each(ALL_VERSIONS)('v%s: members invite at the invite level (default 0)', (v) => {
    const room = TestRoom.genesis(v);
    room.member(BOB, 'join');
    expectAllowed(() => room.member(CAROL, 'invite', BOB));
  });

  it.each(ALL_VERSIONS)('v%s: below the invite level, no invite', (v) => {
    const room = TestRoom.genesis(v, { users: { [DAVE]: 50 }, powerLevels: { invite: 50 } });
    room.member(BOB, 'join');
    room.member(DAVE, 'join');
    expectDenied(() => room.member(CAROL, 'invite', BOB), /@bob:b\.test has level 0, below the invite level 50/);
    expectAllowed(() => room.member(CAROL, 'invite', DAVE));
  });

  it.each(ALL_VERSIONS)('v%s: joined or banned users cannot be invited; left or invited ones can', (v) => {
    const room = TestRoom.genesis(v);
    room.member(BOB, 'join');
    expectDenied(() => room.member(BOB, 'invite', room.creator), /@bob:b\.test is already joined/);
    room.member(CAROL, 'ban', room.creator);
    expectDenied(() => room.member(CAROL, 'invite', room.creator), /@carol:c\.test is banned/);
    room.member(BOB, 'leave');
    expectAllowed(() => room.member(BOB, 'invite', room.creator));
    expectAllowed(() => room.member(BOB, 'invite', room.creator, { reason: 're-invite' }));
  });

  it.each(ALL_VERSIONS)('v%s: users may not invite themselves from outside', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'invite' });
    expectDenied(() => room.member(BOB, 'invite', BOB), /is not joined/);
  });

  it.each(ALL_VERSIONS)('v%s: without a power levels event everyone may invite (invite level 0)', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    expectAllowed(() => room.member(BOB, 'invite', room.creator));
  });

  it('v12: an invite level above every number still lets creators invite', () => {
    const room = TestRoom.genesis('12', { users: { [DAVE]: 2 ** 52 }, powerLevels: { invite: 2 ** 53 - 1 } });
    room.member(DAVE, 'join');
    expectDenied(() => room.member(CAROL, 'invite', DAVE), /below the invite level/);
    expectAllowed(() => room.member(CAROL, 'invite', room.creator));
  });
});
