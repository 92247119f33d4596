/**
 * Ed25519 signing keys: key pairs from a 32-byte seed through node:crypto, key IDs, cached
 * public KeyObjects, and Dendrite's `matrix_key.pem` file format.
 *
 * node:crypto only takes Ed25519 private keys as PKCS#8, so the seed is wrapped in the fixed
 * 16-byte DER prefix of RFC 8410; public keys are raw 32 bytes, wrapped as SPKI the same way.
 */
import { createPrivateKey, createPublicKey, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import { decodeBase64, encodeBase64 } from './base64.js';
import { MatrixProtocolError } from './types.js';

export const ED25519_SEED_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

// RFC 8410: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING <seed> } }
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
// RFC 8410: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING <public key> }
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** An Ed25519 signing key with its identifier, ready to sign with. */
export interface SigningKey {
  /** `ed25519:<version>` */
  readonly keyId: string;
  /** The 32-byte private seed (what matrix_key.pem stores). */
  readonly seed: Buffer;
  /** The raw 32-byte public key. */
  readonly publicKey: Buffer;
  /** Unpadded standard base64 of the public key, as published in /_matrix/key/v2/server. */
  readonly publicKeyBase64: string;
  readonly privateKeyObject: KeyObject;
  readonly publicKeyObject: KeyObject;
}

/** Builds a signing key from its 32-byte seed. Throws MatrixProtocolError('bad_key'). */
export function signingKeyFromSeed(seed: Uint8Array, keyId: string): SigningKey {
  assertKeyId(keyId);
  if (seed.length !== ED25519_SEED_LENGTH) {
    throw new MatrixProtocolError('bad_key', `ed25519 seed must be ${ED25519_SEED_LENGTH} bytes, got ${seed.length}`);
  }
  const seedCopy = Buffer.from(seed);
  const privateKeyObject = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seedCopy]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKeyObject = createPublicKey(privateKeyObject);
  const publicKey = publicKeyObject.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  const publicKeyBase64 = encodeBase64(publicKey);
  rememberPublicKey(publicKeyBase64, publicKeyObject);
  return { keyId, seed: seedCopy, publicKey, publicKeyBase64, privateKeyObject, publicKeyObject };
}

const KEY_VERSION_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/**
 * A new random key with a random 6-character key ID, in the shape Dendrite generates
 * (`ed25519:` + 6 alphanumerics). Dendrite takes those characters from the seed's own base64,
 * which publishes 36 bits of the private key in the key ID; ours are independent of the seed.
 */
export function generateSigningKey(): SigningKey {
  let version = '';
  for (let i = 0; i < 6; i++) version += KEY_VERSION_CHARS[randomInt(KEY_VERSION_CHARS.length)];
  return signingKeyFromSeed(randomBytes(ED25519_SEED_LENGTH), `ed25519:${version}`);
}

// ---------------------------------------------------------------------------------------------
// Key IDs

/** Key versions: the spec's keys.yaml says `[a-zA-Z0-9_]`. */
const KEY_ID = /^([a-z0-9_]+):([a-zA-Z0-9_]+)$/;

/** Splits `algorithm:version`; undefined when malformed. */
export function parseKeyId(keyId: string): { algorithm: string; version: string } | undefined {
  const m = KEY_ID.exec(keyId);
  return m ? { algorithm: m[1] as string, version: m[2] as string } : undefined;
}

/** true for `ed25519:<version>` with a version of [a-zA-Z0-9_]+. */
export function isValidEd25519KeyId(keyId: string): boolean {
  return typeof keyId === 'string' && keyId.length <= 255 && parseKeyId(keyId)?.algorithm === 'ed25519';
}

function assertKeyId(keyId: string): void {
  if (!isValidEd25519KeyId(keyId)) {
    throw new MatrixProtocolError('bad_key', `key ID ${JSON.stringify(keyId)} is not ed25519:[a-zA-Z0-9_]+`);
  }
}

// ---------------------------------------------------------------------------------------------
// Public keys

/** What verification accepts as a public key: raw 32 bytes, unpadded base64, or a KeyObject. */
export type PublicKeyInput = Uint8Array | string | KeyObject;

/**
 * KeyObjects by base64 public key. createPublicKey costs far more than a verification's own
 * bookkeeping, and a homeserver verifies with the same few hundred keys over and over.
 * Bounded: when full, the oldest half is dropped (Map keeps insertion order).
 */
const publicKeyCache = new Map<string, KeyObject>();
const PUBLIC_KEY_CACHE_LIMIT = 10_000;

