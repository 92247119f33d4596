import { describe, expect, it } from 'vitest';
import type { EventLike, JsonObject } from '../types.js';
import { checkEventAuth } from './eventauth.js';
import { checkEventAuthAgainstAuthEvents } from './receipt.js';
import { authEventTypesNeeded, authEventsFromList, checkAuthEventsList, type Selectable } from './selection.js';
import { ALL_VERSIONS, BOB, CAROL, TestRoom, expectAllowed, expectDenied, makeEvent, mustVersion, versionsWhere } from './testing.js';

function keys(e: Selectable): string[] {
  return authEventTypesNeeded(e).map((k) => `${k.type}|${k.stateKey}`);
}

function selectable(v: string, type: string, stateKey: string | undefined, content: JsonObject = {}, sender = BOB): Selectable {
  return { type, stateKey, sender, content, roomVersion: mustVersion(v) };
}

describe('auth events selection', () => {
  it.each(ALL_VERSIONS)('v%s: a message cites create (not in v12), power levels and the sender', (v) => {
    const create = mustVersion(v).roomIdFromCreateEvent ? [] : ['m.room.create|'];
    expect(keys(selectable(v, 'm.room.message', undefined))).toEqual([...create, 'm.room.power_levels|', `m.room.member|${BOB}`]);
    expect(keys(selectable(v, 'm.room.topic', ''))).toEqual([...create, 'm.room.power_levels|', `m.room.member|${BOB}`]);
  });

  it.each(ALL_VERSIONS)('v%s: a create event cites nothing', (v) => {
    expect(keys(selectable(v, 'm.room.create', ''))).toEqual([]);
  });

  it.each([
    ['join', true],
    ['invite', true],
    ['knock', true],
    ['leave', false],
    ['ban', false],
  ] as const)('membership %s: target, and join rules: %s', (membership, joinRules) => {
    const got = keys(selectable('10', 'm.room.member', CAROL, { membership }));
    expect(got).toContain(`m.room.member|${CAROL}`);
    expect(got.includes('m.room.join_rules|')).toBe(joinRules);
  });

  it('a self-membership cites the sender once', () => {
    expect(keys(selectable('10', 'm.room.member', BOB, { membership: 'join' }))).toEqual(['m.room.create|', 'm.room.power_levels|', `m.room.member|${BOB}`, 'm.room.join_rules|']);
  });

  it('a third-party invite cites its m.room.third_party_invite, if the token is a string', () => {
    const tpi = (token: unknown) => keys(selectable('10', 'm.room.member', CAROL, { membership: 'invite', third_party_invite: { signed: { token: token as string } } }));
    expect(tpi('tok')).toContain('m.room.third_party_invite|tok');
    expect(tpi(5).some((k) => k.startsWith('m.room.third_party_invite'))).toBe(false);
    const notInvite = keys(selectable('10', 'm.room.member', CAROL, { membership: 'join', third_party_invite: { signed: { token: 'tok' } } }));
    expect(notInvite.some((k) => k.startsWith('m.room.third_party_invite'))).toBe(false);
  });

  it.each(ALL_VERSIONS)('v%s: a join cites its authorising user where restricted rooms exist (v8+)', (v) => {
    const got = keys(selectable(v, 'm.room.member', BOB, { membership: 'join', join_authorised_via_users_server: CAROL }));
    expect(got.includes(`m.room.member|${CAROL}`)).toBe(mustVersion(v).restrictedJoinRule);
    // Only for joins.
    const invite = keys(selectable(v, 'm.room.member', BOB, { membership: 'invite', join_authorised_via_users_server: CAROL }, CAROL));
    expect(invite.filter((k) => k === `m.room.member|${CAROL}`)).toHaveLength(1);
  });
});

