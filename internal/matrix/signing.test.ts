import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from './base64.js';
import { canonicalJson } from './canonicaljson.js';
import { generateSigningKey, signingKeyFromSeed } from './keys.js';
import {
  assertJsonSignature,
  signBytes,
  signJson,
  signedJsonText,
  verifyBatch,
  verifyBytes,
  verifyJsonSignature,
  type VerifyItem,
} from './signing.js';
import { MatrixProtocolError } from './types.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

const SPEC_KEY = signingKeyFromSeed(decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1'), 'ed25519:1');

/** Cross-checks one of our signatures with an independent Ed25519 implementation. */
function nobleVerifies(signatureBase64: string, signedText: string, publicKey: Uint8Array): boolean {
  return ed.verify(decodeBase64(signatureBase64), Buffer.from(signedText, 'utf8'), publicKey);
}

describe('signJson: the spec appendix "JSON Signing" vectors', () => {
  it('signs the empty object', () => {
    const signed = signJson({}, 'domain', 'ed25519:1', SPEC_KEY);
    expect(signed).toEqual({
      signatures: {
        domain: {
          'ed25519:1': 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ',
        },
      },
    });
    expect(nobleVerifies(signed.signatures.domain!['ed25519:1']!, '{}', SPEC_KEY.publicKey)).toBe(true);
  });

  it('signs the object with data values', () => {
    const signed = signJson({ one: 1, two: 'Two' }, 'domain', 'ed25519:1', SPEC_KEY);
    expect(canonicalJson(signed)).toBe(
      canonicalJson({
        one: 1,
        signatures: {
          domain: {
            'ed25519:1': 'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
          },
        },
        two: 'Two',
      }),
    );
    expect(
      nobleVerifies(signed.signatures.domain!['ed25519:1']!, '{"one":1,"two":"Two"}', SPEC_KEY.publicKey),
    ).toBe(true);
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:1', SPEC_KEY.publicKey)).toBe(true);
  });
});

describe('signJson', () => {
  it('leaves unsigned and existing signatures out of the signed bytes and keeps them', () => {
    const obj = {
      a: 1,
      unsigned: { age_ts: 5 },
      signatures: { other: { 'ed25519:x': 'abc' } },
    };
    const signed = signJson(obj, 'domain', 'ed25519:1', SPEC_KEY);
    expect(signed.unsigned).toEqual({ age_ts: 5 });
    expect(signed.signatures.other).toEqual({ 'ed25519:x': 'abc' });
    expect(signed.signatures.domain!['ed25519:1']).toBe(signJson({ a: 1 }, 'domain', 'ed25519:1', SPEC_KEY).signatures.domain!['ed25519:1']);
    // The input is untouched.
    expect(obj.signatures).toEqual({ other: { 'ed25519:x': 'abc' } });
    expect(nobleVerifies(signed.signatures.domain!['ed25519:1']!, '{"a":1}', SPEC_KEY.publicKey)).toBe(true);
  });

  it('adds a second key of the same server beside the first', () => {
    const other = generateSigningKey();
    const once = signJson({ x: 'y' }, 'domain', 'ed25519:1', SPEC_KEY);
    const twice = signJson(once, 'domain', other.keyId, other);
    expect(Object.keys(twice.signatures.domain!)).toEqual(['ed25519:1', other.keyId]);
    expect(verifyJsonSignature(twice, 'domain', 'ed25519:1', SPEC_KEY.publicKey)).toBe(true);
    expect(verifyJsonSignature(twice, 'domain', other.keyId, other.publicKey)).toBe(true);
    expect(nobleVerifies(twice.signatures.domain![other.keyId]!, '{"x":"y"}', other.publicKey)).toBe(true);
  });

  it('refuses objects without a canonical form', () => {
    expect(() => signJson({ a: 0.5 }, 'domain', 'ed25519:1', SPEC_KEY)).toThrow(MatrixProtocolError);
  });
});

describe('verifyJsonSignature', () => {
  const signed = signJson({ one: 1, unsigned: { u: 1 } }, 'domain', 'ed25519:1', SPEC_KEY);

  it('accepts a changed unsigned section', () => {
    expect(verifyJsonSignature({ ...signed, unsigned: { u: 2 } }, 'domain', 'ed25519:1', SPEC_KEY.publicKeyBase64)).toBe(true);
  });

  it('rejects changed content, other servers, other keys and wrong public keys', () => {
    expect(verifyJsonSignature({ ...signed, one: 2 }, 'domain', 'ed25519:1', SPEC_KEY.publicKey)).toBe(false);
    expect(verifyJsonSignature(signed, 'other', 'ed25519:1', SPEC_KEY.publicKey)).toBe(false);
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:2', SPEC_KEY.publicKey)).toBe(false);
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:1', generateSigningKey().publicKey)).toBe(false);
  });

  it('rejects malformed signatures without throwing', () => {
    const bad = (sig: unknown) => ({ ...signed, signatures: { domain: { 'ed25519:1': sig } } });
    expect(verifyJsonSignature(bad('!!!'), 'domain', 'ed25519:1', SPEC_KEY.publicKey)).toBe(false);
    expect(verifyJsonSignature(bad('AAAA'), 'domain', 'ed25519:1', SPEC_KEY.publicKey)).toBe(false);
    expect(verifyJsonSignature(bad(42), 'domain', 'ed25519:1', SPEC_KEY.publicKey)).toBe(false);
    expect(verifyJsonSignature({ ...signed, signatures: 'x' }, 'domain', 'ed25519:1', SPEC_KEY.publicKey)).toBe(false);
  });

  it('assertJsonSignature throws a typed error naming the signer', () => {
    expect(() => assertJsonSignature({ ...signed, one: 3 }, 'domain', 'ed25519:1', SPEC_KEY.publicKey)).toThrow(
      /domain with ed25519:1/,
    );
    expect(() => assertJsonSignature(signed, 'domain', 'ed25519:1', SPEC_KEY.publicKey)).not.toThrow();
  });
});

describe('verifyBatch', () => {
  it('verifies on the thread pool, in order, with false for bad items', async () => {
    const key = generateSigningKey();
    const texts = Array.from({ length: 20 }, (_, i) => `{"i":${i}}`);
    const sigs = texts.map((t) => signBytes(t, key));
    for (let i = 0; i < texts.length; i++) {
      expect(ed.verify(sigs[i]!, Buffer.from(texts[i]!), key.publicKey)).toBe(true);
    }
    const items: VerifyItem[] = texts.map((t, i) => ({ data: t, signature: sigs[i]!, publicKey: key.publicKey }));
    items[3] = { ...items[3]!, data: '{"i":-1}' };
    items[5] = { ...items[5]!, signature: encodeBase64(sigs[5]!) };
    items[7] = { ...items[7]!, signature: 'not base64!' };
    items[9] = { ...items[9]!, publicKey: new Uint8Array(5) };
    items[11] = { ...items[11]!, signature: new Uint8Array(63) };
    const results = await verifyBatch(items);
    expect(results).toEqual(texts.map((_, i) => ![3, 7, 9, 11].includes(i)));
  });

  it('resolves an empty batch', async () => {
    expect(await verifyBatch([])).toEqual([]);
  });

  it('agrees with the sequential verifier', () => {
    const key = generateSigningKey();
    const sig = signBytes(signedJsonText({ a: 'b' }), key);
    expect(verifyBytes('{"a":"b"}', sig, key.publicKeyObject)).toBe(true);
    expect(verifyBytes('{"a":"c"}', sig, key.publicKeyObject)).toBe(false);
    expect(verifyBytes('{"a":"b"}', sig.subarray(1), key.publicKeyObject)).toBe(false);
  });
});
