import { describe, it } from 'vitest';
import { ALICE, ALL_VERSIONS, BOB, CAROL, DAVE, TestRoom, expectAllowed, expectDenied, expectOutcome, mustVersion, versionsWhere } from './testing.js';

describe('the creator\'s first join', () => {
  it.each(ALL_VERSIONS)('v%s: allowed straight after the create event', (v) => {
    const room = new TestRoom(v);
    expectAllowed(() => room.member(room.creator, 'join'));
  });

  it.each(ALL_VERSIONS)('v%s: not a free pass for anyone else', (v) => {
    const room = new TestRoom(v);
    expectDenied(() => room.member(BOB, 'join'), /^m\.room\.member join:/);
  });

  it.each(ALL_VERSIONS)('v%s: only when the create event is the only prev event', (v) => {
    const room = new TestRoom(v);
    // No join rules yet (read as invite), and the creator is not invited.
    expectDenied(() => room.send('m.room.member', room.creator, room.creator, { membership: 'join' }, { prev: [room.create.eventId, '$other'] }), /neither invited nor joined/);
    expectDenied(() => room.send('m.room.member', room.creator, room.creator, { membership: 'join' }, { prev: ['$other'] }), /neither invited nor joined/);
  });

  it.each(ALL_VERSIONS)('v%s: "creator" is content.creator before v11 and the sender from v11', (v) => {
    // content.creator names Bob, the sender is Alice.
    const room = new TestRoom(v, { createContent: { creator: BOB } });
    const bobFirst = () => room.send('m.room.member', BOB, BOB, { membership: 'join' }, { prev: [room.create.eventId] });
    const aliceFirst = () => room.send('m.room.member', ALICE, ALICE, { membership: 'join' }, { prev: [room.create.eventId] });
    const v11 = mustVersion(v).v11EventShape;
    expectOutcome(!v11, bobFirst, /neither invited nor joined/);
    expectOutcome(v11, aliceFirst, /neither invited nor joined/);
  });

  it.each(ALL_VERSIONS)('v%s: the spec does not compare the sender of the creator\'s first join', (v) => {
    const room = new TestRoom(v);
    expectAllowed(() => room.member(room.creator, 'join', BOB));
  });
});

describe('joining', () => {
  it.each(ALL_VERSIONS)('v%s: nobody joins on behalf of someone else, even in a public room', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.member(BOB, 'join', CAROL), /^m\.room\.member join: @carol:c\.test cannot join on behalf of @bob:b\.test/);
    expectDenied(() => room.member(BOB, 'join', room.creator), /on behalf of/);
  });

  it.each(ALL_VERSIONS)('v%s: anyone may join a public room; joining again is fine', (v) => {
    const room = TestRoom.genesis(v);
    expectAllowed(() => room.member(BOB, 'join'));
    expectAllowed(() => room.member(BOB, 'join', BOB, { displayname: 'Bob' }));
  });

  it.each(ALL_VERSIONS)('v%s: a banned user cannot join, whatever the join rule', (v) => {
    const room = TestRoom.genesis(v);
    room.member(BOB, 'ban', room.creator);
    expectDenied(() => room.member(BOB, 'join'), /^m\.room\.member join: @bob:b\.test is banned/);
  });

  it.each(ALL_VERSIONS)('v%s: invite-only rooms need an invite (or an existing join)', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'invite' });
    expectDenied(() => room.member(BOB, 'join'), /join rule is invite and @bob:b\.test is neither invited nor joined/);
    room.member(BOB, 'invite', room.creator);
    expectAllowed(() => room.member(BOB, 'join'));
    expectAllowed(() => room.member(BOB, 'join', BOB, { displayname: 'again' }));
  });

  it.each(ALL_VERSIONS)('v%s: leaving an invite-only room means needing a new invite', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'invite' });
    room.member(BOB, 'invite', room.creator);
    room.member(BOB, 'join');
    room.member(BOB, 'leave');
    expectDenied(() => room.member(BOB, 'join'), /neither invited nor joined/);
  });

  it.each(ALL_VERSIONS)('v%s: a room without join rules is invite-only (as Synapse and gomatrixserverlib read it)', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    expectDenied(() => room.member(BOB, 'join'), /join rule is invite/);
    room.member(BOB, 'invite', room.creator);
    expectAllowed(() => room.member(BOB, 'join'));
  });

  it.each(ALL_VERSIONS)('v%s: join rules without a string join_rule are invite-only', (v) => {
    const room = TestRoom.genesis(v);
    room.send('m.room.join_rules', '', room.creator, { join_rule: 5 });
    expectDenied(() => room.member(BOB, 'join'), /join rule is invite/);
  });

  it.each(['private', 'Public', 'unknown'])('join rule "%s" lets nobody new in, in any version', (rule) => {
    for (const v of ALL_VERSIONS) {
      const room = TestRoom.genesis(v, { joinRule: rule });
      expectDenied(() => room.member(BOB, 'join'), /does not let @bob:b\.test join/);
      // Not even an invited user: only invite, knock, restricted rules honour invites.
      room.member(BOB, 'invite', room.creator);
      expectDenied(() => room.member(BOB, 'join'), /does not let @bob:b\.test join/);
    }
  });

  it.each(ALL_VERSIONS)('v%s: join rule knock behaves as invite from v7, and is unknown before', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock' });
    const knocks = mustVersion(v).knockJoinRule;
    expectDenied(() => room.member(BOB, 'join'), knocks ? /join rule is knock and @bob:b\.test is neither invited nor joined/ : /"knock" does not let/);
    room.member(BOB, 'invite', room.creator);
    expectOutcome(knocks, () => room.member(BOB, 'join'), /"knock" does not let/);
  });
});

