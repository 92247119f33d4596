/**
 * Federation request authentication (server-server API "Request Authentication"): every
 * request is a JSON object {method, uri, origin, destination, content?} signed by the origin
 * and carried in `Authorization: X-Matrix origin=...,destination=...,key=...,sig=...`.
 *
 * The header follows RFC 9110 §11.4 auth-params: names are case-insensitive, values are tokens
 * or quoted strings with backslash escapes, spaces and tabs may surround commas. As the spec
 * asks for older servers' sake, unquoted values may hold colons; we also let them hold the
 * base64 characters `/`, `+` and `=`, which some senders leave unquoted. We write the form the
 * spec recommends: one space after the scheme, lower-case names, quoted values, no spaces.
 */
import { encodeBase64 } from './base64.js';
import { canonicalJson } from './canonicaljson.js';
import type { PublicKeyInput } from './keys.js';
import { decodeSignature, signBytes, verifyBatch, verifyBytes, type PrivateKeyInput } from './signing.js';
import { isValidServerName } from './identifiers.js';
import { MatrixProtocolError, type JsonObject, type JsonValue } from './types.js';

export interface FederationRequest {
  method: string;
  /** The request target as sent: path from `/_matrix/...` with the query string, not decoded. */
  uri: string;
  origin: string;
  destination: string;
  /** The parsed JSON body, when the request has one. */
  content?: JsonValue;
}

/** The parsed parameters of an X-Matrix Authorization header. */
export interface XMatrixAuth {
  origin: string;
  /** Absent in requests from servers older than spec v1.3. */
  destination?: string;
  /** The key ID, e.g. `ed25519:abc`. */
  key: string;
  /** Unpadded base64 signature. */
  sig: string;
}

/** The object that is signed for a request. */
export function requestJson(req: FederationRequest): JsonObject {
  const json: JsonObject = {
    method: req.method,
    uri: req.uri,
    origin: req.origin,
    destination: req.destination,
  };
  if (req.content !== undefined) json.content = req.content;
  return json;
}

/**
 * Request bodies can carry events of room versions 1-5, whose numbers may be floats or exceed
 * the canonical range; signing must still work for them. A v6+ event with such a number must be
 * answered M_BAD_JSON by the endpoint (which knows the room version), not 401 here.
 */
const REQUEST_CANONICAL = { allowOutOfRangeIntegers: true, allowFloats: true } as const;

/** The signature of a request, unpadded base64. */
export function signRequestJson(req: FederationRequest, key: PrivateKeyInput): string {
  return encodeBase64(signBytes(canonicalJson(requestJson(req), REQUEST_CANONICAL), key));
}

/** The `Authorization` header value for a request signed by `req.origin` with `keyId`. */
export function signRequest(req: FederationRequest, keyId: string, key: PrivateKeyInput): string {
  return formatXMatrixHeader({
    origin: req.origin,
    destination: req.destination,
    key: keyId,
    sig: signRequestJson(req, key),
  });
}

export function formatXMatrixHeader(auth: XMatrixAuth): string {
  const q = (v: string) => `"${v.replace(/[\\"]/g, (c) => '\\' + c)}"`;
  let header = `X-Matrix origin=${q(auth.origin)}`;
  if (auth.destination !== undefined) header += `,destination=${q(auth.destination)}`;
  return header + `,key=${q(auth.key)},sig=${q(auth.sig)}`;
}

// ---------------------------------------------------------------------------------------------
// Parsing

function fail(message: string): never {
  throw new MatrixProtocolError('bad_request_auth', `X-Matrix Authorization: ${message}`);
}

/** RFC 9110 tchar. */
function isTokenChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    '!#$%&\'*+-.^_`|~'.includes(String.fromCharCode(c))
  );
}

/** Characters an unquoted value may hold: tchar, plus `:` (the spec's leniency) and `/` `=`. */
function isUnquotedValueChar(c: number): boolean {
  return isTokenChar(c) || c === 0x3a || c === 0x2f || c === 0x3d;
}

const SP = 0x20;
const HTAB = 0x09;

/**
 * Parses an `X-Matrix` Authorization header value. Throws
 * MatrixProtocolError('bad_request_auth') when it is malformed, a parameter is repeated, or
 * origin, key or sig is missing.
 */
