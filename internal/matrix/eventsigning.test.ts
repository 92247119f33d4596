import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from './base64.js';
import { Event } from './event.js';
import { buildEvent, type EventFields } from './eventbuilder.js';
import {
  checkEventHashAndSignatures,
  checkEventsHashAndSignatures,
  requiredKeys,
  requiredSigningServers,
  signEvent,
  verifyEventSignatures,
  verifyEventsSignatures,
  type KeyLookup,
} from './eventsigning.js';
import { generateSigningKey, type SigningKey } from './keys.js';
import { roomVersion, type RoomVersion } from './roomversion.js';
import { MatrixProtocolError, type JsonObject } from './types.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

const rv = (id: string): RoomVersion => roomVersion(id)!;
const keys: Record<string, SigningKey> = {
  'a.org': generateSigningKey(),
  'b.org': generateSigningKey(),
  'c.org': generateSigningKey(),
};
const lookup: KeyLookup = (server, keyId) => {
  const k = keys[server];
  return k && k.keyId === keyId ? k.publicKey : undefined;
};

function fields(v: RoomVersion, extra?: Partial<EventFields>): EventFields {
  const id = (n: number) => (v.eventFormat === 'v1' ? `$e${n}:a.org` : '$' + 'A'.repeat(42) + String(n % 10).replace(/\d/, 'Q'));
  return {
    type: 'm.room.message',
    sender: '@u:a.org',
    room_id: '!r:a.org',
    content: { body: 'hi' },
    prev_events: [id(1)],
    auth_events: [id(2)],
    depth: 3,
    origin_server_ts: 1000,
    ...extra,
  };
}

function buildBy(server: string, v: RoomVersion, extra?: Partial<EventFields>): Event {
  const k = keys[server]!;
  const ev = buildEvent(fields(v, extra), v, server, k.keyId, k);
  const sig = decodeBase64(ev.signatures[server]![k.keyId]!);
  expect(ed.verify(sig, Buffer.from(ev.signedText()), k.publicKey)).toBe(true);
  return ev;
}

/** Adds `server`'s signature to an event (as a second server does for restricted joins). */
function cosign(ev: Event, server: string): Event {
  const k = keys[server]!;
  const signed = Event.fromPDU(signEvent(ev.json, ev.roomVersion, server, k.keyId, k), ev.roomVersion);
  // Cross-check the new signature with an independent implementation.
  const sig = decodeBase64(signed.signatures[server]![k.keyId]!);
  expect(ed.verify(sig, Buffer.from(signed.signedText()), k.publicKey)).toBe(true);
  return signed;
}

describe('requiredSigningServers', () => {
  it("is the sender's server", () => {
    expect(requiredSigningServers(buildBy('a.org', rv('10')))).toEqual(['a.org']);
  });

  it("adds the event ID's server in room versions 1-2", () => {
    const ev = buildBy('a.org', rv('1'), { sender: '@u:b.org' });
    expect(requiredSigningServers(ev).sort()).toEqual(['a.org', 'b.org']);
  });

  it('adds the authorising server of a restricted join from room version 8', () => {
    const join = { type: 'm.room.member', state_key: '@u:a.org', content: { membership: 'join', join_authorised_via_users_server: '@admin:b.org' } };
    expect(requiredSigningServers(buildBy('a.org', rv('8'), join)).sort()).toEqual(['a.org', 'b.org']);
    expect(requiredSigningServers(buildBy('a.org', rv('7'), join))).toEqual(['a.org']);
    // Auth rule 4.2 names any membership event carrying the key, not only joins.
    const leave = { ...join, content: { ...join.content, membership: 'leave' } };
    expect(requiredSigningServers(buildBy('a.org', rv('8'), leave)).sort()).toEqual(['a.org', 'b.org']);
    const plain = { ...join, content: { membership: 'join' } };
    expect(requiredSigningServers(buildBy('a.org', rv('8'), plain))).toEqual(['a.org']);
  });

  it('exempts the sender of an invite made from a third-party invite', () => {
    const ev = buildBy('b.org', rv('10'), {
      type: 'm.room.member',
      state_key: '@x:c.org',
      content: { membership: 'invite', third_party_invite: { signed: { mxid: '@x:c.org', token: 't' } } },
    });
    expect(requiredSigningServers(ev)).toEqual([]);
  });
});

