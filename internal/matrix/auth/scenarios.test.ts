/**
 * Whole-room stories, and the spec's version differences as one explicit table: the versions
 * are written out here (from the spec's room version pages), not read from the feature flags,
 * so that a wrong flag in roomversion.ts shows up as a failure.
 */
import { describe, expect, it } from 'vitest';
import { checkEventAuth } from './eventauth.js';
import { authEventTypesNeeded, authEventsFromList } from './selection.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, DAVE, TestRoom, expectAllowed, expectDenied } from './testing.js';

const range = (from: number, to = 12): string[] => ALL_VERSIONS.filter((v) => Number(v) >= from && Number(v) <= to);

/** Runs `attempt` in a fresh room of version `v`; true when allowed. */
type Probe = (v: string) => boolean;

function allowed(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof Error && e.name === 'AuthError') return false;
    throw e;
  }
}

const probes: Array<[string, string[], Probe]> = [
  ['m.room.aliases special-cased (a non-member sets its server\'s aliases)', range(1, 5), (v) => {
    const room = TestRoom.genesis(v);
    return allowed(() => room.send('m.room.aliases', 'b.test', BOB, { aliases: [] }));
  }],
  ['redaction auth rule (below redact level, other server: refused)', range(1, 2), (v) => {
    const room = TestRoom.genesis(v);
    room.member(BOB, 'join');
    const target = room.send('m.room.message', undefined, room.creator, {});
    return !allowed(() => room.check(room.event('m.room.redaction', undefined, BOB, { redacts: target.eventId }, { redacts: target.eventId })));
  }],
  ['notifications levels limited by the sender\'s level', range(6), (v) => {
    const room = TestRoom.genesis(v, { users: { [BOB]: 50 } });
    room.member(BOB, 'join');
    return !allowed(() => room.send('m.room.power_levels', '', BOB, room.powerLevels({ [BOB]: 50 }, { notifications: { room: 100 } })));
  }],
  ['knock membership', range(7), (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock' });
    return allowed(() => room.member(BOB, 'knock'));
  }],
  ['restricted join rule', range(8), (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'restricted' });
    return allowed(() => room.member(BOB, 'join', BOB, { join_authorised_via_users_server: room.creator }));
  }],
  ['knock_restricted join rule', range(10), (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'knock_restricted' });
    return allowed(() => room.member(BOB, 'knock'));
  }],
  ['string power levels', range(1, 9), (v) => {
    const room = TestRoom.genesis(v);
    return allowed(() => room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [BOB]: '50' })));
  }],
  ['float power levels', range(1, 5), (v) => {
    const room = TestRoom.genesis(v);
    return allowed(() => room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [BOB]: 50.5 })));
  }],
  ['create content needs creator', range(1, 10), (v) => {
    const room = new TestRoom(v);
    return !allowed(() => room.check({ ...room.create, content: { room_version: v } }));
  }],
  ['first join by the create event\'s sender when content.creator differs', range(11), (v) => {
    const room = new TestRoom(v, { createContent: { creator: BOB } });
    return allowed(() => room.member(room.creator, 'join'));
  }],
  ['create room ID must be on the sender\'s server', range(1, 11), (v) => {
    const room = new TestRoom(v);
    return !allowed(() => room.check({ ...room.create, roomId: '!x:elsewhere.test' }));
  }],
  ['creators outrank level 100 (MSC4289)', range(12), (v) => {
    const room = TestRoom.genesis(v, { users: { [CAROL]: 100 } });
    room.member(CAROL, 'join');
    return allowed(() => room.member(CAROL, 'ban', room.creator));
  }],
  ['create event cited in auth events', range(1, 11), (v) => {
    return authEventTypesNeeded({ type: 'm.room.message', stateKey: undefined, sender: BOB, content: {}, roomVersion: new TestRoom(v).version }).some((k) => k.type === 'm.room.create');
  }],
];

describe('the version table', () => {
  it.each(probes.map(([name, versions, probe]) => [name, versions, probe] as const))('%s: exactly in v%j', (_name, versions, probe) => {
    const got = ALL_VERSIONS.filter((v) => probe(v));
    expect(got).toEqual(versions);
  });
});

