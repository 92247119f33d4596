import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { decodeBase64 } from './base64.js';
import { canonicalJson } from './canonicaljson.js';
import { generateSigningKey } from './keys.js';
import { MatrixProtocolError } from './types.js';
import {
  formatXMatrixHeader,
  parseXMatrixHeader,
  requestJson,
  signRequest,
  verifyRequest,
  verifyRequestSync,
  type FederationRequest,
} from './xmatrix.js';
import { codeOf } from './testutil.js';

ed.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());

const KEY = generateSigningKey();
const req: FederationRequest = {
  method: 'PUT',
  uri: '/_matrix/federation/v1/send/123?x=%20y',
  origin: 'origin.example.com',
  destination: 'dest.example.com',
  content: { pdus: [], edus: [{ edu_type: 'm.typing', content: { n: 2 ** 60 } }] },
};


describe('signRequest', () => {
  it('writes the header in the recommended form and signs the request JSON', () => {
    const header = signRequest(req, KEY.keyId, KEY);
    expect(header).toMatch(
      /^X-Matrix origin="origin\.example\.com",destination="dest\.example\.com",key="ed25519:[a-zA-Z0-9]{6}",sig="[A-Za-z0-9+/]{86}"$/,
    );
    const sig = parseXMatrixHeader(header).sig;
    const signed = canonicalJson(requestJson(req), { allowOutOfRangeIntegers: true });
    expect(signed.startsWith('{"content":')).toBe(true);
    expect(ed.verify(decodeBase64(sig), Buffer.from(signed), KEY.publicKey)).toBe(true);
  });

  it('leaves content out of the JSON when there is no body', () => {
    expect(requestJson({ ...req, content: undefined })).toEqual({
      method: 'PUT',
      uri: req.uri,
      origin: req.origin,
      destination: req.destination,
    });
  });
});

describe('parseXMatrixHeader', () => {
  const expected = { origin: 'origin.hs.example.com', destination: 'destination.hs.example.com', key: 'ed25519:key1', sig: 'ABCDEF...' };

  it.each([
    ['the spec example', 'X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF..."'],
    ['unquoted values with colons', 'X-Matrix origin=origin.hs.example.com,destination=destination.hs.example.com,key=ed25519:key1,sig=ABCDEF...'],
    ['any case, spaces and tabs', 'x-matrix   ORIGIN = "origin.hs.example.com" ,\tDestination="destination.hs.example.com",  Key="ed25519:key1" , SIG="ABCDEF..."'],
    ['another order', 'X-Matrix sig="ABCDEF...",key="ed25519:key1",destination="destination.hs.example.com",origin="origin.hs.example.com"'],
    ['escapes in quotes', 'X-Matrix origin="origin.hs.\\example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF..."'],
    ['unknown parameters, commas in quotes and empty elements', 'X-Matrix origin="origin.hs.example.com",,extra="a,b\\"c",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF..."'],
  ])('parses %s', (_name, header) => {
    expect(parseXMatrixHeader(header)).toEqual(expected);
  });

  it('parses an unquoted base64 signature with / + =', () => {
    expect(parseXMatrixHeader('X-Matrix origin=a.b,key=ed25519:1,sig=ab/c+d==').sig).toBe('ab/c+d==');
  });

  it('allows a missing destination (servers before v1.3)', () => {
    expect(parseXMatrixHeader('X-Matrix origin="a.b",key="ed25519:1",sig="s"')).toEqual({ origin: 'a.b', key: 'ed25519:1', sig: 's' });
  });

  it.each([
    ['another scheme', 'Bearer abc'],
    ['no space after the scheme', 'X-Matrixorigin="a",key="k",sig="s"'],
    ['no origin', 'X-Matrix key="ed25519:1",sig="s"'],
    ['no key', 'X-Matrix origin="a",sig="s"'],
    ['no sig', 'X-Matrix origin="a",key="ed25519:1"'],
    ['an empty sig', 'X-Matrix origin="a",key="ed25519:1",sig=""'],
    ['an unterminated quote', 'X-Matrix origin="a,key="ed25519:1",sig="s'],
    ['a repeated parameter', 'X-Matrix origin="a",origin="b",key="k",sig="s"'],
    ['a parameter without "="', 'X-Matrix origin,key="k",sig="s"'],
    ['garbage after a value', 'X-Matrix origin="a" x,key="k",sig="s"'],
    ['an empty unquoted value', 'X-Matrix origin=,key="k",sig="s"'],
    ['a control character', 'X-Matrix origin="a\u0001",key="k",sig="s"'],
    ['only the scheme', 'X-Matrix '],
    ['the empty string', ''],
  ])('rejects %s', (_name, header) => {
    expect(codeOf(() => parseXMatrixHeader(header))).toBe('bad_request_auth');
  });

  it('round-trips values with quotes and backslashes', () => {
    const auth = { origin: 'a"b\\c', destination: 'd', key: 'ed25519:1', sig: 's' };
    expect(parseXMatrixHeader(formatXMatrixHeader(auth))).toEqual(auth);
  });
});

