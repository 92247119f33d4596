import { describe, expect, it } from 'vitest';
import { redactClientEvent, redactContent, redactEvent } from './redaction.js';
import { roomVersion, type RoomVersion } from './roomversion.js';
import type { JsonObject } from './types.js';

const rv = (id: string): RoomVersion => roomVersion(id)!;
const ALL = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];

/** An event with every top-level key the algorithms know, and some they do not. */
function fullEvent(type: string, content: JsonObject): JsonObject {
  return {
    event_id: '$e:x',
    type,
    room_id: '!r:x',
    sender: '@u:x',
    state_key: '',
    content,
    hashes: { sha256: 'h' },
    signatures: { x: { 'ed25519:1': 's' } },
    depth: 5,
    prev_events: ['$p'],
    prev_state: [],
    auth_events: ['$a'],
    origin: 'x',
    origin_server_ts: 10,
    membership: 'join',
    unsigned: { age_ts: 1 },
    redacts: '$z',
    extra: 'gone',
  };
}

describe('redactEvent: top-level keys', () => {
  it.each(ALL)('room version %s keeps exactly the listed keys', (id) => {
    const out = redactEvent(fullEvent('m.room.message', { body: 'x' }), rv(id));
    const base = ['auth_events', 'content', 'depth', 'event_id', 'hashes', 'origin_server_ts', 'prev_events', 'room_id', 'sender', 'signatures', 'state_key', 'type'];
    const expected = Number(id) >= 11 ? base : [...base, 'membership', 'origin', 'prev_state'];
    expect(Object.keys(out).sort()).toEqual(expected.sort());
    expect(out.content).toEqual({});
  });

  it('drops room_id from a room version 12 create event only', () => {
    expect(redactEvent(fullEvent('m.room.create', {}), rv('12')).room_id).toBeUndefined();
    expect(redactEvent(fullEvent('m.room.member', {}), rv('12')).room_id).toBe('!r:x');
    expect(redactEvent(fullEvent('m.room.create', {}), rv('11')).room_id).toBe('!r:x');
  });

  it('does not modify its input and shares kept values', () => {
    const ev = fullEvent('m.room.message', { body: 'x' });
    const snapshot = JSON.stringify(ev);
    const out = redactEvent(ev, rv('10'));
    expect(JSON.stringify(ev)).toBe(snapshot);
    expect(out.prev_events).toBe(ev.prev_events);
  });

  it('replaces a non-object content with {}', () => {
    expect(redactEvent({ type: 'm.room.member', content: 'x' }, rv('10')).content).toEqual({});
    expect(redactEvent({ type: 'm.room.member' }, rv('10')).content).toEqual({});
  });
});