describe('what the rules read', () => {
  it.each(ALL_VERSIONS)('v%s: only the selected auth event pairs, plus the create event', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'public', users: { [CAROL]: 50 } });
    room.member(CAROL, 'join');
    room.send('m.room.third_party_invite', 'tok', ALICE, { public_key: 'AAAA' });
    const events = [
      room.event('m.room.message', undefined, CAROL, { body: 'x' }),
      room.event('m.room.topic', '', CAROL, { topic: 't' }),
      room.event('m.room.power_levels', '', CAROL, room.powerLevels({ [CAROL]: 50, [BOB]: 5 })),
      room.event('m.room.power_levels', 'odd', CAROL, room.powerLevels({ [CAROL]: 50 })),
      room.event('m.room.member', BOB, BOB, { membership: 'join', join_authorised_via_users_server: CAROL }),
      room.event('m.room.member', BOB, CAROL, { membership: 'invite', third_party_invite: { signed: { mxid: BOB, token: 'tok', signatures: {} } } }),
      room.event('m.room.member', BOB, CAROL, { membership: 'ban' }),
      room.event('m.room.member', BOB, BOB, { membership: 'knock' }),
      room.event('m.room.redaction', undefined, CAROL, {}, { redacts: '$x' }),
      room.event('m.room.aliases', 'b.test', BOB, { aliases: [] }),
    ];
    for (const e of events) {
      const allowedKeys = new Set(['m.room.create|', ...authEventTypesNeeded(e).map((k) => `${k.type}|${k.stateKey}`)]);
      const asked: string[] = [];
      const recording = {
        get: (type: string, stateKey: string) => {
          asked.push(`${type}|${stateKey}`);
          return room.provider.get(type, stateKey);
        },
      };
      allowed(() => checkEventAuth(e, recording));
      expect(asked.filter((k) => !allowedKeys.has(k)), `${e.type} ${e.stateKey ?? ''}`).toEqual([]);
    }
  });
});

describe('a room\'s life, in every version', () => {
  it.each(ALL_VERSIONS)('v%s: create, configure, invite, talk, moderate, leave', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'invite', users: { [CAROL]: 50 } });
    expectAllowed(() => {
      room.send('m.room.name', '', ALICE, { name: 'Test' });
      room.send('m.room.history_visibility', '', ALICE, { history_visibility: 'shared' });
      room.member(CAROL, 'invite', ALICE);
      room.member(CAROL, 'join');
      room.member(BOB, 'invite', CAROL);
      room.member(BOB, 'join');
      room.send('m.room.message', undefined, BOB, { body: 'hello' });
      room.send('m.room.topic', '', CAROL, { topic: 'moderated' });
      room.member(DAVE, 'invite', BOB);
      room.member(DAVE, 'leave');
      room.member(BOB, 'ban', CAROL);
      room.member(BOB, 'leave', CAROL);
      room.member(BOB, 'invite', CAROL);
      room.member(BOB, 'join');
      room.member(BOB, 'leave');
    });
    expectDenied(() => room.send('m.room.message', undefined, BOB, { body: 'after leaving' }), /^sender:/);
    expectDenied(() => room.member(BOB, 'join'), /neither invited nor joined/);
  });

  it.each(ALL_VERSIONS)('v%s: every accepted event also passes against its own selected auth events', (v) => {
    // Replay a room, checking each event both against the state and against a provider built
    // from exactly the events authEventTypesNeeded selects: the two must agree.
    const room = TestRoom.genesis(v, { joinRule: 'public', users: { [CAROL]: 50 } });
    const steps: Array<() => unknown> = [
      () => room.member(BOB, 'join'),
      () => room.member(CAROL, 'join'),
      () => room.send('m.room.message', undefined, BOB, { body: 'x' }),
      () => room.member(DAVE, 'invite', CAROL),
      () => room.member(DAVE, 'join'),
      () => room.member(DAVE, 'ban', CAROL),
      () => room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [CAROL]: 50, [BOB]: 10 })),
      () => room.member(BOB, 'leave', CAROL),
    ];
    for (const step of steps) {
      const before = new Map(room.state);
      const e = step() as ReturnType<TestRoom['send']>;
      const cited = authEventTypesNeeded(e).flatMap((k) => {
        const found = before.get(`${k.type}\u0000${k.stateKey}`);
        return found ? [found] : [];
      });
      expectAllowed(() => checkEventAuth(e, authEventsFromList([room.create, ...cited])));
    }
  });
});