describe('verifyRequest', () => {
  const incoming = () => ({ method: req.method, uri: req.uri, content: req.content, authorization: signRequest(req, KEY.keyId, KEY) });
  const lookup = (origin: string, keyId: string) => (origin === req.origin && keyId === KEY.keyId ? KEY.publicKey : undefined);

  it('accepts a correctly signed request', async () => {
    await expect(verifyRequest(incoming(), req.destination, lookup)).resolves.toEqual({ origin: req.origin, keyId: KEY.keyId });
    await expect(verifyRequest(incoming(), req.destination, async (o, k) => lookup(o, k))).resolves.toMatchObject({ origin: req.origin });
    expect(verifyRequestSync(incoming(), req.destination, KEY.publicKey).origin).toBe(req.origin);
  });

  it('accepts a request without destination in the header, signed for us', async () => {
    const auth = parseXMatrixHeader(signRequest(req, KEY.keyId, KEY));
    delete auth.destination;
    await expect(verifyRequest({ ...incoming(), authorization: formatXMatrixHeader(auth) }, req.destination, lookup)).resolves.toBeDefined();
  });

  const rejects = async (p: Promise<unknown>) => {
    await expect(p).rejects.toBeInstanceOf(MatrixProtocolError);
    await expect(p).rejects.toMatchObject({ code: 'bad_request_auth' });
  };

  it('rejects a request for another destination', async () => {
    await rejects(verifyRequest(incoming(), 'other.example.com', lookup));
  });

  it('rejects changed method, uri or content', async () => {
    await rejects(verifyRequest({ ...incoming(), method: 'POST' }, req.destination, lookup));
    await rejects(verifyRequest({ ...incoming(), uri: '/_matrix/federation/v1/send/124' }, req.destination, lookup));
    await rejects(verifyRequest({ ...incoming(), content: { pdus: [] } }, req.destination, lookup));
    await rejects(verifyRequest({ ...incoming(), content: undefined }, req.destination, lookup));
  });

  it('rejects unknown keys, missing headers and bad origins', async () => {
    await rejects(verifyRequest(incoming(), req.destination, () => undefined));
    await rejects(verifyRequest({ ...incoming(), authorization: undefined }, req.destination, lookup));
    const auth = parseXMatrixHeader(signRequest(req, KEY.keyId, KEY));
    await rejects(verifyRequest({ ...incoming(), authorization: formatXMatrixHeader({ ...auth, origin: 'bad origin' }) }, req.destination, lookup));
    await rejects(verifyRequest({ ...incoming(), authorization: formatXMatrixHeader({ ...auth, key: 'rsa:1' }) }, req.destination, lookup));
    await rejects(verifyRequest({ ...incoming(), authorization: formatXMatrixHeader({ ...auth, sig: 'AAAA' }) }, req.destination, lookup));
  });

  it('rejects a request signed by another key', () => {
    expect(codeOf(() => verifyRequestSync(incoming(), req.destination, generateSigningKey().publicKey))).toBe('bad_request_auth');
  });

  it('rejects a body with no canonical form', () => {
    expect(codeOf(() => verifyRequestSync({ ...incoming(), content: { f: 0.5 } }, req.destination, KEY.publicKey))).toBe('bad_request_auth');
  });
});
