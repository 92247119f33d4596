/**
 * Redeeming a third-party invite: the identity server's `signed` object (mxid, token,
 * signatures) must carry a signature by one of the public keys of the room's
 * m.room.third_party_invite, and the identity server must still vouch for that key
 * (its `key_validity_url`), else the invite was revoked. The auth rules check the signature
 * again; only this check can ask the identity server, which auth rules may not do.
 */
import { decodeUnpaddedBase64, verifyEd25519 } from '../matrix/auth/ed25519.js';
import { signedJsonText } from '../matrix/index.js';
import type { IdentityServerClient, InvitePublicKey } from './client.js';
import { IdentityServerError } from './client.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The invite cannot be redeemed; `message` says why. */
export class ThirdPartyInviteRejected extends Error {
  override readonly name = 'ThirdPartyInviteRejected';
}

/**
 * The keys an m.room.third_party_invite offers, each with its validity URL: the top-level
 * `public_key` (with the top-level `key_validity_url`) and every entry of `public_keys`.
 */
export function invitePublicKeys(content: Json): InvitePublicKey[] {
  const keys: InvitePublicKey[] = [];
  const add = (key: unknown, url: unknown): void => {
    if (typeof key !== 'string') return;
    keys.push({ public_key: key, ...(typeof url === 'string' ? { key_validity_url: url } : {}) });
  };
  add(content['public_key'], content['key_validity_url']);
  const list = content['public_keys'];
  if (Array.isArray(list)) for (const k of list) if (isObject(k)) add(k['public_key'], k['key_validity_url']);
  return keys;
}

/** The first offered key that verifies an ed25519 signature in `signed`; undefined when none does. */
export function keyThatSigned(signed: Json, keys: readonly InvitePublicKey[]): InvitePublicKey | undefined {
  const signatures = signed['signatures'];
  if (!isObject(signatures)) return undefined;
  let text: string;
  try {
    text = signedJsonText(signed);
  } catch {
    return undefined; // no canonical form: it cannot have been signed as it is
  }
  const sigs: Buffer[] = [];
  for (const server of Object.keys(signatures)) {
    const byKey = signatures[server];
    if (!isObject(byKey)) continue;
    for (const [keyId, sig] of Object.entries(byKey)) {
      if (!keyId.startsWith('ed25519:') || typeof sig !== 'string') continue;
      const bytes = decodeUnpaddedBase64(sig);
      if (bytes) sigs.push(bytes);
    }
  }
  for (const key of keys) {
    const raw = decodeUnpaddedBase64(key.public_key);
    if (!raw) continue;
    if (sigs.some((s) => verifyEd25519(text, s, raw))) return key;
  }
  return undefined;
}

/**
 * Throws ThirdPartyInviteRejected unless `signed` is signed by a key of the invite whose
 * identity server still says it is valid. A key without a validity URL needs no asking; an
 * identity server that cannot be asked rejects the invite (a revocation could not be ruled out).
 */
export async function checkThirdPartySigned(signed: Json, inviteContent: Json, client: Pick<IdentityServerClient, 'isKeyValid'>): Promise<InvitePublicKey> {
  const key = keyThatSigned(signed, invitePublicKeys(inviteContent));
  if (!key) throw new ThirdPartyInviteRejected('No signature on the third-party invite verifies with a public key of the m.room.third_party_invite');
  if (key.key_validity_url === undefined) return key;
  let valid: boolean;
  try {
    valid = await client.isKeyValid(key.key_validity_url, key.public_key);
  } catch (e) {
    const why = e instanceof IdentityServerError || e instanceof Error ? e.message : String(e);
    throw new ThirdPartyInviteRejected(`Could not check that the identity server's key is still valid: ${why}`);
  }
  if (!valid) throw new ThirdPartyInviteRejected("The identity server's key that signed the third-party invite has been revoked");
  return key;
}
