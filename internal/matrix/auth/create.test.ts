import { describe, expect, it } from 'vitest';
import type { EventLike, JsonObject } from '../types.js';
import { createInfoOf } from './create.js';
import { checkEventAuth } from './eventauth.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, TestRoom, expectAllowed, expectDenied, expectOutcome, makeEvent, mustVersion, versionsWhere } from './testing.js';

/** The room's create event with some fields replaced. */
function alteredCreate(room: TestRoom, change: Partial<EventLike>): EventLike {
  return { ...room.create, ...change };
}

function withContent(room: TestRoom, content: JsonObject): EventLike {
  return alteredCreate(room, { content });
}

describe('rule 1: m.room.create', () => {
  it.each(ALL_VERSIONS)('v%s: a well-formed create event is allowed with no auth events at all', (v) => {
    const room = new TestRoom(v);
    expectAllowed(() => checkEventAuth(room.create, { get: () => undefined }));
  });

  it.each(ALL_VERSIONS)('v%s: a create event with prev_events is refused', (v) => {
    const room = new TestRoom(v);
    expectDenied(() => room.check(alteredCreate(room, { prevEventIds: ['$earlier'] })), /^m\.room\.create: .*no prev_events/);
  });

  it.each(ALL_VERSIONS)('v%s: the room ID must be on the sender\'s server, except in v12 (hashed room IDs)', (v) => {
    const room = new TestRoom(v);
    const elsewhere = alteredCreate(room, { roomId: '!room:elsewhere.test' });
    expectOutcome(mustVersion(v).roomIdFromCreateEvent, () => room.check(elsewhere), /not on the server of sender/);
  });

  it.each(versionsWhere((v) => !v.roomIdFromCreateEvent))('v%s: a room ID without a server is refused', (v) => {
    const room = new TestRoom(v);
    expectDenied(() => room.check(alteredCreate(room, { roomId: '!nodomain' })), /not on the server of sender/);
  });

  it.each(ALL_VERSIONS)('v%s: content.room_version must be recognised when present', (v) => {
    const room = new TestRoom(v);
    expectDenied(() => room.check(withContent(room, { ...room.create.content, room_version: '99' })), /"99" is not a recognised room version/);
    expectDenied(() => room.check(withContent(room, { ...room.create.content, room_version: 10 })), /10 is not a recognised room version/);
    const { room_version: _omitted, ...withoutVersion } = room.create.content;
    expectAllowed(() => room.check(withContent(room, withoutVersion)));
  });

  it.each(ALL_VERSIONS)('v%s: content.creator is required before v11 only', (v) => {
    const room = new TestRoom(v);
    const noCreator = withContent(room, { room_version: v });
    expectOutcome(mustVersion(v).v11EventShape, () => room.check(noCreator), /no creator property/);
  });

  it('v10: creator need only be present (any value), as the rule says', () => {
    const room = new TestRoom('10');
    expectAllowed(() => room.check(withContent(room, { room_version: '10', creator: 5 })));
  });

  describe('v12 additional_creators (MSC4289)', () => {
    const cases: Array<[string, JsonObject[string], boolean]> = [
      ['absent', null, true],
      ['an empty list', [], true],
      ['a list of user IDs', [BOB, CAROL], true],
      ['a user ID that is also the sender', [ALICE], true],
      ['a string, not a list', BOB, false],
      ['an object', { [BOB]: true }, false],
      ['a list with a non-string', [BOB, 5], false],
      ['a list with a non-user ID', ['bob'], false],
      ['a list with a user ID without server', ['@bob'], false],
      ['a list with a room ID', ['!room:b.test'], false],
      ['a user ID longer than 255 bytes', [`@${'x'.repeat(250)}:b.test`], false],
    ];
    it.each(cases)('%s', (_name, value, allowed) => {
      const room = new TestRoom('12');
      const content: JsonObject = value === null ? { room_version: '12' } : { room_version: '12', additional_creators: value };
      expectOutcome(allowed, () => room.check(withContent(room, content)), /additional_creators/);
    });

    it.each(versionsWhere((v) => !v.privilegedCreators))('v%s ignores additional_creators', (v) => {
      const room = new TestRoom(v);
      expectAllowed(() => room.check(withContent(room, { ...room.create.content, additional_creators: 'not a list' })));
    });
  });

  it.each(ALL_VERSIONS)('v%s: any event of type m.room.create goes by rule 1, state_key or not', (v) => {
    const room = TestRoom.genesis(v);
    // A second "create" later in the room has prev events, so it is refused.
    expectDenied(() => room.send('m.room.create', 'x', room.creator, { creator: room.creator }), /no prev_events/);
    expectDenied(() => room.send('m.room.create', undefined, room.creator, { creator: room.creator }), /no prev_events/);
  });
});

