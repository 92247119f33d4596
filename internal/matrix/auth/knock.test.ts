import { describe, it } from 'vitest';
import { ALL_VERSIONS, BOB, CAROL, TestRoom, expectAllowed, expectDenied, expectOutcome, mustVersion, versionsWhere } from './testing.js';

const knockVersions = versionsWhere((v) => v.knockJoinRule);

describe('knocking (v7+)', () => {
  it.each(ALL_VERSIONS)('v%s: knock is a membership from v7; before, it is unknown', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock' });
    expectOutcome(mustVersion(v).knockJoinRule, () => room.member(BOB, 'knock'), /^m\.room\.member: unknown membership "knock" in room version/);
  });

  it.each(ALL_VERSIONS)('v%s: knock_restricted rooms take knocks from v10', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock_restricted' });
    const knocks = mustVersion(v).knockJoinRule;
    const allowed = mustVersion(v).knockRestrictedJoinRule;
    expectOutcome(allowed, () => room.member(BOB, 'knock'), knocks ? /join rule "knock_restricted" does not allow knocking/ : /unknown membership/);
  });

  it.each(knockVersions)('v%s: other join rules take no knocks', (v) => {
    for (const rule of ['public', 'invite', 'restricted', 'private']) {
      const room = TestRoom.genesis(v, { joinRule: rule });
      expectDenied(() => room.member(BOB, 'knock'), /^m\.room\.member knock: the join rule .* does not allow knocking/);
    }
  });

  it.each(knockVersions)('v%s: a room without join rules takes no knocks (invite)', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    expectDenied(() => room.member(BOB, 'knock'), /join rule "invite" does not allow knocking/);
  });

  it.each(knockVersions)('v%s: one knocks only for oneself', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock' });
    expectDenied(() => room.member(BOB, 'knock', CAROL), /@carol:c\.test cannot knock on behalf of @bob:b\.test/);
    expectDenied(() => room.member(BOB, 'knock', room.creator), /cannot knock on behalf/);
  });

  it.each(knockVersions)('v%s: joined, invited and banned users cannot knock; left and knocking ones can', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock' });
    room.member(BOB, 'invite', room.creator);
    expectDenied(() => room.member(BOB, 'knock'), /@bob:b\.test is invite/);
    room.member(BOB, 'join');
    expectDenied(() => room.member(BOB, 'knock'), /@bob:b\.test is join/);
    room.member(BOB, 'leave');
    expectAllowed(() => room.member(BOB, 'knock'));
    expectAllowed(() => room.member(BOB, 'knock', BOB, { reason: 'again' }));
    room.member(CAROL, 'ban', room.creator);
    expectDenied(() => room.member(CAROL, 'knock'), /@carol:c\.test is ban/);
  });

  it.each(knockVersions)('v%s: knocking does not let one in: the knock is answered with an invite', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock' });
    room.member(BOB, 'knock');
    expectDenied(() => room.member(BOB, 'join'), /neither invited nor joined/);
    expectDenied(() => room.send('m.room.message', undefined, BOB, { body: 'let me in' }), /^sender:/);
    room.member(BOB, 'invite', room.creator);
    expectAllowed(() => room.member(BOB, 'join'));
  });

  it.each(knockVersions)('v%s: a knock can be refused by a kick', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock' });
    room.member(BOB, 'knock');
    expectAllowed(() => room.member(BOB, 'leave', room.creator));
  });

  it.each(versionsWhere((v) => v.knockRestrictedJoinRule))('v%s: knock_restricted also takes authorised joins', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock_restricted' });
    expectAllowed(() => room.member(BOB, 'knock'));
    expectAllowed(() => room.member(CAROL, 'join', CAROL, { join_authorised_via_users_server: room.creator }));
  });
});
