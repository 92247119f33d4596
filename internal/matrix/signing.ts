/**
 * Signing JSON (spec appendices, "Signing JSON" and "Checking for a Signature") with Ed25519
 * through node:crypto, and verification in batches on the libuv thread pool.
 *
 * `crypto.verify(null, data, key, sig)` blocks the event loop for the whole verification;
 * given a callback it runs on the thread pool instead, so a federation transaction's worth of
 * signatures uses every core (UV_THREADPOOL_SIZE threads, 4 by default).
 */
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { decodeBase64, encodeBase64 } from './base64.js';
import { canonicalJson, type CanonicalJsonOptions } from './canonicaljson.js';
import { ED25519_SIGNATURE_LENGTH, publicKeyObject, type PublicKeyInput, type SigningKey } from './keys.js';
import { MatrixProtocolError, type Signatures } from './types.js';

/** What signing accepts: a SigningKey (see keys.ts) or a private Ed25519 KeyObject. */
export type PrivateKeyInput = SigningKey | KeyObject;

function privateKeyOf(key: PrivateKeyInput): KeyObject {
  return 'privateKeyObject' in key ? key.privateKeyObject : key;
}

/** Signs bytes (or a string, as UTF-8); returns the 64-byte signature. */
export function signBytes(data: Uint8Array | string, key: PrivateKeyInput): Buffer {
  return cryptoSign(null, typeof data === 'string' ? Buffer.from(data, 'utf8') : data, privateKeyOf(key));
}

/**
 * The bytes a JSON signature covers: the canonical JSON of `obj` without `signatures` and
 * `unsigned`. Throws MatrixProtocolError('not_canonical').
 */
export function signedJsonText(obj: object, options?: CanonicalJsonOptions): string {
  const rest: Record<string, unknown> = { ...(obj as Record<string, unknown>) };
  delete rest.signatures;
  delete rest.unsigned;
  return canonicalJson(rest, options);
}

/**
 * Returns a copy of `obj` signed by `serverName` with `keyId`: `signatures` holds the existing
 * signatures plus ours; `unsigned` is kept and not covered. `obj` itself is not modified.
 */
export function signJson<T extends object>(
  obj: T,
  serverName: string,
  keyId: string,
  key: PrivateKeyInput,
  options?: CanonicalJsonOptions,
): T & { signatures: Signatures } {
  const signature = encodeBase64(signBytes(signedJsonText(obj, options), key));
  return { ...obj, signatures: withSignature(signaturesOf(obj), serverName, keyId, signature) };
}

/** A copy of `signatures` with one more entry; the input is not modified. */
export function withSignature(signatures: Signatures | undefined, serverName: string, keyId: string, sig: string): Signatures {
  const out: Signatures = { ...signatures };
  out[serverName] = { ...signatures?.[serverName], [keyId]: sig };
  return out;
}

function signaturesOf(obj: object): Signatures | undefined {
  const s = (obj as { signatures?: unknown }).signatures;
  return typeof s === 'object' && s !== null && !Array.isArray(s) ? (s as Signatures) : undefined;
}

/** The base64 signature `serverName` made with `keyId` on `obj`, if there is one. */
export function signatureOf(obj: object, serverName: string, keyId: string): string | undefined {
  const byServer = signaturesOf(obj)?.[serverName];
  if (typeof byServer !== 'object' || byServer === null || Array.isArray(byServer)) return undefined;
  const sig = (byServer as Record<string, unknown>)[keyId];
  return typeof sig === 'string' ? sig : undefined;
}

/** Decodes a base64 signature; undefined when malformed or not 64 bytes. */
export function decodeSignature(sig: string): Buffer | undefined {
  try {
    const bytes = decodeBase64(sig);
    return bytes.length === ED25519_SIGNATURE_LENGTH ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** Verifies a signature over bytes; false for a wrong signature or one of the wrong length. */
export function verifyBytes(data: Uint8Array | string, signature: Uint8Array, publicKey: PublicKeyInput): boolean {
  if (signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  return cryptoVerify(
    null,
    typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
    publicKeyObject(publicKey),
    signature,
  );
}

/**
 * Checks that `serverName` signed `obj` with `keyId` and that the signature verifies with
 * `publicKey`. false when the signature is missing, malformed or wrong. Throws
 * MatrixProtocolError('bad_key') for an unusable public key and ('not_canonical') when `obj`
 * has no canonical form (so cannot have been signed as it is).
 */
export function verifyJsonSignature(
  obj: object,
  serverName: string,
  keyId: string,
  publicKey: PublicKeyInput,
  options?: CanonicalJsonOptions,
): boolean {
  const sig = signatureOf(obj, serverName, keyId);
  const bytes = sig === undefined ? undefined : decodeSignature(sig);
  if (!bytes) return false;
  return verifyBytes(signedJsonText(obj, options), bytes, publicKey);
}

/** As verifyJsonSignature, but throws MatrixProtocolError('bad_signature') naming the signer. */
export function assertJsonSignature(
  obj: object,
  serverName: string,
  keyId: string,
  publicKey: PublicKeyInput,
  options?: CanonicalJsonOptions,
): void {
  if (!verifyJsonSignature(obj, serverName, keyId, publicKey, options)) {
    throw new MatrixProtocolError('bad_signature', `no valid signature from ${serverName} with ${keyId}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Batches on the thread pool

export interface VerifyItem {
  /** The signed bytes (a string is taken as UTF-8). */
  data: Uint8Array | string;
  /** The raw 64-byte signature, or its unpadded base64. */
  signature: Uint8Array | string;
  publicKey: PublicKeyInput;
}

/**
 * Verifies many signatures at once on the libuv thread pool. Resolves to one boolean per item,
 * in order; an item with a malformed signature or key is false rather than an error, so one
 * bad PDU cannot fail a whole transaction.
 */
export function verifyBatch(items: readonly VerifyItem[]): Promise<boolean[]> {
  return Promise.all(items.map(verifyOnThreadPool));
}

function verifyOnThreadPool(item: VerifyItem): Promise<boolean> {
  let key: KeyObject;
  let signature: Uint8Array | undefined;
  try {
    key = publicKeyObject(item.publicKey);
    signature = typeof item.signature === 'string' ? decodeSignature(item.signature) : item.signature;
  } catch {
    return Promise.resolve(false);
  }
  if (!signature || signature.length !== ED25519_SIGNATURE_LENGTH) return Promise.resolve(false);
  const data = typeof item.data === 'string' ? Buffer.from(item.data, 'utf8') : item.data;
  return new Promise((resolve) => {
    cryptoVerify(null, data, key, signature, (err, ok) => resolve(!err && ok));
  });
}
