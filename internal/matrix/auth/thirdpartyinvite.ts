/**
 * An invite that redeems a third-party invite (m.room.member, membership invite, with
 * `content.third_party_invite`): the identity server's `signed` block must name the invited
 * user and the token of an m.room.third_party_invite sent by the same sender, and carry a
 * signature by one of that event's public keys (`public_key`, `public_keys[].public_key`).
 *
 * Whether the identity server has since revoked the key (`key_validity_url`) is not part of the
 * auth rules; callers may check it before accepting the invite.
 */
import { canonicalJson } from '../canonicaljson.js';
import type { AuthEventProvider, EventLike, JsonObject } from '../types.js';
import { deny } from './deny.js';
import { decodeUnpaddedBase64, verifyEd25519 } from './ed25519.js';
import { isJsonObject } from './json.js';
import { stateEventOf } from './stateevent.js';

const RULE = 'm.room.member invite (third_party_invite)';

/** The raw public keys an m.room.third_party_invite offers. Malformed entries are skipped. */
export function thirdPartyInvitePublicKeys(invite: EventLike): Buffer[] {
  const keys: Buffer[] = [];
  const add = (k: unknown): void => {
    if (typeof k !== 'string') return;
    const raw = decodeUnpaddedBase64(k);
    if (raw) keys.push(raw);
  };
  add(invite.content['public_key']);
  const list = invite.content['public_keys'];
  if (Array.isArray(list)) for (const entry of list) if (isJsonObject(entry)) add(entry['public_key']);
  return keys;
}

/** The text a JSON signature covers: canonical JSON without `signatures` and `unsigned`. */
function signedText(signed: JsonObject): string | undefined {
  const rest: JsonObject = {};
  for (const k in signed) {
    const v = signed[k];
    if (k !== 'signatures' && k !== 'unsigned' && v !== undefined) rest[k] = v;
  }
  try {
    return canonicalJson(rest);
  } catch {
    return undefined;
  }
}

/** Whether any ed25519 signature in `signed.signatures` verifies with any of `keys`. */
function signedByAnyOf(signed: JsonObject, keys: readonly Buffer[]): boolean {
  const signatures = signed['signatures'];
  if (!isJsonObject(signatures) || keys.length === 0) return false;
  let text: string | undefined;
  for (const server in signatures) {
    const byKeyId = signatures[server];
    if (!isJsonObject(byKeyId)) continue;
    for (const keyId in byKeyId) {
      const sig = byKeyId[keyId];
      if (!keyId.startsWith('ed25519:') || typeof sig !== 'string') continue;
      const sigBytes = decodeUnpaddedBase64(sig);
      if (!sigBytes) continue;
      text ??= signedText(signed);
      if (text === undefined) return false;
      for (const key of keys) if (verifyEd25519(text, sigBytes, key)) return true;
    }
  }
  return false;
}

/** Rules 5.3.1.2-8 (v1 numbering): the caller has already refused a banned target. */
export function checkThirdPartyInviteRedemption(event: EventLike, target: string, authEvents: AuthEventProvider): void {
  const tpi = event.content['third_party_invite'];
  const signed = isJsonObject(tpi) ? tpi['signed'] : undefined;
  if (!isJsonObject(signed)) deny(RULE, 'content.third_party_invite has no signed object');
  const mxid = signed['mxid'];
  const token = signed['token'];
  if (mxid === undefined || token === undefined) deny(RULE, 'the signed object needs both mxid and token');
  if (mxid !== target) deny(RULE, `signed.mxid ${JSON.stringify(mxid)} is not the invited user ${target}`);
  const invite = typeof token === 'string' ? stateEventOf(authEvents, event, 'm.room.third_party_invite', token) : undefined;
  if (!invite) deny(RULE, `no m.room.third_party_invite has the token ${JSON.stringify(token)}`);
  if (invite.sender !== event.sender) deny(RULE, `the third-party invite was sent by ${invite.sender}, not ${event.sender}`);
  if (!signedByAnyOf(signed, thirdPartyInvitePublicKeys(invite))) {
    deny(RULE, `no signature in signed verifies with a public key of third-party invite ${invite.eventId}`);
  }
}
