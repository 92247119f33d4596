import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from './base64.js';
import {
  formatMatrixKeyPem,
  generateSigningKey,
  isValidEd25519KeyId,
  parseKeyId,
  parseMatrixKeyPem,
  publicKeyObject,
  signingKeyFromSeed,
} from './keys.js';
import { MatrixProtocolError } from './types.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

// The seed of the spec appendix "Cryptographic Test Vectors".
const SPEC_SEED = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');

describe('signing keys', () => {
  it('derives the same public key from a seed as @noble/ed25519', () => {
    const key = signingKeyFromSeed(SPEC_SEED, 'ed25519:1');
    expect(key.publicKey).toHaveLength(32);
    expect(encodeBase64(key.publicKey)).toBe(encodeBase64(ed.getPublicKey(SPEC_SEED)));
    expect(key.publicKeyBase64).toBe(encodeBase64(key.publicKey));
    expect(key.privateKeyObject.asymmetricKeyType).toBe('ed25519');
  });

  it('generates distinct random keys with Dendrite-shaped key IDs', () => {
    const a = generateSigningKey();
    const b = generateSigningKey();
    expect(a.keyId).toMatch(/^ed25519:[a-zA-Z0-9]{6}$/);
    expect(a.seed).toHaveLength(32);
    expect(a.seed.equals(b.seed)).toBe(false);
    expect(encodeBase64(a.publicKey)).toBe(encodeBase64(ed.getPublicKey(a.seed)));
  });

  it('refuses seeds of the wrong length and malformed key IDs', () => {
    expect(() => signingKeyFromSeed(new Uint8Array(31), 'ed25519:a')).toThrow(MatrixProtocolError);
    expect(() => signingKeyFromSeed(SPEC_SEED, 'ed25519:')).toThrow(/key ID/);
    expect(() => signingKeyFromSeed(SPEC_SEED, 'curve25519:a')).toThrow(/key ID/);
    expect(() => signingKeyFromSeed(SPEC_SEED, 'ed25519:a-b')).toThrow(/key ID/);
  });
});

describe('key IDs', () => {
  it.each([
    ['ed25519:1', true],
    ['ed25519:a_AAAA', true],
    ['ed25519:abc123XYZ', true],
    ['ed25519:', false],
    ['ed25519', false],
    ['ed25519:a:b', false],
    ['ed25519:a.b', false],
    ['signed_curve25519:AAAA', false],
    ['', false],
  ])('%j valid ed25519 key ID: %s', (id, ok) => {
    expect(isValidEd25519KeyId(id)).toBe(ok);
  });

  it('splits algorithm and version', () => {
    expect(parseKeyId('signed_curve25519:AAAAHg')).toEqual({ algorithm: 'signed_curve25519', version: 'AAAAHg' });
    expect(parseKeyId('nocolon')).toBeUndefined();
  });
});

describe('public key objects', () => {
  it('accepts raw bytes, padded and unpadded base64, and returns the cached object', () => {
    const key = signingKeyFromSeed(SPEC_SEED, 'ed25519:1');
    const fromBytes = publicKeyObject(new Uint8Array(key.publicKey));
    const fromBase64 = publicKeyObject(key.publicKeyBase64);
    const fromPadded = publicKeyObject(key.publicKey.toString('base64'));
    expect(fromBytes).toBe(fromBase64);
    expect(fromPadded).toBe(fromBase64);
    expect(fromBytes.asymmetricKeyType).toBe('ed25519');
  });

  it.each([
    ['31 bytes', new Uint8Array(31)],
    ['bad base64', 'not base64!'],
    ['a private KeyObject', signingKeyFromSeed(SPEC_SEED, 'ed25519:1').privateKeyObject],
  ])('refuses %s', (_name, input) => {
    expect(() => publicKeyObject(input)).toThrow(MatrixProtocolError);
  });
});

describe('matrix_key.pem', () => {
  // The key of Dendrite's setup/config/config_test.go: no blank line after the header.
  const dendritePem = `
-----BEGIN MATRIX PRIVATE KEY-----
Key-ID: ed25519:c8NsuQ
7KRZiZ2sTyRR8uqqUjRwczuwRXXkUMYIUHq4Mc3t4bE=
-----END MATRIX PRIVATE KEY-----
`;

  it("reads Dendrite's format", () => {
    const { keyId, seed } = parseMatrixKeyPem(dendritePem);
    expect(keyId).toBe('ed25519:c8NsuQ');
    expect(seed.toString('base64')).toBe('7KRZiZ2sTyRR8uqqUjRwczuwRXXkUMYIUHq4Mc3t4bE=');
  });

  it('writes what it reads, with the blank line Go puts after the headers', () => {
    const key = generateSigningKey();
    const pem = formatMatrixKeyPem(key.keyId, key.seed);
    expect(pem).toMatch(/^-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: ed25519:[a-zA-Z0-9]{6}\n\n[A-Za-z0-9+/]{43}=\n-----END MATRIX PRIVATE KEY-----\n$/);
    const back = parseMatrixKeyPem(pem);
    expect(back.keyId).toBe(key.keyId);
    expect(back.seed.equals(key.seed)).toBe(true);
  });

  it('skips other PEM blocks and tolerates CRLF', () => {
    const other = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const { keyId } = parseMatrixKeyPem((other + dendritePem).replace(/\n/g, '\r\n'));
    expect(keyId).toBe('ed25519:c8NsuQ');
  });

  it.each([
    ['no block', 'hello', /no "MATRIX PRIVATE KEY"/],
    ['no Key-ID', '-----BEGIN MATRIX PRIVATE KEY-----\nAAAA\n-----END MATRIX PRIVATE KEY-----', /missing Key-ID/],
    [
      'a bad Key-ID',
      '-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: rsa:1\n\n7KRZiZ2sTyRR8uqqUjRwczuwRXXkUMYIUHq4Mc3t4bE=\n-----END MATRIX PRIVATE KEY-----',
      /key ID/,
    ],
    ['a short body', '-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: ed25519:a\n\nAAAA\n-----END MATRIX PRIVATE KEY-----', /32-byte/],
    ['no end line', '-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: ed25519:a\n\nAAAA\n', /not terminated/],
  ])('refuses %s', (_name, text, message) => {
    expect(() => parseMatrixKeyPem(text)).toThrow(message);
  });
});
