import { describe, expect, it } from 'vitest';
import { encodeBase64Url } from '../base64.js';
import { signingKeyFromSeed, type SigningKey } from '../keys.js';
import { signJson } from '../signing.js';
import type { JsonObject } from '../types.js';
import { decodeUnpaddedBase64, verifyEd25519 } from './ed25519.js';
import { authEventTypesNeeded } from './selection.js';
import { ALL_VERSIONS, BOB, CAROL, TestRoom, expectAllowed, expectDenied, mustVersion } from './testing.js';

const idServerKey = signingKeyFromSeed(Buffer.alloc(32, 1), 'ed25519:0');
const otherKey = signingKeyFromSeed(Buffer.alloc(32, 2), 'ed25519:0');
const TOKEN = 'tok123';

/** A room where the creator has issued a third-party invite with `inviteContent`. */
function roomWithInvite(v: string, inviteContent: JsonObject = { public_key: idServerKey.publicKeyBase64 }): TestRoom {
  const room = TestRoom.genesis(v);
  room.send('m.room.third_party_invite', TOKEN, room.creator, {
    display_name: 'b...@example.com',
    key_validity_url: 'https://id.example/_matrix/identity/v2/pubkey/isvalid',
    ...inviteContent,
  });
  return room;
}

/** The identity server's signed block for `mxid` and `token`. */
function signed(mxid: string, token = TOKEN, key: SigningKey = idServerKey, keyId = key.keyId): JsonObject {
  return signJson({ mxid, token, sender: '@alice:a.test' }, 'id.example', keyId, key) as unknown as JsonObject;
}

function redeem(room: TestRoom, block: JsonObject | null, sender = room.creator, target = BOB): void {
  const third_party_invite: JsonObject = block === null ? {} : { display_name: 'b...@example.com', signed: block };
  room.member(target, 'invite', sender, { third_party_invite });
}

describe('invites redeeming a third-party invite', () => {
  it.each(ALL_VERSIONS)('v%s: allowed with a signature by the invite\'s public_key', (v) => {
    const room = roomWithInvite(v);
    expectAllowed(() => redeem(room, signed(BOB)));
  });

  it('accept any key of public_keys, and URL-safe encoded keys', () => {
    const room = roomWithInvite('10', {
      public_key: otherKey.publicKeyBase64,
      public_keys: [{ public_key: 'not base64!' }, 'junk', { public_key: encodeBase64Url(idServerKey.publicKey) }],
    });
    expectAllowed(() => redeem(room, signed(BOB)));
  });

  it('accept a signature under any ed25519 key ID of any server in signed.signatures', () => {
    const room = roomWithInvite('10');
    const block = signed(BOB, TOKEN, idServerKey, 'ed25519:other');
    const signatures = block['signatures'] as JsonObject;
    block['signatures'] = { 'unrelated.example': { 'ed25519:x': 'AAAA' }, ...signatures };
    expectAllowed(() => redeem(room, block));
  });

  it('ignore signatures under non-ed25519 key IDs', () => {
    const room = roomWithInvite('10');
    const block = signed(BOB);
    const sig = (block['signatures'] as Record<string, Record<string, string>>)['id.example']!['ed25519:0']!;
    block['signatures'] = { 'id.example': { 'curve25519:0': sig } };
    expectDenied(() => redeem(room, block), /no signature in signed verifies/);
  });

  it('refuse a signature by another key', () => {
    const room = roomWithInvite('10');
    expectDenied(() => redeem(room, signed(BOB, TOKEN, otherKey)), /^m\.room\.member invite \(third_party_invite\): no signature in signed verifies/);
  });

  it('refuse a block that was altered after signing', () => {
    const room = roomWithInvite('10');
    // Signed for Carol, then edited to name Bob.
    expectDenied(() => redeem(room, { ...signed(CAROL), mxid: BOB }), /no signature in signed verifies/);
    expectDenied(() => redeem(room, { ...signed(BOB), extra: 'field' }), /no signature in signed verifies/);
  });

  it('ignore `unsigned` in the block, as JSON signatures do', () => {
    const room = roomWithInvite('10');
    expectAllowed(() => redeem(room, { ...signed(BOB), unsigned: { note: 'not covered' } }));
  });

  it('refuse when the invite event offers no usable key', () => {
    expectDenied(() => redeem(roomWithInvite('10', {}), signed(BOB)), /no signature in signed verifies/);
    expectDenied(() => redeem(roomWithInvite('10', { public_key: 'AAAA' }), signed(BOB)), /no signature in signed verifies/);
  });

  it('refuse malformed blocks, each for its rule', () => {
    const room = roomWithInvite('10');
    expectDenied(() => redeem(room, null), /has no signed object/);
    expectDenied(() => room.member(BOB, 'invite', room.creator, { third_party_invite: 'x' }), /has no signed object/);
    expectDenied(() => room.member(BOB, 'invite', room.creator, { third_party_invite: null }), /has no signed object/);
    expectDenied(() => redeem(room, { mxid: BOB, signatures: {} }), /needs both mxid and token/);
    expectDenied(() => redeem(room, { token: TOKEN, signatures: {} }), /needs both mxid and token/);
    expectDenied(() => redeem(room, { mxid: BOB, token: TOKEN }), /no signature in signed verifies/);
    expectDenied(() => redeem(room, { mxid: BOB, token: TOKEN, signatures: 'x' }), /no signature in signed verifies/);
  });

  it('refuse a block for another user, or an unknown token', () => {
    const room = roomWithInvite('10');
    expectDenied(() => redeem(room, signed(CAROL)), /signed\.mxid "@carol:c\.test" is not the invited user @bob:b\.test/);
    expectDenied(() => redeem(room, signed(BOB, 'nope')), /no m\.room\.third_party_invite has the token "nope"/);
    expectDenied(() => redeem(room, signed(BOB, 7 as unknown as string)), /has the token 7/);
  });

  it('refuse a sender other than the one who sent the third-party invite', () => {
    const room = roomWithInvite('10');
    room.member(CAROL, 'join');
    expectDenied(() => redeem(room, signed(BOB), CAROL), /the third-party invite was sent by @alice:a\.test, not @carol:c\.test/);
  });

  it.each(ALL_VERSIONS)('v%s: refuse a banned target, before looking at the block', (v) => {
    const room = roomWithInvite(v);
    room.member(BOB, 'ban', room.creator);
    expectDenied(() => redeem(room, signed(BOB)), /^m\.room\.member invite: @bob:b\.test is banned/);
    expectDenied(() => redeem(room, null), /is banned/);
  });

  it('need neither the sender to be joined nor the invite level: the third-party invite stands for them', () => {
    const room = roomWithInvite('10');
    room.send('m.room.power_levels', '', room.creator, room.powerLevels({}, { invite: 100 }));
    room.member(room.creator, 'leave');
    expectAllowed(() => redeem(room, signed(BOB)));
  });

  it('select the third-party invite as an auth event by its token', () => {
    const event = { type: 'm.room.member', stateKey: BOB, sender: '@alice:a.test', content: { membership: 'invite', third_party_invite: { signed: signed(BOB) } }, roomVersion: mustVersion('10') };
    expect(authEventTypesNeeded(event)).toContainEqual({ type: 'm.room.third_party_invite', stateKey: TOKEN });
  });
});