describe('authEventsFromList', () => {
  it('keeps the last state event per key and ignores non-state events', () => {
    const room = TestRoom.genesis('10');
    const a = room.member(BOB, 'join');
    const b = room.member(BOB, 'leave');
    const msg = room.event('m.room.member', undefined, BOB, { membership: 'join' });
    const provider = authEventsFromList([a, b, msg]);
    expect(provider.get('m.room.member', BOB)).toBe(b);
    expect(provider.get('m.room.member', '@nobody:x.test')).toBeUndefined();
  });
});

/** A room where Bob joined; returns a message by Bob and the events it should cite. */
function citing(v: string) {
  const room = TestRoom.genesis(v);
  room.member(BOB, 'join');
  const msg = room.event('m.room.message', undefined, BOB, { body: 'x' });
  const pl = room.stateEvent('m.room.power_levels')!;
  const member = room.stateEvent('m.room.member', BOB)!;
  const cited: EventLike[] = room.version.roomIdFromCreateEvent ? [pl, member] : [room.create, pl, member];
  return { room, msg, cited, pl, member };
}

describe('checkAuthEventsList (rule 2 of v1-v11, 3 of v12)', () => {
  it.each(ALL_VERSIONS)('v%s: the selected events pass, in any order', (v) => {
    const { msg, cited } = citing(v);
    expectAllowed(() => checkAuthEventsList(msg, cited));
    expectAllowed(() => checkAuthEventsList(msg, [...cited].reverse()));
  });

  it.each(ALL_VERSIONS)('v%s: duplicates for a (type, state_key) are refused', (v) => {
    const { room, msg, cited } = citing(v);
    const older = room.stateEvent('m.room.power_levels')!;
    const again = { ...older, eventId: `${older.eventId}x` };
    expectDenied(() => checkAuthEventsList(msg, [...cited, again]), /^auth events: two events for \(m\.room\.power_levels, ""\)/);
  });

  it.each(ALL_VERSIONS)('v%s: events the selection would not pick are refused', (v) => {
    const { room, msg, cited } = citing(v);
    expectDenied(() => checkAuthEventsList(msg, [...cited, room.stateEvent('m.room.join_rules')!]), /not one the selection algorithm picks/);
    expectDenied(() => checkAuthEventsList(msg, [...cited, room.stateEvent('m.room.member', room.creator)!]), /not one the selection algorithm picks/);
  });

  it.each(ALL_VERSIONS)('v%s: the create event is required before v12 and refused in v12', (v) => {
    const { room, msg, pl, member } = citing(v);
    if (mustVersion(v).roomIdFromCreateEvent) {
      expectDenied(() => checkAuthEventsList(msg, [room.create, pl, member]), /m\.room\.create, ""\) is not one the selection algorithm picks/);
    } else {
      expectDenied(() => checkAuthEventsList(msg, [pl, member]), /^auth events: no m\.room\.create event among them/);
    }
  });

  it.each(ALL_VERSIONS)('v%s: rejected auth events are refused', (v) => {
    const { msg, cited, member } = citing(v);
    expectDenied(() => checkAuthEventsList(msg, cited, { isRejected: (id) => id === member.eventId }), new RegExp(`${member.eventId.replace(/\$/g, '\\$')} was rejected`));
  });

  it.each(ALL_VERSIONS)('v%s: auth events of another room are refused', (v) => {
    const { msg, cited, member } = citing(v);
    const foreign = { ...member, roomId: '!other:b.test' };
    expectDenied(() => checkAuthEventsList(msg, cited.map((e) => (e === member ? foreign : e))), /belongs to room !other:b\.test/);
  });

  it.each(ALL_VERSIONS)('v%s: non-state auth events are refused', (v) => {
    const { room, msg, cited } = citing(v);
    const message = room.send('m.room.message', undefined, room.creator, { body: 'x' });
    expectDenied(() => checkAuthEventsList(msg, [...cited, message]), /is not a state event/);
  });

  it.each(ALL_VERSIONS)('v%s: create events are left to rule 1', (v) => {
    const { room, pl } = citing(v);
    expectAllowed(() => checkAuthEventsList(room.create, [pl]));
  });

  it.each(versionsWhere((v) => v.restrictedJoinRule))('v%s: a restricted join may cite its authorising user', (v) => {
    const room = TestRoom.genesis(v, { joinRule: 'restricted' });
    const join = room.event('m.room.member', BOB, BOB, { membership: 'join', join_authorised_via_users_server: room.creator });
    const cited = [room.stateEvent('m.room.power_levels')!, room.stateEvent('m.room.join_rules')!, room.stateEvent('m.room.member', room.creator)!];
    if (!room.version.roomIdFromCreateEvent) cited.unshift(room.create);
    expectAllowed(() => checkAuthEventsList(join, cited));
    // ...and the rules then run against a provider over the same list (plus create in v12).
    expectAllowed(() => checkEventAuth(join, authEventsFromList([room.create, ...cited])));
  });
});

