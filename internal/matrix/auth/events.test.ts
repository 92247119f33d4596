import { describe, it } from 'vitest';
import type { JsonObject } from '../types.js';
import { ALL_VERSIONS, BOB, CAROL, TestRoom, expectAllowed, expectDenied, versionsWhere } from './testing.js';

describe('m.room.aliases (special in v1-v5)', () => {
  const special = versionsWhere((v) => v.specialCasedAliasesAuth);
  const ordinary = versionsWhere((v) => !v.specialCasedAliasesAuth);

  it.each(special)('v%s: state_key must be the sender\'s server; membership and levels do not matter', (v) => {
    const room = TestRoom.genesis(v, { powerLevels: { state_default: 100 } });
    // Bob is not even in the room.
    expectAllowed(() => room.send('m.room.aliases', 'b.test', BOB, { aliases: ['#x:b.test'] }));
    expectDenied(() => room.send('m.room.aliases', 'a.test', BOB, { aliases: [] }), /^m\.room\.aliases: state_key "a\.test" is not the server of @bob:b\.test/);
    expectDenied(() => room.send('m.room.aliases', '', BOB, { aliases: [] }), /is not the server/);
    expectDenied(() => room.send('m.room.aliases', undefined, BOB, { aliases: [] }), /^m\.room\.aliases: no state_key/);
  });

  it.each(special)('v%s: m.federate still applies first', (v) => {
    const room = TestRoom.genesis(v, { createContent: { 'm.federate': false } });
    expectDenied(() => room.send('m.room.aliases', 'b.test', BOB, { aliases: [] }), /^m\.federate/);
  });

  it.each(ordinary)('v%s: an ordinary state event: sender joined and state level needed', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.send('m.room.aliases', 'b.test', BOB, { aliases: [] }), /^sender: @bob:b\.test is not joined/);
    room.member(BOB, 'join');
    expectDenied(() => room.send('m.room.aliases', 'b.test', BOB, { aliases: [] }), /^power level: m\.room\.aliases needs level 50/);
    expectAllowed(() => room.send('m.room.aliases', 'a.test', room.creator, { aliases: [] }));
  });
});

describe('the sender must be joined', () => {
  it.each(ALL_VERSIONS)('v%s: strangers, invitees, leavers and the banned cannot send', (v) => {
    const room = TestRoom.genesis(v);
    const say = (who: string) => () => room.send('m.room.message', undefined, who, { body: 'hi' });
    expectDenied(say(BOB), /^sender: @bob:b\.test is not joined/);
    room.member(BOB, 'invite', room.creator);
    expectDenied(say(BOB), /not joined/);
    room.member(BOB, 'join');
    expectAllowed(say(BOB));
    room.member(BOB, 'leave');
    expectDenied(say(BOB), /not joined/);
    room.member(CAROL, 'join');
    room.member(CAROL, 'ban', room.creator);
    expectDenied(say(CAROL), /not joined/);
  });

  it.each(ALL_VERSIONS)('v%s: a member event without a string membership does not count as joined', (v) => {
    const room = TestRoom.genesis(v);
    room.force('m.room.member', BOB, BOB, { membership: ['join'] });
    expectDenied(() => room.send('m.room.message', undefined, BOB, { body: 'x' }), /^sender:/);
  });
});