describe('m.room.third_party_invite events', () => {
  it.each(ALL_VERSIONS)('v%s: need the invite level, not the state level', (v) => {
    const room = TestRoom.genesis(v, { users: { [CAROL]: 50 }, powerLevels: { invite: 50, state_default: 100, events: { 'm.room.third_party_invite': 100 } } });
    room.member(BOB, 'join');
    room.member(CAROL, 'join');
    expectDenied(() => room.send('m.room.third_party_invite', 't', BOB, { public_key: idServerKey.publicKeyBase64 }), /^m\.room\.third_party_invite: @bob:b\.test has level 0, below the invite level 50/);
    expectAllowed(() => room.send('m.room.third_party_invite', 't', CAROL, { public_key: idServerKey.publicKeyBase64 }));
  });

  it.each(ALL_VERSIONS)('v%s: need the sender to be joined', (v) => {
    const room = TestRoom.genesis(v);
    expectDenied(() => room.send('m.room.third_party_invite', 't', BOB, {}), /^sender: @bob:b\.test is not joined/);
  });
});

describe('the ed25519 helper', () => {
  it('verifies node:crypto signatures and refuses wrong lengths, keys and messages', () => {
    const block = signed(BOB);
    const sig = decodeUnpaddedBase64((block['signatures'] as Record<string, Record<string, string>>)['id.example']!['ed25519:0']!)!;
    const text = '{"mxid":"@bob:b.test","sender":"@alice:a.test","token":"tok123"}';
    expect(verifyEd25519(text, sig, idServerKey.publicKey)).toBe(true);
    expect(verifyEd25519(text + ' ', sig, idServerKey.publicKey)).toBe(false);
    expect(verifyEd25519(text, sig, otherKey.publicKey)).toBe(false);
    expect(verifyEd25519(text, sig.subarray(1), idServerKey.publicKey)).toBe(false);
    expect(verifyEd25519(text, sig, idServerKey.publicKey.subarray(1))).toBe(false);
  });

  it('decodes both base64 alphabets, with or without padding, and refuses the rest', () => {
    expect(decodeUnpaddedBase64('+/8')).toEqual(Buffer.from([0xfb, 0xff]));
    expect(decodeUnpaddedBase64('-_8')).toEqual(Buffer.from([0xfb, 0xff]));
    expect(decodeUnpaddedBase64('-_8=')).toEqual(Buffer.from([0xfb, 0xff]));
    expect(decodeUnpaddedBase64('+_8')).toBeUndefined();
    expect(decodeUnpaddedBase64('a b')).toBeUndefined();
    expect(decodeUnpaddedBase64('abcde')).toBeUndefined();
  });
});