describe('the create event of every other event', () => {
  it.each(ALL_VERSIONS)('v%s: an event with no create event to check against is refused', (v) => {
    const room = TestRoom.genesis(v);
    const msg = room.event('m.room.message', undefined, room.creator, { body: 'hi' });
    const withoutCreate = { get: (t: string, k: string) => (t === 'm.room.create' ? undefined : room.provider.get(t, k)) };
    expectDenied(() => checkEventAuth(msg, withoutCreate), /^create event: no m\.room\.create/);
  });

  it.each(ALL_VERSIONS)('v%s: the create event must be this room\'s', (v) => {
    const room = TestRoom.genesis(v);
    const other = TestRoom.genesis(v);
    const msg = room.event('m.room.message', undefined, room.creator, { body: 'hi' });
    const mixed = { get: (t: string, k: string) => (t === 'm.room.create' ? other.create : room.provider.get(t, k)) };
    expectDenied(() => checkEventAuth(msg, mixed), /^create event: .* is of room/);
  });

  it('v12: the room ID must be "!" + the create event ID (rule 2)', () => {
    const room = TestRoom.genesis('12');
    expect(room.roomId).toBe(`!${room.create.eventId.slice(1)}`);
    expect(createInfoOf(room.create).roomId).toBe(room.roomId);
    const forged = { ...room.event('m.room.message', undefined, room.creator, { body: 'x' }), roomId: '!someotherroom' };
    expectDenied(() => room.check(forged), /^create event:/);
  });

  it.each(ALL_VERSIONS)('v%s: every auth event must be of the same room (rule 2.5/3.5)', (v) => {
    const room = TestRoom.genesis(v, { users: { [BOB]: 50 } });
    room.member(BOB, 'join');
    const other = TestRoom.genesis(v);
    const foreignMember = makeEvent({ roomId: other.roomId, type: 'm.room.member', stateKey: BOB, sender: BOB, content: { membership: 'join' }, roomVersion: room.version });
    const provider = { get: (t: string, k: string) => (t === 'm.room.member' && k === BOB ? foreignMember : room.provider.get(t, k)) };
    const msg = room.event('m.room.message', undefined, BOB, { body: 'x' });
    expectDenied(() => checkEventAuth(msg, provider), /^auth events: m\.room\.member event .* belongs to room/);
  });
});

describe('m.federate', () => {
  it.each(ALL_VERSIONS)('v%s: "m.federate": false keeps every other server out, even to join', (v) => {
    const room = TestRoom.genesis(v, { createContent: { 'm.federate': false } });
    expectAllowed(() => room.member('@carol:a.test', 'join'));
    expectDenied(() => room.member(BOB, 'join'), /^m\.federate: the room does not federate and @bob:b\.test/);
    // Even events that would otherwise be allowed to a member are refused.
    room.force('m.room.member', BOB, BOB, { membership: 'join' });
    expectDenied(() => room.send('m.room.message', undefined, BOB, { body: 'hi' }), /^m\.federate/);
  });

  it.each([
    ['true', true],
    ['absent', undefined],
    ['the string "false"', 'false'],
    ['0', 0],
  ] as const)('m.federate %s lets other servers in', (_name, value) => {
    const createContent: JsonObject = value === undefined ? {} : { 'm.federate': value };
    const room = TestRoom.genesis('10', { createContent });
    expectAllowed(() => room.member(BOB, 'join'));
  });

  it('the local server may still invite a remote user (the rule looks at the sender only)', () => {
    const room = TestRoom.genesis('10', { createContent: { 'm.federate': false } });
    expectAllowed(() => room.member(BOB, 'invite', room.creator));
  });
});
