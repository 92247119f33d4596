/**
 * Canonical JSON (spec appendices, "Canonical JSON") and a JSON parser that can enforce it.
 *
 * Encoding: the shortest UTF-8 JSON, object keys sorted by Unicode code point, numbers only as
 * integers in [-(2^53)+1, 2^53-1], `-0` written as `0`. Strings use the escapes of the spec's
 * grammar, which are exactly those of `JSON.stringify` for well-formed strings; a string with a
 * lone surrogate has no UTF-8 encoding and is refused, as Synapse refuses it.
 *
 * Room versions 1-5 predate the number rules (rooms/v1 "Canonical JSON": servers must not
 * enforce them): their events may carry integers outside the safe range and fractions.
 * `allowOutOfRangeIntegers` writes any integral number as its exact decimal digits;
 * `allowFloats` writes a finite non-integer as Python's `repr` does, because Synapse's encoder
 * (Python's json) is what signed nearly every such event in the wild: `1.1`, `0.0001`, `1e-05`.
 * Both have already lost their original text in JSON.parse (`1.0` reads as 1, a 20-digit integer
 * rounds), so an old event that relies on such a spelling will not reproduce its hash here; we
 * accept that rather than carry a bignum JSON parser. From room version 6 both are refused.
 *
 * Parsing: `parseJson` is JSON.parse (native and fast) followed, in strict mode, by one linear
 * scan of the text that JSON.parse cannot do for us: duplicate keys, fractions and exponents,
 * out-of-range integers, escaped lone surrogates and excessive nesting.
 */
import { MatrixProtocolError, type JsonObject, type JsonValue } from './types.js';

/** Deepest nesting of arrays/objects we encode or accept; keeps recursion far from the stack limit. */
export const MAX_JSON_DEPTH = 512;

const MAX_CANONICAL_INTEGER = Number.MAX_SAFE_INTEGER; // 2^53 - 1

export interface CanonicalJsonOptions {
  /** Room versions 1-5: accept integral numbers outside ±(2^53-1). Default false. */
  allowOutOfRangeIntegers?: boolean;
  /** Room versions 1-5: accept finite non-integers (NaN and infinities never). Default false. */
  allowFloats?: boolean;
}

/** Which relaxations of the number rules an encoding applies (bit flags, to keep the hot path cheap). */
const OUT_OF_RANGE = 1;
const FLOATS = 2;

/** The canonical JSON text of `value`. Throws MatrixProtocolError('not_canonical'). */
export function canonicalJson(value: unknown, options?: CanonicalJsonOptions): string {
  const relax = (options?.allowOutOfRangeIntegers === true ? OUT_OF_RANGE : 0) | (options?.allowFloats === true ? FLOATS : 0);
  return encodeValue(value, 0, relax);
}

