import { describe, expect, it } from 'vitest';
import {
  MAX_JSON_DEPTH,
  canonicalJson,
  canonicalJsonBytes,
  compareByCodePoint,
  parseJson,
  parseJsonValue,
} from './canonicaljson.js';
import { codeOf } from './testutil.js';


describe('canonicalJson: the spec appendix examples', () => {
  // Each input is given as JSON text, exactly as in the appendix, then parsed.
  const examples: Array<[string, string]> = [
    ['{}', '{}'],
    ['{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'],
    ['{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'],
    ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
    [
      `{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}`,
      '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ],
    ['{\n    "a": "日本語"\n}', '{"a":"日本語"}'],
    ['{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'],
    ['{\n    "a": "\\u65E5"\n}', '{"a":"日"}'],
    ['{\n    "a": null\n}', '{"a":null}'],
    ['{\n    "a": -0,\n    "b": 1e10\n}', '{"a":0,"b":10000000000}'],
  ];
  it.each(examples)('canonicalises example %#', (input, expected) => {
    expect(canonicalJson(JSON.parse(input))).toBe(expected);
  });

  it('returns UTF-8 bytes', () => {
    const b = canonicalJsonBytes({ a: '日' });
    expect([...b]).toEqual([...Buffer.from('{"a":"日"}', 'utf8')]);
  });
});

describe('canonicalJson: escapes and ordering', () => {
  it('uses the grammar escapes for control characters and no others', () => {
    const s = '\b\t\n\f\r"\\\u0000\u0001\u001f\u007f/\u2028é';
    expect(canonicalJson(s)).toBe('"\\b\\t\\n\\f\\r\\"\\\\\\u0000\\u0001\\u001f\u007f/\u2028é"');
  });

  it('sorts keys by code point, not by UTF-16 code unit', () => {
    // U+FF5E sorts before U+1F600 by code point, but after its surrogates (D83D) by code unit.
    const obj = { '\u{1F600}': 1, '\uFF5E': 2, a: 3 };
    expect(canonicalJson(obj)).toBe('{"a":3,"\uFF5E":2,"\u{1F600}":1}');
    expect(compareByCodePoint('\uFF5E', '\u{1F600}')).toBeLessThan(0);
    expect(compareByCodePoint('\u{1F600}', '\u{1F601}')).toBeLessThan(0);
    expect(compareByCodePoint('ab', 'a')).toBeGreaterThan(0);
  });

  it('sorts integer-like keys as strings', () => {
    expect(canonicalJson({ b: 1, '10': 2, '9': 3, a: 4 })).toBe('{"10":2,"9":3,"a":4,"b":1}');
  });

  it('omits properties whose value is undefined', () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });

  it('handles nested arrays and empty containers', () => {
    expect(canonicalJson([[], {}, [1, [true, false, null]]])).toBe('[[],{},[1,[true,false,null]]]');
  });
});

describe('canonicalJson: refusals', () => {
  it.each([
    ['a float', { a: 1.5 }],
    ['2^53', { a: 2 ** 53 }],
    ['-(2^53)', { a: -(2 ** 53) }],
    ['NaN', { a: NaN }],
    ['Infinity', { a: Infinity }],
    ['a lone high surrogate', { a: '\ud800' }],
    ['a lone low surrogate in a key', { '\udc00': 1 }],
    ['undefined in an array', [undefined]],
    ['a function', { a: () => 1 }],
    ['a bigint', { a: 1n }],
    ['a Date', { a: new Date(0) }],
    ['a Buffer', { a: Buffer.from('x') }],
  ])('refuses %s', (_name, value) => {
    expect(codeOf(() => canonicalJson(value))).toBe('not_canonical');
  });

  it('accepts the integer bounds', () => {
    expect(canonicalJson([2 ** 53 - 1, -(2 ** 53) + 1])).toBe('[9007199254740991,-9007199254740991]');
  });

  it('writes out-of-range integers in full when allowed (room versions 1-5)', () => {
    expect(canonicalJson({ a: 2 ** 64 }, { allowOutOfRangeIntegers: true })).toBe('{"a":18446744073709551616}');
    expect(canonicalJson({ a: 1e21 }, { allowOutOfRangeIntegers: true })).toBe('{"a":1000000000000000000000}');
    expect(codeOf(() => canonicalJson({ a: 0.5 }, { allowOutOfRangeIntegers: true }))).toBe('not_canonical');
  });

  it('refuses nesting deeper than MAX_JSON_DEPTH and accepts it up to there', () => {
    let ok: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) ok = [ok];
    expect(canonicalJson(ok)).toHaveLength(MAX_JSON_DEPTH * 2 + 1);
    expect(codeOf(() => canonicalJson([ok]))).toBe('not_canonical');
  });
});

