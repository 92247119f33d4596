import { describe, expect, it } from 'vitest';
import { roomVersion } from '../roomversion.js';
import { TestRoom, allVersions, expectAllowed, expectDenied } from './testing.js';

describe('m.room.create', () => {
  it.each(allVersions)('v%s: a well-formed create event is allowed', (v) => {
    const room = new TestRoom(v);
    expectAllowed(() => room.check(room.create));
  });

  it.each(allVersions)('v%s: a create event with prev_events is refused', (v) => {
    const room = new TestRoom(v);
    const bad = { ...room.create, prevEventIds: ['$x'] };
    expectDenied(() => room.check(bad), /create: the create event has prev_events/);
  });

  it.each(allVersions.filter((v) => v !== '12'))('v%s: the room ID must be on the sender\'s server', (v) => {
    const room = new TestRoom(v);
    expectDenied(() => room.check({ ...room.create, roomId: '!room:elsewhere.test' }), /not on the sender's server/);
  });

  it.each(allVersions)('v%s: an unknown room_version is refused', (v) => {
    const room = new TestRoom(v);
    expectDenied(() => room.check({ ...room.create, content: { ...room.create.content, room_version: '99' } }), /unknown room_version/);
  });

  it.each([
    ['10', true],
    ['11', false],
    ['12', false],
  ])('v%s: content without creator refused: %s', (v, refused) => {
    const room = new TestRoom(v);
    const noCreator = { ...room.create, content: { room_version: v } };
    if (refused) expectDenied(() => room.check(noCreator), /no creator/);
    else expectAllowed(() => room.check(noCreator));
  });

  it('v12: additional_creators must be user IDs', () => {
    const room = new TestRoom('12');
    expectAllowed(() => room.check({ ...room.create, content: { room_version: '12', additional_creators: ['@bob:b.test'] } }));
    expectDenied(() => room.check({ ...room.create, content: { room_version: '12', additional_creators: ['bob'] } }), /additional_creators/);
    expectDenied(() => room.check({ ...room.create, content: { room_version: '12', additional_creators: '@bob:b.test' } }), /additional_creators/);
  });

  it('v11 does not read additional_creators', () => {
    const room = new TestRoom('11');
    expectAllowed(() => room.check({ ...room.create, content: { room_version: '11', additional_creators: 'junk' } }));
  });
});

describe('the create event of other events', () => {
  it.each(allVersions)('v%s: an event needs a create event in its auth state', (v) => {
    const room = TestRoom.genesis(v);
    const e = room.event('m.room.message', undefined, room.creator, { body: 'hi' });
    expectDenied(() => room.check.call({ state: new Map(), check: room.check } as unknown as TestRoom, e), /no m.room.create/);
  });

  it('v12: the room ID must be derived from the create event', () => {
    const room = TestRoom.genesis('12');
    const e = { ...room.event('m.room.message', undefined, room.creator, { body: 'x' }), roomId: '!someotherroom' };
    expectDenied(() => room.check(e), /not the room of create event/);
    expect(roomVersion('12')!.roomIdFromCreateEvent).toBe(true);
  });

  it('pre-v12: the create event must be of the same room', () => {
    const room = TestRoom.genesis('10');
    const e = { ...room.event('m.room.message', undefined, room.creator, { body: 'x' }), roomId: '!other:a.test' };
    expectDenied(() => room.check(e), /create event belongs to/);
  });

  it.each(allVersions)('v%s: m.federate false keeps other servers out', (v) => {
    const room = new TestRoom(v, '@alice:a.test', { 'm.federate': false });
    room.member(room.creator, 'join');
    room.send('m.room.join_rules', '', room.creator, { join_rule: 'public' });
    expectAllowed(() => room.member('@carol:a.test', 'join'));
    expectDenied(() => room.member('@bob:b.test', 'join'), /m.federate/);
  });
});