export function parseXMatrixHeader(value: string): XMatrixAuth {
  if (typeof value !== 'string') fail('missing');
  const text = value.trim();
  const scheme = /^X-Matrix[ \t]+/i.exec(text);
  if (!scheme) fail('the scheme is not X-Matrix');
  const params = new Map<string, string>();
  let i = scheme[0].length;
  const n = text.length;
  const skipOws = () => {
    while (i < n && (text.charCodeAt(i) === SP || text.charCodeAt(i) === HTAB)) i++;
  };
  while (i < n) {
    skipOws();
    if (text.charCodeAt(i) === 0x2c) {
      i++; // empty list element
      continue;
    }
    const nameStart = i;
    while (i < n && isTokenChar(text.charCodeAt(i))) i++;
    if (i === nameStart) fail(`expected a parameter name at offset ${i}`);
    const name = text.slice(nameStart, i).toLowerCase();
    skipOws();
    if (text.charCodeAt(i) !== 0x3d) fail(`expected "=" after ${JSON.stringify(name)}`);
    i++;
    skipOws();
    let paramValue = '';
    if (text.charCodeAt(i) === 0x22) {
      i++;
      let closed = false;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === 0x22) {
          closed = true;
          i++;
          break;
        }
        if (c === 0x5c) {
          if (i + 1 >= n) break;
          paramValue += text[i + 1];
          i += 2;
          continue;
        }
        if (c < 0x20 && c !== HTAB) fail(`control character in the value of ${JSON.stringify(name)}`);
        paramValue += text[i];
        i++;
      }
      if (!closed) fail(`unterminated quoted value of ${JSON.stringify(name)}`);
    } else {
      const valueStart = i;
      while (i < n && isUnquotedValueChar(text.charCodeAt(i))) i++;
      if (i === valueStart) fail(`empty value of ${JSON.stringify(name)}`);
      paramValue = text.slice(valueStart, i);
    }
    if (params.has(name)) fail(`parameter ${JSON.stringify(name)} given twice`);
    params.set(name, paramValue);
    skipOws();
    if (i < n) {
      if (text.charCodeAt(i) !== 0x2c) fail(`expected "," at offset ${i}`);
      i++;
    }
  }
  const origin = params.get('origin');
  const key = params.get('key');
  const sig = params.get('sig');
  if (!origin) fail('no origin');
  if (!key) fail('no key');
  if (!sig) fail('no sig');
  const auth: XMatrixAuth = { origin, key, sig };
  const destination = params.get('destination');
  if (destination !== undefined) auth.destination = destination;
  return auth;
}

// ---------------------------------------------------------------------------------------------
// Verification

/** An incoming request as the receiving server sees it. */
export interface IncomingRequest {
  method: string;
  /** Path and query exactly as received. */
  uri: string;
  content?: JsonValue;
  /** The Authorization header value. */
  authorization: string | undefined;
}

/** Finds `origin`'s public key `keyId` (from cache or by fetching it); undefined when unknown. */
export type RequestKeyLookup = (
  origin: string,
  keyId: string,
) => PublicKeyInput | undefined | Promise<PublicKeyInput | undefined>;

/**
 * Checks a request's X-Matrix signature for this server (`ourServerName`), with the signature
 * verified on the thread pool. Returns the authenticated origin. Throws
 * MatrixProtocolError('bad_request_auth') — answer 401 — when the header is malformed or names
 * another destination, the key is unknown, or the signature does not verify.
 */
export async function verifyRequest(
  req: IncomingRequest,
  ourServerName: string,
  keyLookup: RequestKeyLookup,
): Promise<{ origin: string; keyId: string }> {
  const { auth, signed } = prepareVerification(req, ourServerName);
  const publicKey = await keyLookup(auth.origin, auth.key);
  if (publicKey === undefined) fail(`unknown key ${auth.key} of ${auth.origin}`);
  const [ok] = await verifyBatch([{ data: signed, signature: auth.sig, publicKey }]);
  if (!ok) fail(`signature of ${auth.origin} with ${auth.key} does not verify`);
  return { origin: auth.origin, keyId: auth.key };
}

/** verifyRequest on the calling thread, with the key at hand. */
export function verifyRequestSync(
  req: IncomingRequest,
  ourServerName: string,
  publicKey: PublicKeyInput,
): { origin: string; keyId: string } {
  const { auth, signed } = prepareVerification(req, ourServerName);
  const sig = decodeSignature(auth.sig);
  let ok = false;
  try {
    ok = sig !== undefined && verifyBytes(signed, sig, publicKey);
  } catch {
    ok = false;
  }
  if (!ok) fail(`signature of ${auth.origin} with ${auth.key} does not verify`);
  return { origin: auth.origin, keyId: auth.key };
}

function prepareVerification(req: IncomingRequest, ourServerName: string): { auth: XMatrixAuth; signed: string } {
  if (req.authorization === undefined) fail('missing');
  const auth = parseXMatrixHeader(req.authorization);
  if (!isValidServerName(auth.origin)) fail(`origin ${JSON.stringify(auth.origin)} is not a server name`);
  // Only ed25519 signs requests. The version's grammar is left to the key lookup: being strict
  // here would lock out a server whose key IDs stray from [a-zA-Z0-9_].
  if (!auth.key.startsWith('ed25519:') || auth.key.length === 'ed25519:'.length) {
    fail(`key ${JSON.stringify(auth.key)} is not an ed25519 key ID`);
  }
  // Servers older than v1.3 omit destination; the signed JSON still names us.
  if (auth.destination !== undefined && auth.destination !== ourServerName) {
    fail(`destination ${JSON.stringify(auth.destination)} is not this server`);
  }
  let signed: string;
  try {
    signed = canonicalJson(
      requestJson({ method: req.method, uri: req.uri, origin: auth.origin, destination: ourServerName, content: req.content }),
      REQUEST_CANONICAL,
    );
  } catch (e) {
    fail(`request has no canonical JSON form: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { auth, signed };
}