describe('requiredKeys', () => {
  it('lists the ed25519 key IDs of each required server, with the validity time from v5', () => {
    const ev = buildBy('a.org', rv('10'));
    const json = { ...ev.json, signatures: { 'a.org': { ...ev.signatures['a.org'], 'curve25519:x': 'AAAA' }, 'z.org': { 'ed25519:z': 'AAAA' } } };
    expect(requiredKeys(Event.fromPDU(json, rv('10')))).toEqual([{ serverName: 'a.org', keyIds: [keys['a.org']!.keyId], validAt: 1000 }]);
    expect(requiredKeys(buildBy('a.org', rv('4')))[0]!.validAt).toBeUndefined();
    expect(requiredKeys(buildBy('b.org', rv('10')))).toEqual([{ serverName: 'a.org', keyIds: [], validAt: 1000 }]);
  });
});

describe('verifyEventSignatures', () => {
  it('accepts an event signed by its sender, and checks it with @noble/ed25519 too', () => {
    const ev = buildBy('a.org', rv('10'));
    expect(verifyEventSignatures(ev, lookup)).toEqual([{ serverName: 'a.org', ok: true, verifiedKeyIds: [keys['a.org']!.keyId] }]);
    const sig = decodeBase64(ev.signatures['a.org']![keys['a.org']!.keyId]!);
    expect(ed.verify(sig, Buffer.from(ev.signedText()), keys['a.org']!.publicKey)).toBe(true);
  });

  it('accepts the redacted copy of a signed event', () => {
    const ev = buildBy('a.org', rv('10'));
    expect(verifyEventSignatures(ev.redacted(), lookup)[0]!.ok).toBe(true);
  });

  it('fails when the sender server did not sign', () => {
    const ev = buildBy('b.org', rv('10')); // sender is @u:a.org, signed by b.org only
    const [check] = verifyEventSignatures(ev, lookup);
    expect(check).toMatchObject({ serverName: 'a.org', ok: false });
    expect(check!.error).toMatch(/not signed by a\.org/);
  });

  it('fails when the signature is wrong', () => {
    const ev = buildBy('a.org', rv('10'));
    const forged = Event.fromPDU({ ...ev.json, depth: 4 }, rv('10'));
    expect(verifyEventSignatures(forged, lookup)[0]).toMatchObject({ ok: false, error: expect.stringMatching(/bad signature/) });
  });

  it('fails when no key of the server is known, and skips unknown keys otherwise', () => {
    const ev = buildBy('a.org', rv('10'));
    expect(verifyEventSignatures(ev, () => undefined)[0]).toMatchObject({ ok: false, error: expect.stringMatching(/known key/) });
    // An extra signature with a key we do not know is ignored.
    const extra = Event.fromPDU(
      { ...ev.json, signatures: { 'a.org': { ...ev.signatures['a.org'], 'ed25519:unknown': 'AAAA' } } },
      rv('10'),
    );
    expect(verifyEventSignatures(extra, lookup)[0]!.ok).toBe(true);
  });

  it('ignores algorithms other than ed25519', () => {
    const ev = buildBy('a.org', rv('10'));
    const json = { ...ev.json, signatures: { 'a.org': { ...ev.signatures['a.org'], 'curve25519:x': 'AAAA' } } };
    expect(verifyEventSignatures(Event.fromPDU(json, rv('10')), lookup)[0]!.ok).toBe(true);
  });

  it('fails on a malformed signature from a known key', () => {
    const ev = buildBy('a.org', rv('10'));
    const json = { ...ev.json, signatures: { 'a.org': { [keys['a.org']!.keyId]: 'not base64!' } } };
    expect(verifyEventSignatures(Event.fromPDU(json, rv('10')), lookup)[0]).toMatchObject({ ok: false, error: expect.stringMatching(/malformed/) });
  });

  it('passes the event time to the key lookup only where key validity is enforced (v5+)', () => {
    const seen: Array<number | undefined> = [];
    const spy: KeyLookup = (s, k, at) => {
      seen.push(at);
      return lookup(s, k, at);
    };
    verifyEventSignatures(buildBy('a.org', rv('4')), spy);
    verifyEventSignatures(buildBy('a.org', rv('5')), spy);
    expect(seen).toEqual([undefined, 1000]);
  });

  it('needs both signatures of a restricted join', () => {
    const join = { type: 'm.room.member', state_key: '@u:a.org', content: { membership: 'join', join_authorised_via_users_server: '@admin:b.org' } };
    const ev = buildBy('a.org', rv('9'), join);
    expect(verifyEventSignatures(ev, lookup).map((c) => [c.serverName, c.ok])).toEqual([
      ['a.org', true],
      ['b.org', false],
    ]);
    const both = cosign(ev, 'b.org');
    expect(verifyEventSignatures(both, lookup).every((c) => c.ok)).toBe(true);
  });
});