/** The canonical JSON of `value` as UTF-8 bytes. */
export function canonicalJsonBytes(value: unknown, options?: CanonicalJsonOptions): Buffer {
  return Buffer.from(canonicalJson(value, options), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Encoder

// String.prototype.isWellFormed (ES2024) is native and fast; our lib target (ES2023) lacks its type.
const isWellFormed = (String.prototype as unknown as { isWellFormed: (this: string) => boolean }).isWellFormed;
/** Characters JSON must escape. Strings without them are written as-is between quotes. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;
/** UTF-16 code units where code-unit order and code-point order of keys can differ. */
const HIGH_CODE_UNIT = /[\ud800-\uffff]/;

/**
 * Encoded form of object keys without high code units. Event JSON reuses a few dozen keys
 * endlessly; encoding each once is a measurable win. Bounded, since keys come from the network.
 */
const keyCache = new Map<string, string>();
const KEY_CACHE_LIMIT = 4096;

function encodeString(s: string): string {
  if (!isWellFormed.call(s)) {
    throw new MatrixProtocolError('not_canonical', 'canonical JSON: string contains a lone UTF-16 surrogate');
  }
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function encodeNumber(n: number, relax: number): string {
  if (Number.isInteger(n)) {
    if (n <= MAX_CANONICAL_INTEGER && n >= -MAX_CANONICAL_INTEGER) return n === 0 ? '0' : String(n);
    if ((relax & OUT_OF_RANGE) !== 0) return BigInt(n).toString();
    throw new MatrixProtocolError('not_canonical', `canonical JSON: integer ${n} outside ±(2^53-1)`);
  }
  if ((relax & FLOATS) !== 0 && Number.isFinite(n)) return pythonFloatRepr(n);
  throw new MatrixProtocolError('not_canonical', `canonical JSON: ${n} is not an integer`);
}

/**
 * A finite non-integer as Python's `repr(float)` writes it: the shortest digits that read back
 * as the same double (the digits JavaScript picks too), in fixed notation when the decimal
 * exponent is in [-4, 16), otherwise as `d.ddde±XX` with at least two exponent digits.
 */
export function pythonFloatRepr(n: number): string {
  // toExponential() without an argument gives the shortest round-trip digits, always as d.ddde±x.
  const text = n.toExponential();
  const e = text.indexOf('e');
  const negative = text.charCodeAt(0) === 0x2d;
  const digits = text.slice(negative ? 1 : 0, e).replace('.', '');
  const exponent = Number(text.slice(e + 1));
  const sign = negative ? '-' : '';
  if (exponent < -4 || exponent >= 16) {
    const mantissa = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    const abs = Math.abs(exponent);
    return `${sign}${mantissa}e${exponent < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  const fraction = digits.slice(exponent + 1);
  return `${sign}${whole}.${fraction === '' ? '0' : fraction}`;
}

function encodeValue(v: unknown, depth: number, relax: number): string {
  switch (typeof v) {
    case 'string':
      return encodeString(v);
    case 'number':
      return encodeNumber(v, relax);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      if (v === null) return 'null';
      if (depth >= MAX_JSON_DEPTH) {
        throw new MatrixProtocolError('not_canonical', `canonical JSON: nested deeper than ${MAX_JSON_DEPTH}`);
      }
      if (Array.isArray(v)) return encodeArray(v, depth, relax);
      return encodeObject(v as Record<string, unknown>, depth, relax);
    default:
      throw new MatrixProtocolError('not_canonical', `canonical JSON: ${typeof v} is not a JSON value`);
  }
}

function encodeArray(a: readonly unknown[], depth: number, relax: number): string {
  let s = '[';
  for (let i = 0; i < a.length; i++) {
    if (i > 0) s += ',';
    const item = a[i];
    if (item === undefined) throw new MatrixProtocolError('not_canonical', 'canonical JSON: undefined in array');
    s += encodeValue(item, depth + 1, relax);
  }
  return s + ']';
}

function encodeObject(o: Record<string, unknown>, depth: number, relax: number): string {
  const proto: unknown = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) {
    throw new MatrixProtocolError('not_canonical', 'canonical JSON: not a plain object');
  }
  const keys = Object.keys(o);
  if (keys.length > 1) keys.sort();
  let s = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const value = o[k];
    // Like JSON.stringify: a property set to undefined is absent.
    if (value === undefined) continue;
    let encodedKey = keyCache.get(k);
    if (encodedKey === undefined) {
      if (HIGH_CODE_UNIT.test(k)) return encodeObjectByCodePoint(o, keys, depth, relax);
      encodedKey = encodeString(k);
      if (keyCache.size < KEY_CACHE_LIMIT) keyCache.set(k, encodedKey);
    }
    if (!first) s += ',';
    first = false;
    s += encodedKey + ':' + encodeValue(value, depth + 1, relax);
  }
  return s + '}';
}

/** The rare path: some key has a code unit >= U+D800, where UTF-16 order is not code-point order. */
function encodeObjectByCodePoint(
  o: Record<string, unknown>,
  keys: string[],
  depth: number,
  relax: number,
): string {
  keys.sort(compareByCodePoint);
  const parts: string[] = [];
  for (const k of keys) {
    const value = o[k];
    if (value === undefined) continue;
    parts.push(encodeString(k) + ':' + encodeValue(value, depth + 1, relax));
  }
  return '{' + parts.join(',') + '}';
}

/** Orders strings by Unicode code point (equivalently, by their UTF-8 bytes). */
export function compareByCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800-DFFF) encode code points above FFFF, so they sort after E000-FFFF.
    if (x >= 0xd800 && y >= 0xd800) return surrogateRank(x) - surrogateRank(y);
    return x - y;
  }
  return a.length - b.length;
}

function surrogateRank(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

// ---------------------------------------------------------------------------------------------
// Parser

export interface ParseJsonOptions {
  /**
   * Enforce canonical JSON's rules (room versions with strictCanonicalJson, and every API body
   * we control): no duplicate keys, no fractions or exponents, integers within ±(2^53-1), no
   * escaped lone surrogates, nesting up to MAX_JSON_DEPTH, valid UTF-8 for byte input.
   * Lenient mode is JSON.parse alone.
   */
  strict: boolean;
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses a JSON object. Throws MatrixProtocolError: 'bad_json' for syntax errors, a top level
 * that is not an object, duplicate keys, bad UTF-8 or deep nesting; 'not_canonical' for numbers
 * that canonical JSON forbids.
 */
export function parseJson(input: string | Uint8Array, options: ParseJsonOptions = { strict: true }): JsonObject {
  const value = parseJsonValue(input, options);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MatrixProtocolError('bad_json', 'JSON: expected an object at the top level');
  }
  return value;
}

/** Parses any JSON value, with the same rules as parseJson. */
export function parseJsonValue(input: string | Uint8Array, options: ParseJsonOptions = { strict: true }): JsonValue {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else if (options.strict) {
    try {
      text = utf8Fatal.decode(input);
    } catch {
      throw new MatrixProtocolError('bad_json', 'JSON: body is not valid UTF-8');
    }
  } else {
    text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  }
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (e) {
    throw new MatrixProtocolError('bad_json', `JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (options.strict) {
    if (!isWellFormed.call(text)) {
      throw new MatrixProtocolError('bad_json', 'JSON: text contains a lone UTF-16 surrogate');
    }
    scanStrict(text);
  }
  return value;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Checks, on text that JSON.parse has already accepted, the rules JSON.parse does not enforce.
 * One pass; strings are skipped with indexOf, so the cost is mostly native.
 */
function scanStrict(text: string): void {
  const n = text.length;
  // One entry per open container: the keys seen so far for an object, null for an array.
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  // Position of the next backslash at or after the current string, to find strings with escapes
  // without searching to the end of the text for every string.
  let nextBackslash = text.indexOf('\\');
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = text.indexOf('"', i + 1);
      if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = text.indexOf('\\', i);
      const escaped = nextBackslash !== -1 && nextBackslash < end;
      let decoded: string | undefined;
      if (escaped) {
        end = endOfEscapedString(text, i);
        decoded = JSON.parse(text.slice(i, end + 1)) as string;
        if (!isWellFormed.call(decoded)) {
          throw new MatrixProtocolError('not_canonical', 'JSON: string escapes a lone UTF-16 surrogate');
        }
        nextBackslash = text.indexOf('\\', end + 1);
      }
      if (expectKey) {
        const key = decoded ?? text.slice(i + 1, end);
        const keys = stack[stack.length - 1] as Set<string>;
        if (keys.has(key)) throw new MatrixProtocolError('bad_json', `JSON: duplicate key ${JSON.stringify(key)}`);
        keys.add(key);
        expectKey = false;
      }
      i = end + 1;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= MAX_JSON_DEPTH) {
        throw new MatrixProtocolError('bad_json', `JSON: nested deeper than ${MAX_JSON_DEPTH}`);
      }
      const isObject = c === 0x7b;
      stack.push(isObject ? new Set<string>() : null);
      expectKey = isObject;
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] !== null;
      i++;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      i = checkNumber(text, i);
    } else {
      i++;
    }
  }
}

/** Index of the closing quote of the string starting at `start`, honouring backslash escapes. */
function endOfEscapedString(text: string, start: number): number {
  let j = start + 1;
  for (;;) {
    const c = text.charCodeAt(j);
    if (c === BACKSLASH) j += 2;
    else if (c === QUOTE) return j;
    else j++;
  }
}

/** Validates the number token starting at `start` and returns the index after it. */
function checkNumber(text: string, start: number): number {
  const end = numberTokenEnd(text, start);
  const reason = nonCanonicalNumberReason(text.slice(start, end));
  if (reason !== undefined) throw new MatrixProtocolError('not_canonical', `JSON: ${reason}`);
  return end;
}

/** The index after the number token starting at `start` (JSON.parse has checked its grammar). */
function numberTokenEnd(text: string, start: number): number {
  let j = start;
  for (;;) {
    const c = text.charCodeAt(j);
    if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) j++;
    else return j;
  }
}

