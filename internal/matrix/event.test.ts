import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { decodeBase64 } from './base64.js';
import { canonicalJson } from './canonicaljson.js';
import { Event, MAX_PDU_BYTES } from './event.js';
import { buildEvent, type EventFields } from './eventbuilder.js';
import { computeEventId } from './eventhash.js';
import { generateSigningKey } from './keys.js';
import { allRoomVersions, roomVersion, type RoomVersion } from './roomversion.js';
import type { JsonObject, PDUJson } from './types.js';
import { codeOf } from './testutil.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

const rv = (id: string): RoomVersion => roomVersion(id)!;
const KEY = generateSigningKey();
const SERVER = 'example.org';

function hashId(format: 'v2' | 'v3', n: number): string {
  const base = createHash('sha256').update(String(n)).digest('base64').replace(/=+$/, '');
  return '$' + (format === 'v3' ? base.replace(/\+/g, '-').replace(/\//g, '_') : base);
}

/** An event ID of the version's format. */
function idFor(v: RoomVersion, n: number): string {
  return v.eventFormat === 'v1' ? `$ev${n}:${SERVER}` : hashId(v.eventFormat, n);
}

function roomIdFor(v: RoomVersion): string {
  return v.roomIdFromCreateEvent ? '!' + hashId('v3', 999).slice(1) : `!room:${SERVER}`;
}

function messageFields(v: RoomVersion, extra?: Partial<EventFields>): EventFields {
  return {
    type: 'm.room.message',
    sender: `@alice:${SERVER}`,
    room_id: roomIdFor(v),
    content: { msgtype: 'm.text', body: 'hello' },
    prev_events: [idFor(v, 1)],
    auth_events: [idFor(v, 2), idFor(v, 3)],
    depth: 7,
    origin_server_ts: 1_700_000_000_000,
    ...extra,
  };
}

function build(v: RoomVersion, extra?: Partial<EventFields>): Event {
  return buildEvent(messageFields(v, extra), v, SERVER, KEY.keyId, KEY);
}


describe('buildEvent and Event.fromPDU round trip, every room version', () => {
  for (const v of allRoomVersions()) {
    it(`room version ${v.id}`, () => {
      const ev = build(v);
      const json = ev.json;
      // Format-specific fields.
      if (v.eventFormat === 'v1') {
        expect(json.event_id).toMatch(/^\$[A-Za-z0-9]{18}:example\.org$/);
        expect(json.prev_events).toEqual([[idFor(v, 1), {}]]);
        expect(ev.eventId).toBe(json.event_id);
      } else {
        expect(json.event_id).toBeUndefined();
        expect(json.prev_events).toEqual([idFor(v, 1)]);
        expect(ev.eventId).toMatch(v.eventFormat === 'v2' ? /^\$[A-Za-z0-9+/]{43}$/ : /^\$[A-Za-z0-9_-]{43}$/);
      }
      expect(json.origin).toBe(v.v11EventShape ? undefined : SERVER);
      expect(ev.prevEventIds).toEqual([idFor(v, 1)]);
      expect(ev.authEventIds).toEqual([idFor(v, 2), idFor(v, 3)]);
      expect(ev.roomId).toBe(roomIdFor(v));
      expect(ev.contentHashMatches()).toBe(true);

      // What was built parses back to the same event.
      const again = Event.fromPDU(JSON.parse(JSON.stringify(json)), v.id);
      expect(again.eventId).toBe(ev.eventId);
      expect(again.contentHashMatches()).toBe(true);

      // The signature covers the redacted form, checked by an independent implementation.
      const sig = decodeBase64(json.signatures[SERVER]![KEY.keyId]!);
      expect(ed.verify(sig, Buffer.from(ev.signedText()), KEY.publicKey)).toBe(true);
    });
  }

  it('places redacts at the top level before v11 and in content from v11', () => {
    const target = idFor(rv('10'), 9);
    const v10 = build(rv('10'), { type: 'm.room.redaction', content: { reason: 'x' }, redacts: target });
    expect(v10.json.redacts).toBe(target);
    expect(v10.redacts).toBe(target);
    const v11 = build(rv('11'), { type: 'm.room.redaction', content: { reason: 'x' }, redacts: target });
    expect(v11.json.redacts).toBeUndefined();
    expect(v11.content).toEqual({ reason: 'x', redacts: target });
    expect(v11.redacts).toBe(target);
  });

  it('refuses an unsupported room version', () => {
    expect(codeOf(() => build({ ...rv('10'), id: '99' } as unknown as RoomVersion))).toBeUndefined();
    expect(codeOf(() => buildEvent(messageFields(rv('10')), '99', SERVER, KEY.keyId, KEY))).toBe('unsupported_room_version');
    expect(codeOf(() => Event.fromPDU(build(rv('10')).json, 'nope'))).toBe('unsupported_room_version');
  });
});

describe('room version 12 create events', () => {
  const v12 = rv('12');
  const create = (): Event =>
    buildEvent(
      {
        type: 'm.room.create',
        state_key: '',
        sender: `@alice:${SERVER}`,
        content: { room_version: '12' },
        prev_events: [],
        auth_events: [],
        depth: 1,
        origin_server_ts: 1,
      },
      v12,
      SERVER,
      KEY.keyId,
      KEY,
    );

  it('have no room_id and derive the room ID from their event ID', () => {
    const ev = create();
    expect(ev.json.room_id).toBeUndefined();
    expect(ev.roomId).toBe('!' + ev.eventId.slice(1));
    expect(ev.roomId).toMatch(/^![A-Za-z0-9_-]{43}$/);
    expect(ev.toClientEvent().room_id).toBe(ev.roomId);
  });

  it('are rejected with a room_id', () => {
    const json = { ...create().json, room_id: roomIdFor(v12) };
    expect(codeOf(() => Event.fromPDU(json, v12))).toBe('bad_event');
  });

  it('other events need a hashed room ID', () => {
    const ev = create();
    const member = build(v12, { type: 'm.room.member', state_key: `@alice:${SERVER}`, content: { membership: 'join' }, room_id: ev.roomId });
    expect(member.roomId).toBe(ev.roomId);
    expect(codeOf(() => build(v12, { room_id: `!room:${SERVER}` }))).toBe('bad_event');
    expect(codeOf(() => build(v12, { room_id: undefined }))).toBe('bad_event');
  });
});

describe('Event.fromPDU rejections', () => {
  const v10 = rv('10');
  const valid = (): PDUJson => JSON.parse(JSON.stringify(build(v10).json)) as PDUJson;
  const mutate = (f: (j: JsonObject) => void, v: RoomVersion = v10): string | undefined => {
    const json = v === v10 ? valid() : (JSON.parse(JSON.stringify(build(v).json)) as PDUJson);
    f(json as JsonObject);
    return codeOf(() => Event.fromPDU(json, v));
  };

  it('accepts the valid event', () => {
    expect(mutate(() => {})).toBeUndefined();
  });

  it.each<[string, (j: JsonObject) => void, string]>([
    ['not an object', () => {}, 'bad_event'],
    ['a missing type', (j) => delete j.type, 'bad_event'],
    ['a numeric type', (j) => (j.type = 5), 'bad_event'],
    ['a type over 255 bytes', (j) => (j.type = 'x'.repeat(256)), 'bad_event'],
    ['a non-string state_key', (j) => (j.state_key = 1), 'bad_event'],
    ['a state_key over 255 bytes', (j) => (j.state_key = 'é'.repeat(128)), 'bad_event'],
    ['a missing sender', (j) => delete j.sender, 'bad_event'],
    ['a sender without a domain', (j) => (j.sender = '@alice'), 'bad_event'],
    ['a sender with a bad server name', (j) => (j.sender = '@alice:bad_server'), 'bad_event'],
    ['a sender over 255 bytes', (j) => (j.sender = '@' + 'a'.repeat(250) + ':example.org'), 'bad_event'],
    ['a missing room_id', (j) => delete j.room_id, 'bad_event'],
    ['a room_id without a domain', (j) => (j.room_id = '!room'), 'bad_event'],
    ['a room_id with the wrong sigil', (j) => (j.room_id = '#room:x'), 'bad_event'],
    ['a content that is an array', (j) => (j.content = []), 'bad_event'],
    ['a missing content', (j) => delete j.content, 'bad_event'],
    ['a string depth', (j) => (j.depth = '7'), 'bad_event'],
    ['a negative depth', (j) => (j.depth = -1), 'bad_event'],
    ['a fractional depth', (j) => (j.depth = 1.5), 'bad_event'],
    ['a missing origin_server_ts', (j) => delete j.origin_server_ts, 'bad_event'],
    ['a fractional origin_server_ts', (j) => (j.origin_server_ts = 1.5), 'bad_event'],
    ['prev_events not an array', (j) => (j.prev_events = 'x'), 'bad_event'],
    ['21 prev_events', (j) => (j.prev_events = Array.from({ length: 21 }, (_, i) => hashId('v3', i))), 'bad_event'],
    ['11 auth_events', (j) => (j.auth_events = Array.from({ length: 11 }, (_, i) => hashId('v3', i))), 'bad_event'],
    ['a v1-style reference in a v4+ room', (j) => (j.prev_events = [['$a:x', {}]]), 'bad_event'],
    ['a standard-base64 event ID in a v4+ room', (j) => (j.auth_events = ['$' + 'A'.repeat(42) + '+']), 'bad_event'],
    ['a short event ID', (j) => (j.prev_events = ['$abc']), 'bad_event'],
    ['a non-string redacts', (j) => (j.redacts = 5), 'bad_event'],
    ['a malformed redacts', (j) => (j.redacts = 'abc'), 'bad_event'],
    ['missing hashes', (j) => delete j.hashes, 'bad_event'],
    ['hashes without sha256', (j) => (j.hashes = { sha512: 'x' }), 'bad_event'],
    ['missing signatures', (j) => delete j.signatures, 'bad_event'],
    ['signatures of the wrong shape', (j) => (j.signatures = { x: 'y' }), 'bad_event'],
    ['a non-string signature', (j) => (j.signatures = { x: { 'ed25519:a': 1 } }), 'bad_event'],
    ['a non-object unsigned', (j) => (j.unsigned = []), 'bad_event'],
    ['a non-string origin', (j) => (j.origin = 1), 'bad_event'],
    ['a float in content', (j) => ((j.content as JsonObject).n = 0.5), 'not_canonical'],
    ['an unsafe integer in content', (j) => ((j.content as JsonObject).n = 2 ** 53), 'not_canonical'],
    ['a float in unsigned', (j) => (j.unsigned = { n: 0.5 }), 'not_canonical'],
    ['a lone surrogate in content', (j) => ((j.content as JsonObject).s = '\ud800'), 'not_canonical'],
  ])('rejects %s', (name, f, code) => {
    if (name === 'not an object') {
      expect(codeOf(() => Event.fromPDU([], v10))).toBe(code);
      expect(codeOf(() => Event.fromPDU(null, v10))).toBe(code);
      expect(codeOf(() => Event.fromPDU('x', v10))).toBe(code);
      return;
    }
    expect(mutate(f)).toBe(code);
  });

  it('rejects an event over 65,536 bytes of canonical JSON, counting signatures and unsigned', () => {
    const json = valid() as JsonObject;
    json.unsigned = { pad: '' };
    const room = MAX_PDU_BYTES - Buffer.byteLength(canonicalJson(json));
    const pad = (n: number) => 'x'.repeat(n);
    // Fill unsigned so that the whole is exactly at the limit, then one byte over.
    json.unsigned = { pad: pad(room) };
    expect(Buffer.byteLength(canonicalJson(json))).toBe(MAX_PDU_BYTES);
    expect(codeOf(() => Event.fromPDU(json, v10))).toBeUndefined();
    json.unsigned = { pad: pad(room + 1) };
    expect(codeOf(() => Event.fromPDU(json, v10))).toBe('too_large');
    // Multi-byte characters count as bytes, not code units.
    const json2 = valid() as JsonObject;
    json2.content = { body: '日'.repeat(22_000) };
    expect(codeOf(() => Event.fromPDU(json2, v10))).toBe('too_large');
  });

  it('rejects a missing or bad event_id in format v1', () => {
    expect(mutate((j) => delete j.event_id, rv('1'))).toBe('bad_event');
    expect(mutate((j) => (j.event_id = 'abc'), rv('2'))).toBe('bad_event');
    expect(mutate((j) => (j.prev_events = [hashId('v3', 1)]), rv('1'))).toBe('bad_event');
    expect(mutate((j) => (j.prev_events = [['$a:x']]), rv('1'))).toBe('bad_event');
  });

  it('tolerates big integers before room version 6', () => {
    expect(mutate((j) => ((j.content as JsonObject).n = 2 ** 60), rv('5'))).toBeUndefined();
    expect(mutate((j) => ((j.content as JsonObject).n = 2 ** 60), rv('6'))).toBe('not_canonical');
  });

  it('checks the expected event ID', () => {
    const ev = build(v10);
    expect(Event.fromPDU(ev.json, v10, { expectedEventId: ev.eventId }).eventId).toBe(ev.eventId);
    expect(codeOf(() => Event.fromPDU(ev.json, v10, { expectedEventId: hashId('v3', 1) }))).toBe('bad_event');
  });

  it('accepts historical user IDs as sender', () => {
    expect(mutate((j) => (j.sender = '@Old User:example.org'))).toBeUndefined();
  });
});

describe('Event accessors', () => {
  const v10 = rv('10');

  it('computes the event ID once, as computeEventId does', () => {
    const ev = Event.fromPDU(build(v10).json, v10);
    expect(ev.eventId).toBe(computeEventId(ev.json, v10));
    expect(ev.eventId).toBe(ev.eventId);
  });

  it('detects a wrong content hash', () => {
    const ev = build(v10);
    const tampered = Event.fromPDU({ ...ev.json, content: { body: 'changed' } }, v10);
    expect(tampered.contentHashMatches()).toBe(false);
    // Redaction does not change the event ID, so the tampered copy has the same ID.
    expect(tampered.eventId).toBe(ev.eventId);
  });

  it('redacted() keeps the ID and strips content', () => {
    const ev = build(v10, { unsigned: { age_ts: 1 } });
    const r = ev.redacted();
    expect(r.eventId).toBe(ev.eventId);
    expect(r.content).toEqual({});
    expect(r.json.unsigned).toBeUndefined();
    expect(r.contentHashMatches()).toBe(false);
    expect(Event.fromPDU(r.json, v10).eventId).toBe(ev.eventId);
  });

  it('fromStored trusts the given ID', () => {
    const ev = build(v10);
    const stored = Event.fromStored(ev.json, v10, '$given');
    expect(stored.eventId).toBe('$given');
    expect(stored.type).toBe('m.room.message');
  });

  it('withUnsigned replaces unsigned only', () => {
    const ev = build(v10);
    const u = ev.withUnsigned({ age: 5 });
    expect(u.json.unsigned).toEqual({ age: 5 });
    expect(u.eventId).toBe(ev.eventId);
    expect(ev.withUnsigned(undefined).json).not.toHaveProperty('unsigned');
  });

  it('state events', () => {
    const ev = build(v10, { type: 'm.room.topic', state_key: '', content: { topic: 't' } });
    expect(ev.isState()).toBe(true);
    expect(ev.isStateOf('m.room.topic')).toBe(true);
    expect(ev.isStateOf('m.room.topic', 'x')).toBe(false);
    expect(build(v10).isState()).toBe(false);
  });

  it('reference() gives the v1 reference pair', () => {
    const ev = build(rv('1'));
    const [id, hashes] = ev.reference();
    expect(id).toBe(ev.eventId);
    expect(hashes.sha256).toMatch(/^[A-Za-z0-9+/]{43}$/);
    const child = build(rv('1'), { prev_events: [ev.reference()] });
    expect(child.json.prev_events).toEqual([[ev.eventId, hashes]]);
  });
});

describe('toClientEvent', () => {
  it('has the client fields, with or without room_id', () => {
    const v10 = rv('10');
    const ev = build(v10, { type: 'm.room.member', state_key: '@alice:example.org', content: { membership: 'join' }, unsigned: { from: 'remote' } });
    expect(ev.toClientEvent()).toEqual({
      content: { membership: 'join' },
      event_id: ev.eventId,
      origin_server_ts: 1_700_000_000_000,
      room_id: '!room:example.org',
      sender: '@alice:example.org',
      state_key: '@alice:example.org',
      type: 'm.room.member',
    });
    const sync = ev.toClientEvent('sync', { age: 3 });
    expect(sync.room_id).toBeUndefined();
    expect(sync.unsigned).toEqual({ age: 3 });
  });

  it('puts redacts at the top level in every version', () => {
    const target10 = idFor(rv('10'), 9);
    expect(build(rv('10'), { type: 'm.room.redaction', content: {}, redacts: target10 }).toClientEvent().redacts).toBe(target10);
    const r11 = build(rv('11'), { type: 'm.room.redaction', content: {}, redacts: target10 }).toClientEvent();
    expect(r11.redacts).toBe(target10);
    expect(r11.content).toEqual({ redacts: target10 });
  });

  it('redacted client events carry redacted_because', () => {
    const ev = build(rv('10'));
    const because = { type: 'm.room.redaction', event_id: '$r' };
    const out = ev.toRedactedClientEvent('client', because, { age: 1 });
    expect(out.content).toEqual({});
    expect(out.unsigned).toEqual({ age: 1, redacted_because: because });
    expect(out.event_id).toBe(ev.eventId);
  });
});
