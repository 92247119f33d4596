import { describe, expect, it } from 'vitest';
import { decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url, isBase64 } from './base64.js';
import { MatrixProtocolError } from './types.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');

describe('unpadded base64', () => {
  // The examples of the spec appendix "Unpadded Base64".
  const examples: Array<[string, string]> = [
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ];
  it.each(examples)('encodes %j as %j', (plain, encoded) => {
    expect(encodeBase64(bytes(plain))).toBe(encoded);
    expect(decodeBase64(encoded).toString('utf8')).toBe(plain);
  });

  it('decodes padded input too', () => {
    expect(decodeBase64('Zg==').toString()).toBe('f');
    expect(decodeBase64('Zm8=').toString()).toBe('fo');
    expect(decodeBase64Url('Zg==').toString()).toBe('f');
  });

  it('uses - and _ in the URL-safe alphabet', () => {
    const data = Uint8Array.from([0xfb, 0xff, 0xbf]);
    expect(encodeBase64(data)).toBe('+/+/');
    expect(encodeBase64Url(data)).toBe('-_-_');
    expect([...decodeBase64Url('-_-_')]).toEqual([0xfb, 0xff, 0xbf]);
    expect([...decodeBase64('+/+/')]).toEqual([0xfb, 0xff, 0xbf]);
  });

  it('encodes a Uint8Array view of a larger buffer correctly', () => {
    const big = Uint8Array.from([1, 2, 3, 102, 111, 111, 9]);
    expect(encodeBase64(big.subarray(3, 6))).toBe('Zm9v');
  });

  it.each(['Zm9v!', 'Z', 'Zm9vY', 'Zg=', 'Zg===', '-_-_+', 'Zm 9v', '=Zg'])('rejects malformed %j', (bad) => {
    expect(() => decodeBase64(bad)).toThrow(MatrixProtocolError);
    expect(isBase64(bad)).toBe(false);
  });

  it('keeps the alphabets apart', () => {
    expect(() => decodeBase64('-_-_')).toThrow(MatrixProtocolError);
    expect(() => decodeBase64Url('+/+/')).toThrow(MatrixProtocolError);
  });

  it('round-trips random data in both alphabets', () => {
    for (let len = 0; len < 70; len++) {
      const data = Uint8Array.from({ length: len }, (_, i) => (i * 37 + len * 11) & 0xff);
      expect([...decodeBase64(encodeBase64(data))]).toEqual([...data]);
      expect([...decodeBase64Url(encodeBase64Url(data))]).toEqual([...data]);
      expect(encodeBase64(data)).not.toContain('=');
    }
  });
});
