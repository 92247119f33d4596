import { describe, it } from 'vitest';
import { generateSigningKey } from '../keys.js';
import { signJson } from '../signing.js';
import type { JsonObject } from '../types.js';
import { TestRoom, expectAllowed, expectDenied } from './testing.js';

const bob = '@bob:b.test';
const idServerKey = generateSigningKey();
const otherKey = generateSigningKey();

function setup() {
  const room = TestRoom.genesis('10');
  room.send('m.room.third_party_invite', 'tok123', room.creator, {
    display_name: 'b...@example.com',
    key_validity_url: 'https://id.example/_matrix/identity/v2/pubkey/isvalid',
    public_key: idServerKey.publicKeyBase64,
  });
  return room;
}

function signedBlock(mxid: string, token: string, key = idServerKey): JsonObject {
  return signJson({ mxid, token }, 'id.example', key.keyId, key) as unknown as JsonObject;
}

describe('invites redeeming a third-party invite', () => {
  it('are allowed with a signature by the invite\'s public key', () => {
    const room = setup();
    expectAllowed(() => room.member(bob, 'invite', room.creator, { third_party_invite: { display_name: 'b', signed: signedBlock(bob, 'tok123') } }));
  });

  it('accept a key listed in public_keys too', () => {
    const room = TestRoom.genesis('10');
    room.send('m.room.third_party_invite', 'tokB', room.creator, { public_key: otherKey.publicKeyBase64, public_keys: [{ public_key: idServerKey.publicKeyBase64 }] });
    expectAllowed(() => room.member(bob, 'invite', room.creator, { third_party_invite: { signed: signedBlock(bob, 'tokB') } }));
  });

  it('refuse a forged signature', () => {
    const room = setup();
    expectDenied(() => room.member(bob, 'invite', room.creator, { third_party_invite: { signed: signedBlock(bob, 'tok123', otherKey) } }), /no signature matches/);
    // Signed for another user, then edited to name bob: the signature no longer matches.
    const altered = { ...signedBlock('@mallory:m.test', 'tok123'), mxid: bob };
    expectDenied(() => room.member(bob, 'invite', room.creator, { third_party_invite: { signed: altered } }), /no signature matches/);
  });

  it('refuse a block for another user, an unknown token, or another sender', () => {
    const room = setup();
    expectDenied(() => room.member(bob, 'invite', room.creator, { third_party_invite: { signed: signedBlock('@x:x.test', 'tok123') } }), /is not the invited user/);
    expectDenied(() => room.member(bob, 'invite', room.creator, { third_party_invite: { signed: signedBlock(bob, 'nope') } }), /no m.room.third_party_invite for token nope/);
    room.member('@carol:c.test', 'join');
    expectDenied(() => room.member(bob, 'invite', '@carol:c.test', { third_party_invite: { signed: signedBlock(bob, 'tok123') } }), /was sent by/);
    expectDenied(() => room.member(bob, 'invite', room.creator, { third_party_invite: { nosigned: true } }), /no signed block/);
    expectDenied(() => room.member(bob, 'invite', room.creator, { third_party_invite: { signed: { mxid: bob } } }), /lacks mxid or token/);
  });

  it('refuse a banned target', () => {
    const room = setup();
    room.member(bob, 'ban', room.creator);
    expectDenied(() => room.member(bob, 'invite', room.creator, { third_party_invite: { signed: signedBlock(bob, 'tok123') } }), /banned/);
  });

  it('m.room.third_party_invite itself needs invite power', () => {
    const room = TestRoom.genesis('10', { powerLevels: { invite: 50 } });
    room.member(bob, 'join');
    expectDenied(() => room.send('m.room.third_party_invite', 't', bob, { public_key: idServerKey.publicKeyBase64 }), /lacks the invite power level/);
  });
});
