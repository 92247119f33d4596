import { describe, expect, it } from 'vitest';
import { roomVersion } from '../roomversion.js';
import { stateTuple } from '../types.js';
import { authEventTypesNeeded, authEventsFromList, checkAuthEventsList } from './selection.js';
import { TestRoom, allVersions, expectAllowed, expectDenied } from './testing.js';

const bob = '@bob:b.test';

describe('m.room.aliases', () => {
  it.each([
    ['1', true],
    ['5', true],
    ['6', false],
  ])('v%s: special-cased: %s', (v, special) => {
    const room = TestRoom.genesis(v);
    room.member(bob, 'join');
    // Bob has no state power; in v1-v5 aliases for his own server are his to set anyway.
    const own = () => room.send('m.room.aliases', 'b.test', bob, { aliases: ['#x:b.test'] });
    if (special) {
      expectAllowed(own);
      expectDenied(() => room.send('m.room.aliases', 'a.test', bob, { aliases: [] }), /not the sender's server/);
    } else {
      expectDenied(own, /power/);
    }
  });
});

describe('m.room.redaction', () => {
  it.each([
    ['1', true],
    ['2', true],
    ['3', false],
    ['11', false],
  ])('v%s: redaction rule applies: %s', (v, rule) => {
    const room = TestRoom.genesis(v, { powerLevels: { redact: 50 } });
    room.member(bob, 'join');
    const target = room.send('m.room.message', undefined, room.creator, { body: 'x' });
    const redact = () => room.send('m.room.redaction', undefined, bob, {}, { redacts: target.eventId });
    if (rule) {
      expectDenied(redact, /m.room.redaction/);
      const own = room.send('m.room.message', undefined, bob, { body: 'mine' });
      expectAllowed(() => room.send('m.room.redaction', undefined, bob, {}, { redacts: own.eventId }));
    } else {
      // Checked when applied, not by the auth rules.
      expectAllowed(redact);
    }
  });
});

describe('auth events selection', () => {
  const v10 = roomVersion('10')!;
  const v12 = roomVersion('12')!;
  const keys = (e: Parameters<typeof authEventTypesNeeded>[0]) => authEventTypesNeeded(e).map((k) => `${k.type}|${k.stateKey}`);

  it('picks create, power levels and the sender for a message', () => {
    expect(keys({ type: 'm.room.message', stateKey: undefined, sender: bob, content: {}, roomVersion: v10 })).toEqual([
      'm.room.create|',
      'm.room.power_levels|',
      `m.room.member|${bob}`,
    ]);
  });

  it('adds target, join rules, third-party invite and authorising user for memberships', () => {
    expect(
      keys({
        type: 'm.room.member',
        stateKey: '@t:t.test',
        sender: bob,
        content: { membership: 'invite', third_party_invite: { signed: { token: 'tok' } } },
        roomVersion: v10,
      }),
    ).toEqual(['m.room.create|', 'm.room.power_levels|', `m.room.member|${bob}`, 'm.room.member|@t:t.test', 'm.room.join_rules|', 'm.room.third_party_invite|tok']);
    expect(keys({ type: 'm.room.member', stateKey: bob, sender: bob, content: { membership: 'join', join_authorised_via_users_server: '@a:a.test' }, roomVersion: v10 })).toContain(
      'm.room.member|@a:a.test',
    );
  });

  it('v12 cites no create event; create events cite nothing', () => {
    expect(keys({ type: 'm.room.message', stateKey: undefined, sender: bob, content: {}, roomVersion: v12 })).not.toContain('m.room.create|');
    expect(keys({ type: 'm.room.create', stateKey: '', sender: bob, content: {}, roomVersion: v10 })).toEqual([]);
  });

  it('checks an event\'s own auth events list', () => {
    const room = TestRoom.genesis('10');
    room.member(bob, 'join');
    const msg = room.event('m.room.message', undefined, bob, { body: 'x' });
    const create = room.state.get(stateTuple('m.room.create', ''))!;
    const pl = room.state.get(stateTuple('m.room.power_levels', ''))!;
    const member = room.state.get(stateTuple('m.room.member', bob))!;
    const joinRules = room.state.get(stateTuple('m.room.join_rules', ''))!;
    expectAllowed(() => checkAuthEventsList(msg, [create, pl, member]));
    expectDenied(() => checkAuthEventsList(msg, [create, pl, member, member]), /two m.room.member/);
    expectDenied(() => checkAuthEventsList(msg, [create, pl, member, joinRules]), /not one the event should cite/);
    expectDenied(() => checkAuthEventsList(msg, [pl, member]), /no m.room.create/);
    const room12 = TestRoom.genesis('12');
    const msg12 = room12.event('m.room.message', undefined, room12.creator, {});
    expectDenied(() => checkAuthEventsList(msg12, [room12.create]), /not one the event should cite/);
  });

  it('authEventsFromList keeps the last event per key', () => {
    const room = TestRoom.genesis('10');
    const a = room.member(bob, 'join');
    const b = room.member(bob, 'leave');
    expect(authEventsFromList([a, b]).get('m.room.member', bob)).toBe(b);
    expect(authEventsFromList([a]).get('m.room.member', '@nobody:x')).toBeUndefined();
  });
});

describe('every version runs a whole room', () => {
  it.each(allVersions)('v%s: create, join, configure, invite, talk, leave', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'invite' });
    expectAllowed(() => {
      room.send('m.room.name', '', room.creator, { name: 'Test' });
      room.member(bob, 'invite', room.creator);
      room.member(bob, 'join');
      room.send('m.room.message', undefined, bob, { body: 'hello' });
      room.member(bob, 'leave');
    });
    expectDenied(() => room.send('m.room.message', undefined, bob, { body: 'after leaving' }), /not joined/);
  });
});