function rememberPublicKey(base64: string, key: KeyObject): void {
  if (publicKeyCache.size >= PUBLIC_KEY_CACHE_LIMIT) {
    let drop = PUBLIC_KEY_CACHE_LIMIT / 2;
    for (const k of publicKeyCache.keys()) {
      if (drop-- <= 0) break;
      publicKeyCache.delete(k);
    }
  }
  publicKeyCache.set(base64, key);
}

/** A (cached) KeyObject for an Ed25519 public key. Throws MatrixProtocolError('bad_key'). */
export function publicKeyObject(key: PublicKeyInput): KeyObject {
  if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
    if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') {
      throw new MatrixProtocolError('bad_key', 'expected an ed25519 public KeyObject');
    }
    return key;
  }
  // Cache under the unpadded form, so padded and unpadded inputs share one entry.
  const base64 = typeof key === 'string' ? key.replace(/=+$/, '') : encodeBase64(key);
  const cached = publicKeyCache.get(base64);
  if (cached) return cached;
  const raw = typeof key === 'string' ? decodePublicKeyBase64(key) : key;
  if (raw.length !== ED25519_PUBLIC_KEY_LENGTH) {
    throw new MatrixProtocolError('bad_key', `ed25519 public key must be 32 bytes, got ${raw.length}`);
  }
  let obj: KeyObject;
  try {
    obj = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch (e) {
    throw new MatrixProtocolError('bad_key', `not an ed25519 public key: ${e instanceof Error ? e.message : String(e)}`);
  }
  rememberPublicKey(base64, obj);
  return obj;
}

function decodePublicKeyBase64(text: string): Buffer {
  try {
    return decodeBase64(text);
  } catch {
    throw new MatrixProtocolError('bad_key', `public key is not valid base64: ${JSON.stringify(text.slice(0, 60))}`);
  }
}

// ---------------------------------------------------------------------------------------------
// matrix_key.pem (Dendrite)

const PEM_TYPE = 'MATRIX PRIVATE KEY';

/**
 * Reads Dendrite's matrix_key.pem: the first `MATRIX PRIVATE KEY` PEM block, whose `Key-ID`
 * header names the key and whose body is the base64 seed. Like Dendrite (Go's pem.Decode), the
 * blank line after the headers is optional, other blocks are skipped, and the seed is the first
 * 32 bytes of the body. Throws MatrixProtocolError('bad_key') naming what is wrong.
 */
export function parseMatrixKeyPem(text: string): { keyId: string; seed: Buffer } {
  const lines = text.split(/\r?\n/);
  let i = lines.findIndex((l) => l.trim() === `-----BEGIN ${PEM_TYPE}-----`);
  if (i < 0) throw new MatrixProtocolError('bad_key', `no "${PEM_TYPE}" PEM block found`);
  i++;
  const headers = new Map<string, string>();
  for (; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon < 0) break;
    headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  let body = '';
  for (; i < lines.length && !(lines[i] as string).startsWith('-----'); i++) body += (lines[i] as string).trim();
  if (lines[i]?.trim() !== `-----END ${PEM_TYPE}-----`) {
    throw new MatrixProtocolError('bad_key', `"${PEM_TYPE}" PEM block is not terminated`);
  }
  const keyId = headers.get('Key-ID');
  if (!keyId) throw new MatrixProtocolError('bad_key', 'missing Key-ID header in the PEM block');
  assertKeyId(keyId);
  let der: Buffer;
  try {
    der = decodeBase64(body);
  } catch {
    throw new MatrixProtocolError('bad_key', 'PEM body is not valid base64');
  }
  if (der.length < ED25519_SEED_LENGTH) {
    throw new MatrixProtocolError('bad_key', `PEM body holds ${der.length} bytes, need a 32-byte seed`);
  }
  return { keyId, seed: Buffer.from(der.subarray(0, ED25519_SEED_LENGTH)) };
}

/** Writes a matrix_key.pem as Dendrite's generate-keys does (padded base64 body, 64 columns). */
export function formatMatrixKeyPem(keyId: string, seed: Uint8Array): string {
  assertKeyId(keyId);
  if (seed.length !== ED25519_SEED_LENGTH) {
    throw new MatrixProtocolError('bad_key', `ed25519 seed must be ${ED25519_SEED_LENGTH} bytes, got ${seed.length}`);
  }
  const body = Buffer.from(seed).toString('base64');
  const wrapped = body.match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN ${PEM_TYPE}-----\nKey-ID: ${keyId}\n\n${wrapped}\n-----END ${PEM_TYPE}-----\n`;
}