describe('the required power level', () => {
  it.each(ALL_VERSIONS)('v%s: events_default for messages, state_default for state, events[type] over both', (v) => {
    const room = TestRoom.genesis(v, { users: { [CAROL]: 60 }, powerLevels: { events: { 'm.room.name': 60, 'm.reaction': 0 }, events_default: 10, state_default: 50 } });
    room.member(BOB, 'join');
    room.member(CAROL, 'join');
    expectDenied(() => room.send('m.room.message', undefined, BOB, { body: 'hi' }), /^power level: m\.room\.message needs level 10; @bob:b\.test has 0/);
    expectAllowed(() => room.send('m.reaction', undefined, BOB, {}));
    expectDenied(() => room.send('m.room.topic', '', BOB, { topic: 't' }), /m\.room\.topic needs level 50/);
    expectDenied(() => room.send('m.room.name', '', BOB, { name: 'n' }), /m\.room\.name needs level 60/);
    expectAllowed(() => room.send('m.room.name', '', CAROL, { name: 'n' }));
    expectAllowed(() => room.send('m.room.message', undefined, CAROL, { body: 'hi' }));
  });

  it.each(ALL_VERSIONS)('v%s: the boundary: a level equal to the required one passes, one below does not', (v) => {
    const room = TestRoom.genesis(v, { users: { [BOB]: 59, [CAROL]: 60 }, powerLevels: { events: { 'm.room.name': 60 } } });
    room.member(BOB, 'join');
    room.member(CAROL, 'join');
    expectDenied(() => room.send('m.room.name', '', BOB, { name: 'n' }), /m\.room\.name needs level 60; @bob:b\.test has 59/);
    expectAllowed(() => room.send('m.room.name', '', CAROL, { name: 'n' }));
  });

  it.each(ALL_VERSIONS)('v%s: users_default raises everyone', (v) => {
    const room = TestRoom.genesis(v, { powerLevels: { users_default: 50 } });
    room.member(BOB, 'join');
    expectAllowed(() => room.send('m.room.topic', '', BOB, { topic: 'mine' }));
  });

  it.each(ALL_VERSIONS)('v%s: without power levels, state needs 50 (MSC1304): only the creator sets it', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'public' });
    room.member(BOB, 'join');
    expectDenied(() => room.send('m.room.topic', '', BOB, { topic: 'anyone may' }), /^power level: m\.room\.topic needs level 50/);
    expectDenied(() => room.send('m.room.join_rules', '', BOB, { join_rule: 'invite' }), /needs level 50/);
    expectAllowed(() => room.send('m.room.topic', '', room.creator, { topic: 'mine' }));
    // Messages still need only events_default 0.
    expectAllowed(() => room.send('m.room.message', undefined, BOB, { body: 'hi' }));
  });

  // Sytest "Remote servers cannot set power levels in rooms without existing powerlevels" and
  // "... should reject attempts by non-creators to set the power levels": the first power levels
  // event must not let any member take the room.
  it.each(ALL_VERSIONS)('v%s: without power levels, a non-creator cannot send the first power levels event', (v) => {
    const room = new TestRoom(v);
    room.member(room.creator, 'join');
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'public' });
    room.member(BOB, 'join');
    expectDenied(() => room.send('m.room.power_levels', '', BOB, { users: { [BOB]: 100 } }), /^power level: m\.room\.power_levels needs level 50/);
    expectDenied(() => room.send('m.room.power_levels', '', BOB, { ban: 50, users: { [BOB]: 1000 } }), /needs level 50/);
    const creatorEntry: JsonObject = room.version.privilegedCreators ? {} : { [room.creator]: 100 };
    expectAllowed(() => room.send('m.room.power_levels', '', room.creator, { users: { ...creatorEntry, [BOB]: 50 } }));
  });

  it.each(ALL_VERSIONS)('v%s: join rules, history visibility, ACLs, encryption follow the ordinary state rule', (v) => {
    const room = TestRoom.genesis(v, { users: { [CAROL]: 50 } });
    room.member(BOB, 'join');
    room.member(CAROL, 'join');
    const events: Array<[string, JsonObject]> = [
      ['m.room.join_rules', { join_rule: 'invite' }],
      ['m.room.history_visibility', { history_visibility: 'joined' }],
      ['m.room.server_acl', { allow: ['*'], deny: ['b.test'] }],
      ['m.room.encryption', { algorithm: 'm.megolm.v1.aes-sha2' }],
      ['m.room.guest_access', { guest_access: 'forbidden' }],
    ];
    for (const [type, content] of events) {
      expectDenied(() => room.send(type, '', BOB, content), new RegExp(`power level: ${type.replace(/\./g, '\\.')} needs level 50`));
      expectAllowed(() => room.send(type, '', CAROL, content));
    }
  });

  it.each(ALL_VERSIONS)('v%s: m.room.server_acl has no effect on auth: a denied server\'s user still passes', (v) => {
    const room = TestRoom.genesis(v);
    room.member(BOB, 'join');
    room.send('m.room.server_acl', '', room.creator, { allow: ['a.test'], deny: ['b.test'], allow_ip_literals: false });
    expectAllowed(() => room.send('m.room.message', undefined, BOB, { body: 'ACLs are applied by federation, not here' }));
    expectAllowed(() => room.member(CAROL, 'join'));
  });
});

describe('state keys naming users', () => {
  it.each(ALL_VERSIONS)('v%s: a state_key starting with @ must be the sender', (v) => {
    const room = TestRoom.genesis(v, { powerLevels: { state_default: 0 } });
    room.member(BOB, 'join');
    expectDenied(() => room.send('org.example.profile', CAROL, BOB, {}), /^state_key: state_key @carol:c\.test is a user ID other than the sender @bob:b\.test/);
    expectDenied(() => room.send('org.example.profile', '@', BOB, {}), /^state_key:/);
    expectDenied(() => room.send('org.example.profile', `${BOB}_device`, BOB, {}), /^state_key:/);
    expectAllowed(() => room.send('org.example.profile', BOB, BOB, {}));
    expectAllowed(() => room.send('org.example.profile', `x${CAROL}`, BOB, {}));
  });

  it.each(ALL_VERSIONS)('v%s: even the room admin cannot write another user\'s keyed state', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.send('org.example.profile', BOB, room.creator, {}), /^state_key:/);
  });

  it.each(ALL_VERSIONS)('v%s: the power level check comes first', (v) => {
    const room = TestRoom.genesis(v);
    room.member(BOB, 'join');
    expectDenied(() => room.send('org.example.profile', CAROL, BOB, {}), /^power level:/);
  });
});

describe('messages and other non-state events', () => {
  it.each(ALL_VERSIONS)('v%s: a member sends messages at events_default 0', (v) => {
    const room = TestRoom.genesis(v);
    room.member(BOB, 'join');
    expectAllowed(() => room.send('m.room.message', undefined, BOB, { body: 'hello' }));
    expectAllowed(() => room.send('m.room.encrypted', undefined, BOB, { algorithm: 'm.megolm.v1.aes-sha2' }));
  });

  it.each(ALL_VERSIONS)('v%s: events_default 50 silences members', (v) => {
    const room = TestRoom.genesis(v, { powerLevels: { events_default: 50 } });
    room.member(BOB, 'join');
    expectDenied(() => room.send('m.room.message', undefined, BOB, { body: 'hello' }), /needs level 50/);
    expectAllowed(() => room.send('m.room.message', undefined, room.creator, { body: 'hello' }));
  });
});
