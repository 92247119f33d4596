/**
 * The number rules of canonical JSON per room version: room versions 6+ refuse floats and
 * integers outside ±(2^53-1) in events (rooms/v6 "Canonical JSON"); 1-5 take them, hashed and
 * signed as Synapse's encoder writes them; request signing takes them for any room version.
 */
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { canonicalJson, firstNonCanonicalNumber, pythonFloatRepr } from './canonicaljson.js';
import { Event } from './event.js';
import { buildEvent } from './eventbuilder.js';
import { canonicalOptionsFor, computeContentHash } from './eventhash.js';
import { checkEventHashAndSignatures, signEvent } from './eventsigning.js';
import { generateSigningKey } from './keys.js';
import { allRoomVersions, roomVersion, type RoomVersion } from './roomversion.js';
import { codeOf } from './testutil.js';
import type { JsonObject } from './types.js';
import { signRequest, verifyRequest } from './xmatrix.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

const KEY = generateSigningKey();
const SERVER = 'example.org';
const rv = (id: string): RoomVersion => roomVersion(id)!;
const fake = (n: number): string => '$' + createHash('sha256').update(String(n)).digest('base64url');

/** A signed message PDU of room version 4-5 form (the same bytes as v6+ before v11) whose content holds `extra`. */
function messageWithNumbers(extra: JsonObject): JsonObject {
  const pdu: JsonObject = {
    type: 'm.room.message',
    sender: `@alice:${SERVER}`,
    room_id: `!room:${SERVER}`,
    content: { msgtype: 'm.text', body: 'x', ...extra },
    prev_events: [fake(1)],
    auth_events: [fake(2)],
    depth: 3,
    origin_server_ts: 1_700_000_000_000,
    origin: SERVER,
    hashes: {},
    signatures: {},
  };
  // Signed under the relaxed rules, as a server that does not check numbers (Sytest, an old Synapse) would sign it.
  return signEvent(pdu, rv('5'), SERVER, KEY.keyId, KEY);
}