describe('redactEvent: content per event type and version', () => {
  const member = { membership: 'join', displayname: 'A', join_authorised_via_users_server: '@v:x', third_party_invite: { display_name: 'd', signed: { mxid: '@u:x', token: 't' } } };
  const create = { creator: '@u:x', room_version: '1', 'm.federate': false };
  const joinRules = { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: '!o:x' }], other: 1 };
  const powerLevels = { ban: 50, events: {}, events_default: 0, kick: 50, redact: 50, state_default: 50, users: {}, users_default: 0, invite: 0, notifications: { room: 50 } };
  const aliases = { aliases: ['#a:x'], other: 1 };
  const history = { history_visibility: 'shared', other: 1 };
  const redaction = { redacts: '$z', reason: 'spam' };

  const cases: Array<[string, JsonObject, Record<string, JsonObject>]> = [
    ['m.room.member', member, {
      '1': { membership: 'join' },
      '8': { membership: 'join' },
      '9': { membership: 'join', join_authorised_via_users_server: '@v:x' },
      '10': { membership: 'join', join_authorised_via_users_server: '@v:x' },
      '11': { membership: 'join', join_authorised_via_users_server: '@v:x', third_party_invite: { signed: { mxid: '@u:x', token: 't' } } },
      '12': { membership: 'join', join_authorised_via_users_server: '@v:x', third_party_invite: { signed: { mxid: '@u:x', token: 't' } } },
    }],
    ['m.room.create', create, {
      '1': { creator: '@u:x' },
      '10': { creator: '@u:x' },
      '11': create,
      '12': create,
    }],
    ['m.room.join_rules', joinRules, {
      '1': { join_rule: 'restricted' },
      '7': { join_rule: 'restricted' },
      '8': { join_rule: 'restricted', allow: joinRules.allow },
      '11': { join_rule: 'restricted', allow: joinRules.allow },
    }],
    ['m.room.power_levels', powerLevels, {
      '1': { ban: 50, events: {}, events_default: 0, kick: 50, redact: 50, state_default: 50, users: {}, users_default: 0 },
      '10': { ban: 50, events: {}, events_default: 0, kick: 50, redact: 50, state_default: 50, users: {}, users_default: 0 },
      '11': { ban: 50, events: {}, events_default: 0, kick: 50, redact: 50, state_default: 50, users: {}, users_default: 0, invite: 0 },
    }],
    ['m.room.aliases', aliases, {
      '1': { aliases: ['#a:x'] },
      '5': { aliases: ['#a:x'] },
      '6': {},
      '11': {},
    }],
    ['m.room.history_visibility', history, {
      '1': { history_visibility: 'shared' },
      '12': { history_visibility: 'shared' },
    }],
    ['m.room.redaction', redaction, {
      '1': {},
      '10': {},
      '11': { redacts: '$z' },
    }],
    ['m.room.topic', { topic: 'x' }, { '1': {}, '12': {} }],
  ];

  for (const [type, content, byVersion] of cases) {
    for (const [version, expected] of Object.entries(byVersion)) {
      it(`${type} in room version ${version}`, () => {
        expect(redactContent(type, content, rv(version))).toEqual(expected);
        expect(redactEvent({ type, content }, rv(version)).content).toEqual(expected);
      });
    }
  }

  it('v11 keeps an object third_party_invite without signed as {}, and drops a non-object one', () => {
    expect(redactContent('m.room.member', { membership: 'invite', third_party_invite: { display_name: 'x' } }, rv('11'))).toEqual({
      membership: 'invite',
      third_party_invite: {},
    });
    expect(redactContent('m.room.member', { membership: 'invite', third_party_invite: 'x' }, rv('11'))).toEqual({
      membership: 'invite',
    });
  });

  it('the spec event signing example redacts to its essential keys (room version 1)', () => {
    const ev = {
      content: { body: 'Here is the message content' },
      event_id: '$0:domain',
      origin: 'domain',
      origin_server_ts: 1000000,
      type: 'm.room.message',
      room_id: '!r:domain',
      sender: '@u:domain',
      signatures: {},
      unsigned: { age_ts: 1000000 },
    };
    expect(redactEvent(ev, rv('1'))).toEqual({
      content: {},
      event_id: '$0:domain',
      origin: 'domain',
      origin_server_ts: 1000000,
      type: 'm.room.message',
      room_id: '!r:domain',
      sender: '@u:domain',
      signatures: {},
    });
  });
});

describe('redactClientEvent', () => {
  const clientEvent = {
    content: { body: 'secret', msgtype: 'm.text' },
    event_id: '$e',
    origin_server_ts: 5,
    room_id: '!r:x',
    sender: '@u:x',
    type: 'm.room.message',
    unsigned: { age: 100, transaction_id: 't', prev_content: { body: 'old' } },
  };

  it('keeps the client fields and adds redacted_because', () => {
    const because = { type: 'm.room.redaction', event_id: '$r', sender: '@m:x', content: {}, origin_server_ts: 9 };
    expect(redactClientEvent(clientEvent, rv('10'), because)).toEqual({
      content: {},
      event_id: '$e',
      origin_server_ts: 5,
      room_id: '!r:x',
      sender: '@u:x',
      type: 'm.room.message',
      unsigned: { age: 100, redacted_because: because },
    });
  });

  it('keeps the top-level redacts of a v11 redaction for older clients, not before', () => {
    const r = { type: 'm.room.redaction', content: { redacts: '$z', reason: 'x' }, redacts: '$z', event_id: '$r', sender: '@u:x', origin_server_ts: 1 };
    expect(redactClientEvent(r, rv('11'))).toEqual({ type: 'm.room.redaction', content: { redacts: '$z' }, redacts: '$z', event_id: '$r', sender: '@u:x', origin_server_ts: 1 });
    expect(redactClientEvent({ ...r, content: { reason: 'x' } }, rv('10')).redacts).toBeUndefined();
  });

  it('omits an empty unsigned', () => {
    expect(redactClientEvent({ ...clientEvent, unsigned: { transaction_id: 't' } }, rv('10')).unsigned).toBeUndefined();
  });
});