describe('checkEventHashAndSignatures', () => {
  it("is 'ok' for an intact event", () => {
    expect(checkEventHashAndSignatures(buildBy('a.org', rv('10')), lookup)).toBe('ok');
  });

  it("is 'redact' when the content was changed but the signature (over the redacted form) holds", () => {
    const ev = buildBy('a.org', rv('10'));
    const changed = Event.fromPDU({ ...ev.json, content: { body: 'changed' } }, rv('10'));
    expect(checkEventHashAndSignatures(changed, lookup)).toBe('redact');
    expect(checkEventHashAndSignatures(ev.redacted(), lookup)).toBe('redact');
  });

  it('throws bad_signature when a signature fails', () => {
    const ev = buildBy('b.org', rv('10'));
    expect(() => checkEventHashAndSignatures(ev, lookup)).toThrow(MatrixProtocolError);
    try {
      checkEventHashAndSignatures(ev, lookup);
    } catch (e) {
      expect((e as MatrixProtocolError).code).toBe('bad_signature');
      expect((e as Error).message).toContain(ev.eventId);
    }
  });
});

describe('batched checks on the thread pool', () => {
  it('agree with the sequential checks, per event', async () => {
    const good = buildBy('a.org', rv('10'));
    const changed = Event.fromPDU({ ...buildBy('a.org', rv('10')).json, content: { body: 'x' } }, rv('10'));
    const forged = Event.fromPDU({ ...buildBy('a.org', rv('10')).json, depth: 99 }, rv('10'));
    const unsigned = buildBy('c.org', rv('10'));
    const join = cosign(
      buildBy('a.org', rv('9'), { type: 'm.room.member', state_key: '@u:a.org', content: { membership: 'join', join_authorised_via_users_server: '@admin:b.org' } }),
      'b.org',
    );
    const events = [good, changed, forged, unsigned, join];
    const batched = await verifyEventsSignatures(events, lookup);
    expect(batched).toEqual(events.map((e) => verifyEventSignatures(e, lookup)));
    const outcomes = await checkEventsHashAndSignatures(events, lookup);
    expect(outcomes[0]).toBe('ok');
    expect(outcomes[1]).toBe('redact');
    expect(outcomes[2]).toBeInstanceOf(MatrixProtocolError);
    expect(outcomes[3]).toBeInstanceOf(MatrixProtocolError);
    expect(outcomes[4]).toBe('ok');
  });
});

describe('signEvent', () => {
  it('keeps existing signatures and other hashes', () => {
    const ev = buildBy('a.org', rv('10'));
    const json: JsonObject = { ...ev.json, hashes: { ...ev.json.hashes, other: 'x' } };
    const signed = signEvent(json, rv('10'), 'b.org', keys['b.org']!.keyId, keys['b.org']!);
    expect(Object.keys(signed.signatures as JsonObject).sort()).toEqual(['a.org', 'b.org']);
    expect((signed.hashes as JsonObject).other).toBe('x');
    const sig = (signed.signatures as Record<string, Record<string, string>>)['b.org']![keys['b.org']!.keyId]!;
    expect(ed.verify(decodeBase64(sig), Buffer.from(Event.fromPDU(signed, rv('10')).signedText()), keys['b.org']!.publicKey)).toBe(true);
    expect(encodeBase64(decodeBase64(sig))).toBe(sig);
  });
});
