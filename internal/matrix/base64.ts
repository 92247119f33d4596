/**
 * Unpadded Base64 as the Matrix spec uses it (appendices, "Unpadded Base64"): standard
 * (RFC 4648 §4) and URL-safe (§5) alphabets, written without `=` padding. Decoders accept
 * input with or without padding, as the spec asks, but reject characters outside the
 * alphabet and impossible lengths: Node's own decoder silently skips such characters, which
 * would let two different strings decode to the same bytes.
 */
import { MatrixProtocolError } from './types.js';

const STANDARD = /^[A-Za-z0-9+/]*$/;
const URL_SAFE = /^[A-Za-z0-9_-]*$/;

export function encodeBase64(bytes: Uint8Array): string {
  const s = toBuffer(bytes).toString('base64');
  return stripPadding(s);
}

export function encodeBase64Url(bytes: Uint8Array): string {
  // Node's base64url encoding is already unpadded.
  return toBuffer(bytes).toString('base64url');
}

/** Decodes standard Base64, padded or not. Throws MatrixProtocolError('bad_json') when malformed. */
export function decodeBase64(text: string): Buffer {
  return decodeWith(text, STANDARD, 'base64');
}

/** Decodes URL-safe Base64, padded or not. Throws MatrixProtocolError('bad_json') when malformed. */
export function decodeBase64Url(text: string): Buffer {
  return decodeWith(text, URL_SAFE, 'base64url');
}

/** true when `text` is well-formed unpadded-or-padded standard Base64. */
export function isBase64(text: string): boolean {
  return unpaddedLength(text, STANDARD) >= 0;
}

function decodeWith(text: string, alphabet: RegExp, encoding: 'base64' | 'base64url'): Buffer {
  if (typeof text !== 'string') throw new MatrixProtocolError('bad_json', 'base64: expected a string');
  const len = unpaddedLength(text, alphabet);
  if (len < 0) {
    throw new MatrixProtocolError('bad_json', `base64: malformed ${encoding} value (${describe(text)})`);
  }
  return Buffer.from(len === text.length ? text : text.slice(0, len), encoding);
}

/**
 * The length of `text` without its padding when it is valid Base64 in `alphabet`, else -1.
 * Padding, when present, must bring the length to a multiple of four.
 */
function unpaddedLength(text: string, alphabet: RegExp): number {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d /* = */) end--;
  const padding = text.length - end;
  if (padding > 2) return -1;
  if (padding > 0 && text.length % 4 !== 0) return -1;
  // A single trailing character carries only 6 bits: no whole byte.
  if (end % 4 === 1) return -1;
  const body = padding === 0 ? text : text.slice(0, end);
  return alphabet.test(body) ? end : -1;
}

function stripPadding(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x3d) end--;
  return end === s.length ? s : s.slice(0, end);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function describe(text: string): string {
  return text.length > 20 ? `${JSON.stringify(text.slice(0, 20))}..., ${text.length} chars` : JSON.stringify(text);
}