describe('parseJson', () => {
  it('parses objects in both modes', () => {
    const text = '{"a": [1, -2, {"b": "c\\"d"}], "e": null}';
    expect(parseJson(text, { strict: true })).toEqual({ a: [1, -2, { b: 'c"d' }], e: null });
    expect(parseJson(text, { strict: false })).toEqual({ a: [1, -2, { b: 'c"d' }], e: null });
    expect(parseJson(Buffer.from(text), { strict: true })).toEqual({ a: [1, -2, { b: 'c"d' }], e: null });
  });

  it.each([
    ['a syntax error', '{"a":', 'bad_json'],
    ['an array at the top', '[1]', 'bad_json'],
    ['a string at the top', '"x"', 'bad_json'],
    ['NaN', '{"a": NaN}', 'bad_json'],
    ['trailing garbage', '{} x', 'bad_json'],
  ])('rejects %s in both modes', (_name, text, code) => {
    expect(codeOf(() => parseJson(text, { strict: true }))).toBe(code);
    expect(codeOf(() => parseJson(text, { strict: false }))).toBe(code);
  });

  it.each([
    ['a duplicate key', '{"a":1,"a":2}', 'bad_json'],
    ['a duplicate key written with an escape', '{"a":1,"\\u0061":2}', 'bad_json'],
    ['a nested duplicate key', '{"x":[{"k":1,"j":{},"k":2}]}', 'bad_json'],
    ['a fraction', '{"a":1.0}', 'not_canonical'],
    ['an exponent', '{"a":1e3}', 'not_canonical'],
    ['an upper-case exponent', '{"a":[1E3]}', 'not_canonical'],
    ['an overflowing exponent', '{"a":1e400}', 'not_canonical'],
    ['2^53', '{"a":9007199254740992}', 'not_canonical'],
    ['-(2^53)', '{"a":-9007199254740992}', 'not_canonical'],
    ['a huge integer', '{"a":123456789012345678901234567890}', 'not_canonical'],
    ['an escaped lone surrogate', '{"a":"\\ud800"}', 'not_canonical'],
    ['an escaped lone surrogate in a key', '{"\\udfff":1}', 'not_canonical'],
  ])('rejects %s only in strict mode', (_name, text, code) => {
    expect(codeOf(() => parseJson(text, { strict: true }))).toBe(code);
    expect(codeOf(() => parseJson(text, { strict: false }))).toBeUndefined();
  });

  it('accepts the same key in different objects, and keys that look alike', () => {
    expect(parseJson('{"a":{"a":1},"b":[{"a":2},{"a":3}],"A":4,"a\\"":5}', { strict: true })).toEqual({
      a: { a: 1 },
      b: [{ a: 2 }, { a: 3 }],
      A: 4,
      'a"': 5,
    });
  });

  it('does not mistake digits or dots inside strings for numbers', () => {
    expect(parseJson('{"v":"1.5e10","w":"9007199254740993","x\\\\":"\\\\"}', { strict: true })).toEqual({
      v: '1.5e10',
      w: '9007199254740993',
      'x\\': '\\',
    });
  });

  it('accepts the integer bounds and -0', () => {
    const v = parseJson('{"a":9007199254740991,"b":-9007199254740991,"c":-0}', { strict: true });
    expect(v).toEqual({ a: 2 ** 53 - 1, b: -(2 ** 53) + 1, c: -0 });
    expect(canonicalJson(v)).toBe('{"a":9007199254740991,"b":-9007199254740991,"c":0}');
  });

  it('accepts escaped surrogate pairs', () => {
    expect(parseJson('{"a":"\\ud83d\\ude00"}', { strict: true })).toEqual({ a: '\u{1F600}' });
  });

  it('rejects invalid UTF-8 bytes in strict mode only', () => {
    const bad = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]); // {"a":"\xff"}
    expect(codeOf(() => parseJson(bad, { strict: true }))).toBe('bad_json');
    expect(parseJson(bad, { strict: false })).toEqual({ a: '\ufffd' });
  });

  it('rejects a raw lone surrogate in string input in strict mode', () => {
    expect(codeOf(() => parseJson('{"a":"\ud800"}', { strict: true }))).toBe('bad_json');
  });

  it('limits nesting in strict mode', () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(parseJsonValue(deep(MAX_JSON_DEPTH), { strict: true })).toBeDefined();
    expect(codeOf(() => parseJsonValue(deep(MAX_JSON_DEPTH + 1), { strict: true }))).toBe('bad_json');
  });
});
