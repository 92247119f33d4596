/**
 * Ed25519 verification for the third-party invite rule, straight on node:crypto: the auth rules
 * need nothing of the signing module but "does this signature verify with this raw key".
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
const UNPADDED_BASE64 = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/;

/**
 * Decodes Matrix unpadded Base64, standard or URL-safe alphabet (identity servers have published
 * keys in both), padding tolerated. undefined when malformed.
 */
export function decodeUnpaddedBase64(text: string): Buffer | undefined {
  if (!UNPADDED_BASE64.test(text)) return undefined;
  const body = text.replace(/=+$/, '');
  if (body.length % 4 === 1) return undefined;
  return Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** A public key object for 32 raw Ed25519 key bytes; undefined when they are not a valid point. */
function publicKeyFromRaw(raw: Buffer): KeyObject | undefined {
  if (raw.length !== ED25519_PUBLIC_KEY_BYTES) return undefined;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

/** Whether `signature` (raw bytes) is `message` signed by the Ed25519 key `publicKey` (raw bytes). */
export function verifyEd25519(message: string, signature: Buffer, publicKey: Buffer): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
  const key = publicKeyFromRaw(publicKey);
  if (!key) return false;
  try {
    return verify(null, Buffer.from(message, 'utf8'), key, signature);
  } catch {
    return false;
  }
}
