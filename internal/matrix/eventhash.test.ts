import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { decodeBase64 } from './base64.js';
import {
  addContentHash,
  computeContentHash,
  computeEventId,
  computeReferenceHash,
  computeRoomIdOfCreateEvent,
  contentHashMatches,
  eventIdFromReferenceHash,
  referenceHashText,
  roomIdFromCreateEventId,
} from './eventhash.js';
import { signEvent } from './eventsigning.js';
import { signingKeyFromSeed } from './keys.js';
import { roomVersion, type RoomVersion } from './roomversion.js';
import { MatrixProtocolError, type JsonObject } from './types.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

const rv = (id: string): RoomVersion => roomVersion(id)!;
const SPEC_KEY = signingKeyFromSeed(decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1'), 'ed25519:1');

describe('signEvent: the spec appendix "Event Signing" vectors', () => {
  it('signs the minimally-sized event', () => {
    const event = {
      room_id: '!x:domain',
      sender: '@a:domain',
      origin: 'domain',
      origin_server_ts: 1000000,
      signatures: {},
      hashes: {},
      type: 'X',
      content: {},
      prev_events: [],
      auth_events: [],
      depth: 3,
      unsigned: { age_ts: 1000000 },
    };
    const signed = signEvent(event, rv('1'), 'domain', 'ed25519:1', SPEC_KEY);
    expect(signed).toEqual({
      auth_events: [],
      content: {},
      depth: 3,
      hashes: { sha256: '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos' },
      origin: 'domain',
      origin_server_ts: 1000000,
      prev_events: [],
      room_id: '!x:domain',
      sender: '@a:domain',
      signatures: {
        domain: {
          'ed25519:1': 'KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg',
        },
      },
      type: 'X',
      unsigned: { age_ts: 1000000 },
    });
    const sig = decodeBase64((signed.signatures as Record<string, Record<string, string>>).domain!['ed25519:1']!);
    expect(ed.verify(sig, Buffer.from(referenceHashText(signed, rv('1'))), SPEC_KEY.publicKey)).toBe(true);
  });

  it('signs the event with redactable content', () => {
    const event = {
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
    const signed = signEvent(event, rv('1'), 'domain', 'ed25519:1', SPEC_KEY);
    expect(signed).toEqual({
      content: { body: 'Here is the message content' },
      event_id: '$0:domain',
      hashes: { sha256: 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g' },
      origin: 'domain',
      origin_server_ts: 1000000,
      type: 'm.room.message',
      room_id: '!r:domain',
      sender: '@u:domain',
      signatures: {
        domain: {
          'ed25519:1': 'Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA',
        },
      },
      unsigned: { age_ts: 1000000 },
    });
    const sig = decodeBase64((signed.signatures as Record<string, Record<string, string>>).domain!['ed25519:1']!);
    // The signature covers the redacted event: the body is not part of the signed bytes.
    const signedText = referenceHashText(signed, rv('1'));
    expect(signedText).not.toContain('Here is the message content');
    expect(ed.verify(sig, Buffer.from(signedText), SPEC_KEY.publicKey)).toBe(true);
  });
});

// A real event from Synapse's test suite (rust/src/events/utils.rs, test_calculate_event_id),
// with the event IDs Synapse computes for it.
const synapseEvent: JsonObject = {
  auth_events: [
    '$gbHO7IPUHybc7ULFnT7P0r3iWlZFHGmr6zBfEYCUyKw',
    '$hy1eZFYcgNxMFNNBgCD5fyOzyWRcBkxfNcrUI5ZpZlE',
    '$Nt_z68EwFfPqBeHjzEHGsp461Z4EfNEzR-KH5bOYdOY',
  ],
  prev_events: ['$4FbpZrgPQTwoLD9H5y7jcikucCypUOn78mXhQX7WliY'],
  type: 'm.room.message',
  room_id: '!DHmIIVvxFASSFgDGzr:localhost:8008',
  sender: '@tester_b:localhost:8008',
  content: { msgtype: 'm.text', body: 'invited people can see history', 'm.mentions': {} },
  depth: 24,
  origin: 'localhost:8008',
  origin_server_ts: 1731769874137,
  hashes: { sha256: 'FoYV1w3TW/B2mVT0gX2/BZKpCwrrvGXqXFdUhN9LZYU' },
  signatures: {
    'localhost:8008': {
      'ed25519:a_phSE': 'G8cfk/m97sndxMNrEZ2nMMSXkVeJE05G7if4JiVzAwGfD3TwnF/jfSHt2acWrpNqv/aEhZug3WLofc2id+rVBw',
    },
  },
  unsigned: { age_ts: 1731769874137 },
};

describe('event IDs', () => {
  it('match Synapse for format v3 (room versions 4+) and v2 (room version 3)', () => {
    expect(computeEventId(synapseEvent, rv('10'))).toBe('$zRz9jjiT9wZc3Hl9ij_74aCmTjqV3YMlj9sj3Uqxg6o');
    expect(computeEventId(synapseEvent, rv('4'))).toBe('$zRz9jjiT9wZc3Hl9ij_74aCmTjqV3YMlj9sj3Uqxg6o');
    expect(computeEventId(synapseEvent, rv('3'))).toBe('$zRz9jjiT9wZc3Hl9ij/74aCmTjqV3YMlj9sj3Uqxg6o');
  });

  it('are the same for the redacted event', () => {
    const redacted = { ...synapseEvent, content: {}, unsigned: { other: 1 } };
    expect(computeEventId(redacted, rv('10'))).toBe('$zRz9jjiT9wZc3Hl9ij_74aCmTjqV3YMlj9sj3Uqxg6o');
  });

  it('change with the redaction rules: v11 no longer covers origin', () => {
    const v11 = computeEventId(synapseEvent, rv('11'));
    expect(v11).not.toBe('$zRz9jjiT9wZc3Hl9ij_74aCmTjqV3YMlj9sj3Uqxg6o');
    expect(computeEventId({ ...synapseEvent, origin: 'elsewhere' }, rv('11'))).toBe(v11);
    expect(computeEventId({ ...synapseEvent, origin: 'elsewhere' }, rv('10'))).not.toBe(computeEventId(synapseEvent, rv('10')));
  });

  it('are read from the event in format v1 (room versions 1-2)', () => {
    expect(computeEventId({ ...synapseEvent, event_id: '$abc:x' }, rv('1'))).toBe('$abc:x');
    expect(() => computeEventId(synapseEvent, rv('2'))).toThrow(MatrixProtocolError);
    expect(() => eventIdFromReferenceHash(new Uint8Array(32), rv('1'))).toThrow(MatrixProtocolError);
  });

  it('encode the reference hash in the alphabet of the format', () => {
    const hash = Uint8Array.from({ length: 32 }, (_, i) => (i % 2 ? 0xff : 0xfb));
    expect(eventIdFromReferenceHash(hash, rv('3'))).toMatch(/^\$[A-Za-z0-9+/]{43}$/);
    expect(eventIdFromReferenceHash(hash, rv('3'))).toContain('/');
    expect(eventIdFromReferenceHash(hash, rv('4'))).toMatch(/^\$[A-Za-z0-9_-]{43}$/);
    expect(eventIdFromReferenceHash(hash, rv('4'))).toContain('_');
  });
});

describe('content hashes', () => {
  it("match Synapse's event", () => {
    expect(contentHashMatches(synapseEvent, rv('10'))).toBe(true);
    expect(computeContentHash(synapseEvent, rv('10')).toString('base64')).toBe('FoYV1w3TW/B2mVT0gX2/BZKpCwrrvGXqXFdUhN9LZYU=');
  });

  it('ignore unsigned, signatures and hashes, and cover everything else', () => {
    expect(contentHashMatches({ ...synapseEvent, unsigned: {}, signatures: {} }, rv('10'))).toBe(true);
    expect(contentHashMatches({ ...synapseEvent, content: {} }, rv('10'))).toBe(false);
    expect(contentHashMatches({ ...synapseEvent, extra: 1 }, rv('10'))).toBe(false);
  });

  it('fail for missing or malformed hashes', () => {
    expect(contentHashMatches({ ...synapseEvent, hashes: {} }, rv('10'))).toBe(false);
    expect(contentHashMatches({ ...synapseEvent, hashes: { sha256: '!!' } }, rv('10'))).toBe(false);
    expect(contentHashMatches({ ...synapseEvent, hashes: 'x' }, rv('10'))).toBe(false);
  });

  it('addContentHash sets sha256 and keeps other algorithms', () => {
    const hashed = addContentHash({ ...synapseEvent, hashes: { other: 'x' } }, rv('10'));
    expect(hashed.hashes).toEqual({ other: 'x', sha256: 'FoYV1w3TW/B2mVT0gX2/BZKpCwrrvGXqXFdUhN9LZYU' });
  });

  it('enforce canonical numbers from room version 6 and tolerate big integers before', () => {
    const big = { ...synapseEvent, content: { n: 2 ** 60 } };
    expect(() => computeContentHash(big, rv('6'))).toThrow(MatrixProtocolError);
    expect(computeContentHash(big, rv('5'))).toHaveLength(32);
    expect(computeReferenceHash(big, rv('5'))).toHaveLength(32);
  });
});

describe('room IDs of room version 12', () => {
  it('are the create event ID with ! for $', () => {
    const create: JsonObject = { ...synapseEvent, type: 'm.room.create', state_key: '', content: { room_version: '12' } };
    delete create.room_id;
    const id = computeRoomIdOfCreateEvent(create, rv('12'));
    expect(id).toBe('!' + computeEventId(create, rv('12')).slice(1));
    expect(id).toMatch(/^![A-Za-z0-9_-]{43}$/);
    expect(roomIdFromCreateEventId('$abc')).toBe('!abc');
    expect(() => roomIdFromCreateEventId('abc')).toThrow(MatrixProtocolError);
    expect(() => computeRoomIdOfCreateEvent(create, rv('11'))).toThrow(MatrixProtocolError);
  });

  it('ignore a room_id on the create event (redaction drops it)', () => {
    const create: JsonObject = { ...synapseEvent, type: 'm.room.create', state_key: '', content: {} };
    const withoutRoomId = { ...create };
    delete withoutRoomId.room_id;
    expect(computeEventId(create, rv('12'))).toBe(computeEventId(withoutRoomId, rv('12')));
  });
});
