import { describe, it } from 'vitest';
import { TestRoom, allVersions, expectAllowed, expectDenied } from './testing.js';

const bob = '@bob:b.test';
const carol = '@carol:c.test';

describe('joins', () => {
  it.each(allVersions)('v%s: anyone may join a public room, but only as themselves', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.member(bob, 'join', carol), /join: .* on behalf of/);
    expectAllowed(() => room.member(bob, 'join'));
  });

  it.each(allVersions)('v%s: the creator\'s first join follows the create event', (v) => {
    const room = new TestRoom(v);
    expectAllowed(() => room.member(room.creator, 'join'));
  });

  it.each(allVersions)('v%s: invite-only rooms need an invite', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'invite' });
    expectDenied(() => room.member(bob, 'join'), /not invited/);
    room.member(bob, 'invite', room.creator);
    expectAllowed(() => room.member(bob, 'join'));
  });

  it.each(allVersions)('v%s: a banned user cannot join', (v) => {
    const room = TestRoom.genesis(v);
    room.member(bob, 'ban', room.creator);
    expectDenied(() => room.member(bob, 'join'), /banned/);
  });

  it.each(allVersions)('v%s: an unknown join rule lets nobody in', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'private' });
    expectDenied(() => room.member(bob, 'join'), /does not allow joining/);
  });
});

describe('restricted joins', () => {
  it.each([
    ['7', false],
    ['8', true],
    ['10', true],
    ['12', true],
  ])('v%s: restricted rule honoured: %s', (v, honoured) => {
    const room = TestRoom.genesis(v, { joinRule: 'restricted' });
    if (!honoured) {
      expectDenied(() => room.member(bob, 'join', bob, { join_authorised_via_users_server: room.creator }), /does not allow joining/);
      return;
    }
    expectDenied(() => room.member(bob, 'join'), /needs join_authorised_via_users_server/);
    expectDenied(() => room.member(bob, 'join', bob, { join_authorised_via_users_server: carol }), /authorising user .* is not joined/);
    expectAllowed(() => room.member(bob, 'join', bob, { join_authorised_via_users_server: room.creator }));
  });

  it('the authorising user must have invite power', () => {
    const room = TestRoom.genesis('10', { joinRule: 'restricted', powerLevels: { invite: 50 } });
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'public' });
    room.member(carol, 'join');
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'restricted' });
    expectDenied(() => room.member(bob, 'join', bob, { join_authorised_via_users_server: carol }), /cannot invite/);
  });

  it.each([
    ['9', false],
    ['10', true],
  ])('v%s: knock_restricted honoured: %s', (v, honoured) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock_restricted' });
    const join = () => room.member(bob, 'join', bob, { join_authorised_via_users_server: room.creator });
    if (honoured) expectAllowed(join);
    else expectDenied(join, /does not allow joining/);
  });
});

describe('invites', () => {
  it.each(allVersions)('v%s: only joined members with invite power may invite', (v) => {
    const room = TestRoom.genesis(v, { powerLevels: { invite: 50 } });
    expectDenied(() => room.member(carol, 'invite', bob), /invite: .* is not joined/);
    room.member(bob, 'join');
    expectDenied(() => room.member(carol, 'invite', bob), /lacks the invite power level/);
    expectAllowed(() => room.member(carol, 'invite', room.creator));
  });

  it.each(allVersions)('v%s: joined or banned users cannot be invited', (v) => {
    const room = TestRoom.genesis(v);
    room.member(bob, 'join');
    expectDenied(() => room.member(bob, 'invite', room.creator), /already join/);
    room.member(carol, 'ban', room.creator);
    expectDenied(() => room.member(carol, 'invite', room.creator), /already ban/);
  });
});

describe('leaving, kicking and banning', () => {
  it.each(allVersions)('v%s: members leave freely; strangers cannot leave', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.member(bob, 'leave'), /not in the room/);
    room.member(bob, 'join');
    expectAllowed(() => room.member(bob, 'leave'));
  });

  it.each(allVersions)('v%s: an invitee may reject the invite', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'invite' });
    room.member(bob, 'invite', room.creator);
    expectAllowed(() => room.member(bob, 'leave'));
  });

  it.each(allVersions)('v%s: kicking needs kick power and a lower target', (v) => {
    const room = TestRoom.genesis(v, { users: { [carol]: 50 } });
    room.member(bob, 'join');
    room.member(carol, 'join');
    expectDenied(() => room.member(carol, 'leave', bob), /cannot kick/);
    expectDenied(() => room.member(room.creator, 'leave', carol), /cannot kick/);
    expectAllowed(() => room.member(bob, 'leave', carol));
  });

  it.each(allVersions)('v%s: banning needs ban power and a lower target; unbanning needs ban power', (v) => {
    const room = TestRoom.genesis(v, { users: { [carol]: 50 }, powerLevels: { ban: 50, kick: 0 } });
    room.member(bob, 'join');
    room.member(carol, 'join');
    expectDenied(() => room.member(carol, 'ban', bob), /cannot ban/);
    expectAllowed(() => room.member(bob, 'ban', carol));
    room.member('@dave:d.test', 'join');
    expectDenied(() => room.member(bob, 'leave', '@dave:d.test'), /unban: .* lacks the ban power level/);
    expectAllowed(() => room.member(bob, 'leave', carol));
  });

  it('a ban wins over a simultaneous power level grant when checked against the ban state', () => {
    // The classic race: the banned user's own power level change arrives after the ban.
    const room = TestRoom.genesis('10', { users: { [bob]: 50 } });
    room.member(bob, 'join');
    room.member(bob, 'ban', room.creator);
    expectDenied(() => room.send('m.room.power_levels', '', bob, { users: { [room.creator]: 100, [bob]: 50, [carol]: 10 } }), /not joined/);
  });

  it.each(allVersions)('v%s: unknown memberships are refused', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.member(bob, 'dancing'), /unknown membership/);
    expectDenied(() => room.send('m.room.member', bob, bob, {}), /no membership/);
  });
});

describe('knocking', () => {
  it.each([
    ['6', false],
    ['7', true],
    ['11', true],
  ])('v%s: knock allowed: %s', (v, allowed) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock' });
    if (allowed) expectAllowed(() => room.member(bob, 'knock'));
    else expectDenied(() => room.member(bob, 'knock'), /has no knocking/);
  });

  it('v7: knocking needs the knock join rule, oneself, and no membership yet', () => {
    const room = TestRoom.genesis('7');
    expectDenied(() => room.member(bob, 'knock'), /does not allow knocking/);
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'knock' });
    expectDenied(() => room.member(bob, 'knock', carol), /on behalf of/);
    room.member(carol, 'invite', room.creator);
    expectDenied(() => room.member(carol, 'knock'), /already invite/);
    expectAllowed(() => room.member(bob, 'knock'));
    // A knocking user may withdraw.
    expectAllowed(() => room.member(bob, 'leave'));
  });

  it('v7: a knock room admits invited users', () => {
    const room = TestRoom.genesis('7', { joinRule: 'knock' });
    expectDenied(() => room.member(bob, 'join'), /not invited/);
    room.member(bob, 'invite', room.creator);
    expectAllowed(() => room.member(bob, 'join'));
  });

  it.each([
    ['9', false],
    ['10', true],
  ])('v%s: knock on knock_restricted allowed: %s', (v, allowed) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock_restricted' });
    if (allowed) expectAllowed(() => room.member(bob, 'knock'));
    else expectDenied(() => room.member(bob, 'knock'), /does not allow knocking/);
  });
});