/** Why canonical JSON forbids this number token, or undefined when it is an integer within ±(2^53-1). */
function nonCanonicalNumberReason(token: string): string | undefined {
  // Messages name the number, but not all of a number thousands of digits long.
  const shown = (): string => (token.length > 40 ? `${token.slice(0, 40)}…` : token);
  for (let k = 0; k < token.length; k++) {
    const c = token.charCodeAt(k);
    if (c === 0x2e || c === 0x65 || c === 0x45) return `number ${shown()} is not an integer`;
  }
  // 2^53-1 has 16 digits; shorter numbers are always in range.
  const digits = token.charCodeAt(0) === 0x2d ? token.length - 1 : token.length;
  if (digits >= 16 && Math.abs(Number(token)) > MAX_CANONICAL_INTEGER) return `integer ${shown()} outside ±(2^53-1)`;
  return undefined;
}

/** A number canonical JSON forbids, as the text spelled it. */
export interface NonCanonicalNumber {
  /** The number token as written (`1.1`, `1e3`, `9007199254740992`). */
  token: string;
  /** Why it is refused. */
  reason: string;
  /** false when the number has no JSON value at all here (`1e400` reads as Infinity). */
  finite: boolean;
}

/**
 * The first number in JSON text (that JSON.parse accepted) that canonical JSON forbids: a
 * fraction or exponent (`1.0` too, which JSON.parse would turn into the integer 1) or an integer
 * outside ±(2^53-1). Only the numbers are looked at, so text that is fine for room versions 1-5
 * can be told apart from text that is not fine for room version 6 and later.
 */
export function firstNonCanonicalNumber(text: string): NonCanonicalNumber | undefined {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = endOfString(text, i) + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const end = numberTokenEnd(text, i);
      const token = text.slice(i, end);
      const reason = nonCanonicalNumberReason(token);
      if (reason !== undefined) return { token, reason, finite: Number.isFinite(Number(token)) };
      i = end;
    } else {
      i++;
    }
  }
  return undefined;
}

/** Index of the closing quote of the string starting at `start` (the text length if unterminated). */
function endOfString(text: string, start: number): number {
  let j = text.indexOf('"', start + 1);
  while (j !== -1) {
    let backslashes = 0;
    for (let k = j - 1; text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
  return text.length;
}
