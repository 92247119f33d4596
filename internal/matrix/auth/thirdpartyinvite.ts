/**
 * Invites that redeem a third-party invite: the `signed` block must name the invited user
 * and a token of an m.room.third_party_invite from the same sender, and carry a signature by
 * one of that event's public keys.
 */
import { signedJsonText, decodeSignature, verifyBytes } from '../signing.js';
import type { AuthEventProvider, EventLike, JsonObject, JsonValue } from '../types.js';
import { deny } from './deny.js';

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Public keys an m.room.third_party_invite offers: `public_key` and each `public_keys[].public_key`. */
function publicKeysOf(invite: EventLike): string[] {
  const keys: string[] = [];
  const single = invite.content['public_key'];
  if (typeof single === 'string') keys.push(single);
  const list = invite.content['public_keys'];
  if (Array.isArray(list)) {
    for (const k of list) if (isObject(k) && typeof k['public_key'] === 'string') keys.push(k['public_key']);
  }
  return keys;
}

function verifiesWith(text: string, sig: string, key: string): boolean {
  const bytes = decodeSignature(sig);
  if (!bytes) return false;
  for (const form of [key, key.replace(/-/g, '+').replace(/_/g, '/')]) {
    try {
      if (verifyBytes(text, bytes, form)) return true;
    } catch {
      // Not a usable key in this encoding; try the next.
    }
  }
  return false;
}

export function checkThirdPartyInvite(event: EventLike, tpi: JsonValue, authEvents: AuthEventProvider): void {
  if (!isObject(tpi) || !isObject(tpi['signed'])) deny('third_party_invite', 'no signed block');
  const signed = tpi['signed'];
  const mxid = signed['mxid'];
  const token = signed['token'];
  if (typeof mxid !== 'string' || typeof token !== 'string') deny('third_party_invite', 'signed block lacks mxid or token');
  if (mxid !== event.stateKey) deny('third_party_invite', `signed mxid ${mxid} is not the invited user ${event.stateKey}`);
  const invite = authEvents.get('m.room.third_party_invite', token);
  if (!invite) deny('third_party_invite', `no m.room.third_party_invite for token ${token}`);
  if (invite.sender !== event.sender) deny('third_party_invite', `the third-party invite was sent by ${invite.sender}, not ${event.sender}`);
  const signatures = signed['signatures'];
  if (!isObject(signatures)) deny('third_party_invite', 'signed block has no signatures');
  const text = signedJsonText(signed);
  const keys = publicKeysOf(invite);
  for (const byServer of Object.values(signatures)) {
    if (!isObject(byServer)) continue;
    for (const sig of Object.values(byServer)) {
      if (typeof sig !== 'string') continue;
      if (keys.some((k) => verifiesWith(text, sig, k))) return;
    }
  }
  deny('third_party_invite', 'no signature matches a public key of the third-party invite');
}