describe('restricted joins (v8+) and knock_restricted (v10+)', () => {
  const restrictedVersions = versionsWhere((v) => v.restrictedJoinRule);

  it.each(ALL_VERSIONS)('v%s: restricted is understood from v8 only', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'restricted' });
    const join = () => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: room.creator });
    expectOutcome(mustVersion(v).restrictedJoinRule, join, /"restricted" does not let @bob:b\.test join/);
  });

  it.each(ALL_VERSIONS)('v%s: knock_restricted is understood from v10 only', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock_restricted' });
    const join = () => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: room.creator });
    expectOutcome(mustVersion(v).knockRestrictedJoinRule, join, /"knock_restricted" does not let @bob:b\.test join/);
  });

  describe.each(['restricted', 'knock_restricted'])('join rule %s', (rule) => {
    const versions = versionsWhere((v) => (rule === 'restricted' ? v.restrictedJoinRule : v.knockRestrictedJoinRule));

    it.each(versions)('v%s: a join needs an authorising user', (v) => {
      const room = TestRoom.genesis(v, { joinRule: rule });
      expectDenied(() => room.member(BOB, 'join'), /join_authorised_via_users_server names no user/);
      expectDenied(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: 42 }), /names no user/);
    });

    it.each(versions)('v%s: the authorising user must be joined', (v) => {
      const room = TestRoom.genesis(v, { joinRule: rule, users: { [CAROL]: 100 } });
      expectDenied(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: CAROL }), /authorising user @carol:c\.test is not joined/);
      // Invited is not enough.
      room.member(CAROL, 'invite', room.creator);
      expectDenied(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: CAROL }), /is not joined/);
      room.member(CAROL, 'join');
      expectAllowed(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: CAROL }));
    });

    it.each(versions)('v%s: the authorising user must have the invite level', (v) => {
      const room = TestRoom.genesis(v, { joinRule: 'public', users: { [CAROL]: 49, [DAVE]: 50 }, powerLevels: { invite: 50 } });
      room.member(CAROL, 'join');
      room.member(DAVE, 'join');
      room.send('m.room.join_rules', '', room.creator, { join_rule: rule });
      expectDenied(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: CAROL }), /authorising user @carol:c\.test lacks the invite level \(50\)/);
      expectAllowed(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: DAVE }));
    });

    it.each(versions)('v%s: invited or joined users need no authorising user', (v) => {
      const room = TestRoom.genesis(v, { joinRule: rule });
      room.member(BOB, 'invite', room.creator);
      expectAllowed(() => room.member(BOB, 'join'));
      expectAllowed(() => room.member(BOB, 'join', BOB, { displayname: 'B' }));
      // Even an invalid authorising user does not matter then.
      room.member(CAROL, 'invite', room.creator);
      expectAllowed(() => room.member(CAROL, 'join', CAROL, { join_authorised_via_users_server: '@nobody:x.test' }));
    });

    it.each(versions)('v%s: a banned user stays out, authorised or not', (v) => {
      const room = TestRoom.genesis(v, { joinRule: rule });
      room.member(BOB, 'ban', room.creator);
      expectDenied(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: room.creator }), /is banned/);
    });
  });

  it('v12: a creator authorises joins with infinite power, whatever the invite level', () => {
    const room = TestRoom.genesis('12', { joinRule: 'restricted', powerLevels: { invite: 9000 } });
    expectAllowed(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: room.creator }));
  });

  it.each(restrictedVersions)('v%s: with no power levels event the invite level is 0, so any joined user authorises', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'public' });
    room.member(CAROL, 'join');
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'restricted' });
    expectAllowed(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: CAROL }));
  });
});
