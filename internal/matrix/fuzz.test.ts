/**
 * Fuzzing the untrusted-input surface: JSON text and PDUs from the network. Whatever comes in,
 * the only error allowed out is MatrixProtocolError (a TypeError or RangeError would be a
 * 500, or a crash). Seeded, so a failure reproduces; the seed and case are in the message.
 */
import { describe, expect, it } from 'vitest';
import { canonicalJson, parseJson, parseJsonValue } from './canonicaljson.js';
import { Event } from './event.js';
import { buildEvent } from './eventbuilder.js';
import { checkEventHashAndSignatures } from './eventsigning.js';
import { generateSigningKey } from './keys.js';
import { redactClientEvent, redactEvent } from './redaction.js';
import { roomVersion, type RoomVersion } from './roomversion.js';
import { MatrixProtocolError, type JsonObject, type JsonValue } from './types.js';
import { parseXMatrixHeader } from './xmatrix.js';
import { prng } from './testutil.js';


const SEED = 0x5eed;
const VERSIONS = ['1', '3', '5', '6', '10', '11', '12'].map((id) => roomVersion(id) as RoomVersion);
const KEY = generateSigningKey();

/** Runs `fn`; fails the test on any error that is not a MatrixProtocolError. */
function onlyProtocolErrors(label: string, fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof MatrixProtocolError) return false;
    throw new Error(`${label}: unexpected ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
  }
}

/** Everything a received event goes through. */
function exerciseEvent(json: unknown, v: RoomVersion, label: string): boolean {
  return onlyProtocolErrors(label, () => {
    const ev = Event.fromPDU(json, v);
    void ev.eventId;
    void ev.roomId;
    ev.contentHashMatches();
    ev.toClientEvent();
    ev.toRedactedClientEvent('sync', { x: 1 });
    const r = ev.redacted();
    void r.eventId;
    Event.fromPDU(r.json, v);
    try {
      checkEventHashAndSignatures(ev, () => KEY.publicKey);
    } catch (e) {
      if (!(e instanceof MatrixProtocolError) || e.code !== 'bad_signature') throw e;
    }
  });
}

function validEvent(v: RoomVersion, n: number): JsonObject {
  const id = (k: number) =>
    v.eventFormat === 'v1' ? `$e${k}:example.org` : '$' + Buffer.alloc(32, k).toString(v.eventFormat === 'v2' ? 'base64' : 'base64url').replace(/=+$/, '');
  const ev = buildEvent(
    {
      type: n % 3 === 0 ? 'm.room.member' : n % 3 === 1 ? 'm.room.power_levels' : 'm.room.message',
      state_key: n % 3 === 2 ? undefined : '@alice:example.org',
      sender: '@alice:example.org',
      room_id: v.roomIdFromCreateEvent ? '!' + Buffer.alloc(32, 9).toString('base64url').replace(/=+$/, '') : '!room:example.org',
      content:
        n % 3 === 0
          ? { membership: 'join', displayname: 'Alice', join_authorised_via_users_server: '@bob:example.org' }
          : n % 3 === 1
            ? { users: { '@alice:example.org': 100 }, events: { 'm.room.name': 50 }, ban: 50, notifications: { room: 20 } }
            : { body: 'hello "world" \\ 日本語 \u{1F600}', msgtype: 'm.text', n: [1, -2, 3], 'm.relates_to': { event_id: id(7) } },
      prev_events: [id(1), id(2)],
      auth_events: [id(3)],
      depth: 10 + n,
      origin_server_ts: 1_700_000_000_000 + n,
      unsigned: { age_ts: 5 },
    },
    v,
    'example.org',
    KEY.keyId,
    KEY,
  );
  return JSON.parse(JSON.stringify(ev.json)) as JsonObject;
}

// Values that tend to break code that trusts its input.
const NASTY: JsonValue[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53,
  -(2 ** 63),
  1e308,
  '',
  '\ud800',
  'a\udc00b',
  '\u0000',
  'x'.repeat(300),
  '日'.repeat(100),
  '@',
  '$',
  '!',
  '@a:',
  ':',
  '$' + 'A'.repeat(43),
  [],
  [[]],
  [null],
  ['$a:b', {}],
  {},
  { sha256: 5 },
  { '': { '': '' } },
  { __proto__: 1 } as unknown as JsonValue,
];

function randomValue(rand: () => number, depth = 0): JsonValue {
  const r = rand();
  if (depth > 3 || r < 0.5) return NASTY[Math.floor(rand() * NASTY.length)] as JsonValue;
  if (r < 0.75) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
  const o: JsonObject = {};
  for (let i = Math.floor(rand() * 4); i > 0; i--) o[randomKey(rand)] = randomValue(rand, depth + 1);
  return o;
}

const KEYS = ['type', 'state_key', 'sender', 'room_id', 'event_id', 'content', 'prev_events', 'auth_events', 'depth', 'origin_server_ts', 'hashes', 'signatures', 'unsigned', 'redacts', 'origin', 'membership', 'sha256', 'x'];

function randomKey(rand: () => number): string {
  return KEYS[Math.floor(rand() * KEYS.length)] as string;
}

/** Replaces, deletes or adds one field somewhere in the first two levels of an event. */
function mutateObject(ev: JsonObject, rand: () => number): JsonObject {
  const out: JsonObject = { ...ev };
  const key = randomKey(rand);
  const r = rand();
  if (r < 0.2) delete out[key];
  else if (r < 0.6) out[key] = randomValue(rand);
  else {
    const inner = out[key];
    if (typeof inner === 'object' && inner !== null && !Array.isArray(inner)) {
      out[key] = { ...inner, [randomKey(rand)]: randomValue(rand) };
    } else if (Array.isArray(inner)) {
      out[key] = [...inner, randomValue(rand)];
    } else {
      out[key] = randomValue(rand);
    }
  }
  return out;
}

const TEXT_PIECES = ['{', '}', '[', ']', '"', '\\', ':', ',', '-', '0', '1', '9', '.', 'e', 'E', '+', 'true', 'null', ' ', '\\u', 'd800', '"a"', '1e400', '9007199254740993', '\u0000', '日', '\ud83d'];

function mutateText(text: string, rand: () => number): string {
  let s = text;
  for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) {
    const at = Math.floor(rand() * (s.length + 1));
    const r = rand();
    const piece = TEXT_PIECES[Math.floor(rand() * TEXT_PIECES.length)] as string;
    if (r < 0.4) s = s.slice(0, at) + piece + s.slice(at);
    else if (r < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 5));
    else s = s.slice(0, at) + piece + s.slice(at + piece.length);
  }
  return s;
}

describe('fuzz', () => {
  it('random bytes through parseJson, strict and lenient', () => {
    const rand = prng(SEED);
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
      // Make some of them start like JSON so that the parsers get further.
      if (i % 2 === 0 && bytes.length > 0) bytes[0] = 0x7b;
      for (const strict of [true, false]) {
        onlyProtocolErrors(`bytes #${i} strict=${strict}`, () => parseJson(bytes, { strict }));
        onlyProtocolErrors(`text #${i} strict=${strict}`, () => parseJsonValue(bytes.toString('latin1'), { strict }));
      }
    }
  });

  it('mutated event JSON text through parseJson and Event.fromPDU', () => {
    const rand = prng(SEED + 1);
    let parsed = 0;
    for (let i = 0; i < 2500; i++) {
      const v = VERSIONS[i % VERSIONS.length] as RoomVersion;
      const text = mutateText(JSON.stringify(validEvent(v, i % 3)), rand);
      for (const strict of [true, false]) {
        let json: JsonObject | undefined;
        onlyProtocolErrors(`text #${i} v${v.id} strict=${strict}`, () => {
          json = parseJson(text, { strict });
        });
        if (json) {
          parsed++;
          exerciseEvent(json, v, `text #${i} v${v.id} strict=${strict}`);
          onlyProtocolErrors(`canonical #${i}`, () => canonicalJson(json));
        }
      }
    }
    // The mutations must leave enough valid JSON for the event checks to be exercised.
    expect(parsed).toBeGreaterThan(500);
  });

  it('structurally mutated events through Event.fromPDU, redaction and signature checks', () => {
    const rand = prng(SEED + 2);
    let accepted = 0;
    for (let i = 0; i < 2500; i++) {
      const v = VERSIONS[i % VERSIONS.length] as RoomVersion;
      let ev = validEvent(v, i % 3);
      for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) ev = mutateObject(ev, rand);
      if (exerciseEvent(ev, v, `object #${i} v${v.id}`)) accepted++;
      onlyProtocolErrors(`redact #${i}`, () => {
        redactEvent(ev, v);
        redactClientEvent(ev, v, {});
      });
    }
    // Some mutations (unsigned, extra keys) leave the event valid: those paths run too.
    expect(accepted).toBeGreaterThan(50);
  });

  it('deep nesting, huge numbers and duplicate keys', () => {
    const deep = (n: number, open: string, close: string) => open.repeat(n) + close.repeat(n);
    const texts = [
      deep(100_000, '[', ']'),
      deep(5_000, '{"a":', '}').replace(/\}$/, '1}'),
      '{"a":' + deep(600, '[', ']') + '}',
      '{"n":1e400}',
      '{"n":-1e400}',
      '{"n":123456789012345678901234567890}',
      '{"a":1,"a":2}',
      '{"content":{"x":1,"x":1}}',
      '{"a":"\\ud800"}',
      '{"\\udfff":0}',
    ];
    for (const [i, text] of texts.entries()) {
      for (const strict of [true, false]) {
        let value: JsonObject | undefined;
        onlyProtocolErrors(`special #${i}`, () => {
          value = parseJson(text, { strict });
        });
        if (value) {
          for (const v of VERSIONS) {
            const ev = { ...validEvent(v, 2), content: value };
            exerciseEvent(ev, v, `special #${i} as content, v${v.id}`);
          }
          onlyProtocolErrors(`special #${i} canonical`, () => canonicalJson(value));
        }
      }
    }
  });

  it('random Authorization headers through parseXMatrixHeader', () => {
    const rand = prng(SEED + 3);
    const base = 'X-Matrix origin="origin.example",destination="dest.example",key="ed25519:a",sig="c2lnbmF0dXJl"';
    for (let i = 0; i < 3000; i++) {
      onlyProtocolErrors(`header #${i}`, () => parseXMatrixHeader(mutateText(base, rand)));
    }
  });
});