describe('pythonFloatRepr: the digits Synapse hashes and signs floats with', () => {
  // Expected values are Python 3's repr() of the same doubles.
  it.each([
    [1.1, '1.1'],
    [0.5, '0.5'],
    [-2.5, '-2.5'],
    [123.456, '123.456'],
    [0.1 + 0.2, '0.30000000000000004'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [-0.00012, '-0.00012'],
    [1.5e-7, '1.5e-07'],
    [1e-300, '1e-300'],
    [5e-324, '5e-324'],
    [1234567890123456.7, '1234567890123456.8'],
    [4503599627370495.5, '4503599627370495.5'],
  ])('%d -> %s', (n, expected) => {
    expect(pythonFloatRepr(n)).toBe(expected);
    expect(Number(pythonFloatRepr(n))).toBe(n);
  });
});

describe('canonicalJson: number options', () => {
  it('refuses floats unless allowFloats, and never NaN or the infinities', () => {
    expect(codeOf(() => canonicalJson({ a: 1.1 }))).toBe('not_canonical');
    expect(codeOf(() => canonicalJson({ a: 1.1 }, { allowOutOfRangeIntegers: true }))).toBe('not_canonical');
    expect(canonicalJson({ a: [1.1, -0.5, 1e-7] }, { allowFloats: true })).toBe('{"a":[1.1,-0.5,1e-07]}');
    for (const n of [NaN, Infinity, -Infinity]) {
      expect(codeOf(() => canonicalJson({ a: n }, { allowFloats: true, allowOutOfRangeIntegers: true }))).toBe('not_canonical');
    }
    // allowFloats alone does not open the integer range.
    expect(codeOf(() => canonicalJson({ a: 2 ** 53 }, { allowFloats: true }))).toBe('not_canonical');
  });

  it('follows the room version: strict from 6, relaxed before', () => {
    for (const v of allRoomVersions()) {
      const opts = canonicalOptionsFor(v);
      const n = Number(v.id);
      if (n >= 6) {
        expect(v.strictCanonicalJson).toBe(true);
        expect(codeOf(() => canonicalJson({ a: 1.1 }, opts))).toBe('not_canonical');
        expect(codeOf(() => canonicalJson({ a: 2 ** 53 }, opts))).toBe('not_canonical');
      } else {
        expect(v.strictCanonicalJson).toBe(false);
        expect(canonicalJson({ a: 1.1, b: 2 ** 53 }, opts)).toBe('{"a":1.1,"b":9007199254740992}');
      }
    }
  });
});

describe('firstNonCanonicalNumber', () => {
  it.each([
    ['{"a":1.1}', '1.1', true],
    ['{"a":1.0}', '1.0', true],
    ['{"a":[0, 1e3]}', '1e3', true],
    ['{"a":-2E-2}', '-2E-2', true],
    ['{"a":9007199254740992}', '9007199254740992', true],
    ['{"a":-9007199254740992}', '-9007199254740992', true],
    ['{"a":123456789012345678901234567890}', '123456789012345678901234567890', true],
    ['{"a":1e400}', '1e400', false],
    ['{"a":-1e400}', '-1e400', false],
    ['{"s":"1.5 \\" 2.5","n":3.5}', '3.5', true],
  ])('finds the number in %s', (text, token, finite) => {
    expect(firstNonCanonicalNumber(text)).toMatchObject({ token, finite });
  });

  it.each([
    ['{}'],
    ['{"a":9007199254740991,"b":-9007199254740991,"c":0,"d":-0}'],
    ['{"a":"1.5","b":"9007199254740993","c\\\\":"\\\\","d":[true,false,null]}'],
    ['{"1.5":{"2e10":"x"}}'],
  ])('finds none in %s', (text) => {
    expect(firstNonCanonicalNumber(text)).toBeUndefined();
  });
});

describe('Event.fromPDU: numbers per room version', () => {
  const pduWith = (extra: JsonObject): JsonObject => messageWithNumbers(extra);

  for (const v of allRoomVersions().filter((x) => x.eventFormat === 'v3' && !x.v11EventShape)) {
    it(`room version ${v.id}: ${v.strictCanonicalJson ? 'refuses' : 'accepts'} floats and integers outside ±(2^53-1)`, () => {
      const extras: JsonObject[] = [{ bad_val: 1.1 }, { bad_val: 2 ** 53 }, { bad_val: -(2 ** 53) }, { nested: [{ x: 0.25 }] }];
      for (const extra of extras) {
        const pdu = pduWith(extra);
        if (v.strictCanonicalJson) {
          expect(codeOf(() => Event.fromPDU(pdu, v))).toBe('not_canonical');
        } else {
          const ev = Event.fromPDU(pdu, v);
          // Hash and signature made on the relaxed bytes verify: the event is whole.
          expect(checkEventHashAndSignatures(ev, () => KEY.publicKey)).toBe('ok');
        }
      }
      // Outside content too: a top-level key or unsigned.
      const top = pduWith({});
      expect(codeOf(() => Event.fromPDU({ ...top, bad_val: 1.1 }, v))).toBe(v.strictCanonicalJson ? 'not_canonical' : undefined);
      expect(codeOf(() => Event.fromPDU({ ...top, unsigned: { n: 1.1 } }, v))).toBe(v.strictCanonicalJson ? 'not_canonical' : undefined);
    });
  }

  it('hashes a float of a v5 event as Python writes it', () => {
    const pdu = pduWith({ f: 0.00001 });
    const text = canonicalJson({ ...pdu, hashes: undefined, signatures: undefined }, canonicalOptionsFor(rv('5')));
    expect(text).toContain('"f":1e-05');
    expect(computeContentHash(pdu, rv('5'))).toEqual(createHash('sha256').update(text).digest());
  });

  it('keeps the integer bounds valid in room version 6+', () => {
    for (const id of ['6', '9', '10']) {
      expect(codeOf(() => Event.fromPDU(pduWith({ a: 2 ** 53 - 1, b: -(2 ** 53) + 1 }), id))).toBeUndefined();
    }
  });

  it('builds events with floats in room versions 1-5 and refuses to build them from 6', () => {
    const fields = { type: 'm.room.message', sender: `@alice:${SERVER}`, room_id: `!room:${SERVER}`, content: { body: 'x', f: 1.1 }, prev_events: [], auth_events: [], depth: 1 };
    for (const v of allRoomVersions().filter((x) => !x.roomIdFromCreateEvent)) {
      const build = () => buildEvent(fields, v, SERVER, KEY.keyId, KEY);
      if (v.strictCanonicalJson) expect(codeOf(build)).toBe('not_canonical');
      else expect(build().content['f']).toBe(1.1);
    }
  });
});

describe('request signing with floats in the body', () => {
  it('signs and verifies a body with a float (a v6 event is refused later, by its endpoint, not here)', async () => {
    const req = { method: 'PUT', uri: '/_matrix/federation/v2/send_join/!r:x/$e', origin: 'a.example', destination: 'b.example', content: messageWithNumbers({ bad_val: 1.1 }) };
    const authorization = signRequest(req, KEY.keyId, KEY);
    await expect(verifyRequest({ method: req.method, uri: req.uri, content: req.content, authorization }, 'b.example', () => KEY.publicKey)).resolves.toMatchObject({ origin: 'a.example' });
    // The signature covers the float as written: changing it breaks the signature.
    const changed = { ...req.content, content: { ...(req.content['content'] as JsonObject), bad_val: 1.2 } };
    await expect(verifyRequest({ method: req.method, uri: req.uri, content: changed, authorization }, 'b.example', () => KEY.publicKey)).rejects.toThrow();
  });
});