describe('checking against the event\'s own auth events', () => {
  it.each(ALL_VERSIONS)('v%s: a provider over the cited events gives the same answer as the state', (v) => {
    const { room, msg, cited } = citing(v);
    expectAllowed(() => checkEventAuth(msg, authEventsFromList([room.create, ...cited])));
    // Without the sender's membership among them, the sender is not joined.
    expectDenied(() => checkEventAuth(msg, authEventsFromList([room.create, room.stateEvent('m.room.power_levels')!])), /^sender:/);
  });

  it('v12: the caller must supply the create event, which auth_events no longer carry', () => {
    const { msg, cited } = citing('12');
    expectDenied(() => checkEventAuth(msg, authEventsFromList(cited)), /^create event: no m\.room\.create/);
  });

  it.each(ALL_VERSIONS)('v%s: events cite older state: a message citing the join before a ban still passes (soft failure is the caller\'s)', (v) => {
    const room = TestRoom.genesis(v);
    const join = room.member(BOB, 'join');
    const cited = [room.create, room.stateEvent('m.room.power_levels')!, join];
    room.member(BOB, 'ban', room.creator);
    const msg = room.event('m.room.message', undefined, BOB, { body: 'sent before the ban arrived' });
    expectAllowed(() => checkEventAuth(msg, authEventsFromList(cited)));
    expectDenied(() => room.check(msg), /^sender:/);
  });
});

describe('makeEvent', () => {
  it('mints unique event IDs in the format of the room version', () => {
    const a = makeEvent({ roomId: '!r:a.test', type: 't', sender: '@u:a.test', roomVersion: mustVersion('1') });
    const b = makeEvent({ roomId: '!r:a.test', type: 't', sender: '@u:a.test', roomVersion: mustVersion('1') });
    expect(a.eventId).not.toBe(b.eventId);
    expect(a.eventId.endsWith(':a.test')).toBe(true);
    expect(makeEvent({ roomId: '!r', type: 't', sender: '@u:a.test', roomVersion: mustVersion('12') }).eventId).not.toContain(':');
  });
});

describe('checkEventAuthAgainstAuthEvents', () => {
  it.each(ALL_VERSIONS)('v%s: list checks, then the rules over the list (v12: plus the create event)', (v) => {
    const { room, msg, cited, member } = citing(v);
    const create = room.create;
    expectAllowed(() => checkEventAuthAgainstAuthEvents(msg, cited, { create }));
    expectDenied(() => checkEventAuthAgainstAuthEvents(msg, [...cited, member], { create }), /^auth events: two events/);
    expectDenied(() => checkEventAuthAgainstAuthEvents(msg, cited.filter((e) => e !== member), { create }), /^sender:/);
    expectDenied(() => checkEventAuthAgainstAuthEvents(msg, cited, { create, isRejected: (id) => id === member.eventId }), /was rejected/);
  });

  it('v12: without the create event the rules cannot run', () => {
    const { msg, cited } = citing('12');
    expectDenied(() => checkEventAuthAgainstAuthEvents(msg, cited), /^create event: no m\.room\.create/);
  });
});
